import Formats
import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// AdamW with global-norm clipping and a cosine schedule against torch.optim.AdamW +
/// clip_grad_norm_ + LambdaLR (float64), recorded in fixtures/kl/adam.safetensors by
/// fixtures/generate/extra/kl.py.
@Suite struct AdamOptimizerTests {
    @Test func matchesTorchAdamW() throws {
        let file = try SafetensorsFile(path: Fixtures.path("kl/adam.safetensors"))
        var params = [try file.tensor(named: "p0.a"), try file.tensor(named: "p0.b")]
        var adam = AdamOptimizer(options: AdamOptions(learningRate: 0.05, weightDecay: 0.1, clipNorm: 1,
                                                      schedule: .cosine(totalSteps: 6, floor: 0.1)))
        var clipped = false
        for step in 0..<6 {
            let grads = [try file.tensor(named: "g.\(step).a"), try file.tensor(named: "g.\(step).b")]
            let report = adam.update(parameters: &params, gradients: grads)
            clipped = clipped || report.gradientNorm > 1
            for (i, name) in ["a", "b"].enumerated() {
                let ref = try file.tensor(named: "p.\(step).\(name)")
                // f32 arithmetic vs float64 torch over ≤ 6 steps: 1e-5 relative.
                let err = relativeError(params[i].scalars, ref.scalars)
                #expect(err <= 1e-5, "step \(step) \(name): relative error \(err)")
            }
        }
        #expect(clipped, "the fixture's gradients should exercise clipping")
        #expect(adam.step == 6)
    }

    @Test func cosineScheduleEnds() {
        let s = LearningRateSchedule.cosine(totalSteps: 11, floor: 0.1)
        #expect(s.factor(step: 1) == 1)
        #expect(abs(s.factor(step: 6) - 0.55) <= 1e-6)
        #expect(abs(s.factor(step: 11) - 0.1) <= 1e-6)
        #expect(LearningRateSchedule.constant.factor(step: 7) == 1)
    }
}
