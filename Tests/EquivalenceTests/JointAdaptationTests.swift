import Equivalence
import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// Joint adaptation: the orthogonal projection separates the adapter's D from the LoRA's col(B),
/// and joint KL training on a small model lowers the calibration KL with the LoRA trained too.
@Suite struct JointAdaptationTests {
    /// After D ← (I − VVᵀ)D every column of D is orthogonal to col(B): BᵀD ≈ 0 (1e-5 relative
    /// to ‖B‖‖D‖, f32 products of a double-precision basis) and the largest principal cosine is
    /// ~0; a D inside col(B) has cosine 1.
    @Test func projectionRemovesTheSharedSubspace() throws {
        let b = Tensor.randomNormal([12, 3], seed: 1)
        let d = Tensor.randomNormal([12, 4], seed: 2)
        #expect(try JointAdaptation.maxPrincipalCosine(d, b) > 0.1)
        let p = try JointAdaptation.projectOut(d, columnSpaceOf: b)
        let btd = matmul(b, p, transposeA: true)
        #expect(btd.maxAbsolute <= 1e-5 * b.frobeniusNorm * d.frobeniusNorm)
        #expect(try JointAdaptation.maxPrincipalCosine(p, b) <= 1e-4)
        let inside = matmul(b, Tensor.randomNormal([3, 2], seed: 3))
        #expect(abs(try JointAdaptation.maxPrincipalCosine(inside, b) - 1) <= 1e-4)
        #expect(try JointAdaptation.projectOut(d, columnSpaceOf: Tensor(shape: [12, 3])) == d)
    }

    @Test func jointTrainingProjectsAndLearns() throws {
        let base = try KLDistillationTests.model(perturbation: 0), ft = try KLDistillationTests.model(perturbation: 0.05)
        var initial = DistillOptions(fit: AdapterFitOptions(kind: .linear, rank: .fixed(2)))
        initial.diagnostics = false
        var options = KLDistillOptions(initial: initial, steps: 40, batchSize: 3, windowLength: 16,
                                       adam: AdamOptions(learningRate: 2e-2, clipNorm: 1, schedule: .cosine(totalSteps: 40, floor: 0.1)),
                                       seed: 3, evaluationInterval: 40)
        options.joint = JointAdaptationOptions(loraRank: 2, projectionInterval: 20, seed: 4)
        let calibration = KLDistillationTests.sequences(8, length: 16, seed: 1)
        let r = try KLDistiller.distill(base: base, finetuned: ft, calibration: calibration, heldOut: calibration, options: options)
        let lora = try #require(r.lora)
        #expect(lora.layers.count == 3)
        #expect(lora.layers.values.allSatisfy { $0[.down].map { $0.b.maxAbsolute > 0 } ?? false }, "B must have trained away from 0")
        #expect(r.projections.map(\.step) == [20, 20, 20, 40, 40, 40])
        for p in r.projections { #expect(p.cosineAfter <= 1e-3, "layer \(p.layer) step \(p.step): cosine after \(p.cosineAfter)") }
        let first = try #require(r.curve.first?.heldOutKL), last = try #require(r.curve.last?.heldOutKL)
        #expect(last < 0.8 * first, "KL \(first) → \(last)")
        #expect(r.parameterCount == 3 * (16 * 2 * 2 + 16) + 3 * (2 * 32 + 16 * 2))
    }

    /// The weight-only baseline trains the LoRA alone: no adapter layers, B moves off 0, KL falls.
    @Test func weightOnlyTrainsTheLoRAAlone() throws {
        let base = try KLDistillationTests.model(perturbation: 0), ft = try KLDistillationTests.model(perturbation: 0.05)
        var initial = DistillOptions(fit: AdapterFitOptions(kind: .linear, rank: .fixed(2)))
        initial.diagnostics = false
        var options = KLDistillOptions(initial: initial, steps: 40, batchSize: 3, windowLength: 16,
                                       adam: AdamOptions(learningRate: 2e-2, clipNorm: 1), seed: 3, evaluationInterval: 40)
        options.joint = JointAdaptationOptions(loraRank: 2, seed: 4)
        options.joint?.weightOnly = true
        let calibration = KLDistillationTests.sequences(8, length: 16, seed: 1)
        let r = try KLDistiller.distill(base: base, finetuned: ft, calibration: calibration, heldOut: calibration, options: options)
        #expect(r.adapter.layers.isEmpty)
        #expect(r.projections.isEmpty)
        #expect(r.parameterCount == 3 * (2 * 32 + 16 * 2))
        let first = try #require(r.curve.first?.heldOutKL), last = try #require(r.curve.last?.heldOutKL)
        #expect(last < 0.9 * first, "KL \(first) → \(last)")
    }
}
