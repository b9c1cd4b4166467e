import Equivalence
import Formats
import Runtime
import Tensors
import Testing
import TestSupport

/// The first-order map and distillation on the tiny Gemma-3 fixture (fixtures/gemma3/tiny).
@Suite struct Gemma3DistillTests {
    static let sequences = (0..<4).map { s in (0..<16).map { (s * 37 + $0 * 11) % 120 } }

    /// The first-order map of a Gemma-3 layer against torch.func.jvp (fixtures/gemma3/jvp.safetensors):
    /// layer 1 (sliding window over 12 tokens, local RoPE) and layer 2 (full attention) along a
    /// dense delta on q, k, o and down_proj, through the q/k norms, the output norms and GELU-tanh:
    /// 1e-4 relative (max|a − b| / max|b|). The weight cotangent is the tangent's adjoint:
    /// ⟨jvp(ΔW), G⟩ = Σ_p ⟨ΔW_p, cotangent_p⟩ to 1e-4 relative.
    @Test(arguments: [1, 2]) func firstOrderMapMatchesTorchJVP(layer l: Int) throws {
        let model = try LlamaModel.load(path: Fixtures.path("gemma3/tiny"))
        let f = try SafetensorsFile(path: Fixtures.path("gemma3/jvp.safetensors"))
        let map = try FirstOrderMap(config: model.config, weights: model.layerWeights(l), layer: l)
        let a = try map.forward(try f.tensor(named: "input.\(l)"))
        var delta = LayerWeightDelta()
        let names: [(LlamaProjection, String)] = [(.q, "self_attn.q_proj.weight"), (.k, "self_attn.k_proj.weight"),
                                                  (.o, "self_attn.o_proj.weight"), (.down, "mlp.down_proj.weight")]
        for (p, name) in names { delta[p] = .dense(try f.tensor(named: "delta.\(l).\(name)")) }
        let tangent = try map.jvp(a, delta: delta).output
        let want = try f.tensor(named: "tangent.\(l)")
        let e = maxAbsoluteDifferenceScaled(tangent.scalars, want.scalars)
        #expect(e <= 1e-4, "layer \(l): \(e)")
        let g = Tensor.randomNormal(tangent.shape, seed: UInt64(l))
        let cot = try map.weightCotangent(a, outputCotangent: g, projections: Set(names.map(\.0)))
        let lhs = zip(tangent.scalars, g.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        var rhs = 0.0
        for (p, name) in names {
            let dw = try f.tensor(named: "delta.\(l).\(name)"), c = try #require(cot[p])
            rhs += zip(dw.scalars, c.scalars).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        #expect(abs(lhs - rhs) <= 1e-4 * abs(lhs), "adjoint: \(lhs) vs \(rhs)")
        print("Gemma-3 tiny layer \(l) first-order map vs torch.func.jvp: relative error \(e)")
    }

    /// A fine-tune made by a LoRA on one projection: each method fits the shift it causes at the
    /// block outputs, and the steered base moves toward the fine-tune.
    @Test(arguments: [DistillMethod.sequential, .firstOrder]) func distillationRunsOnGemma(method: DistillMethod) throws {
        let base = try LlamaModel.load(path: Fixtures.path("gemma3/tiny"))
        let lora = LoRAWeights(name: "test", layers: [1: [.down: LoRAFactors(a: Tensor.randomNormal([2, 96], std: 0.2, seed: 3),
                                                              b: Tensor.randomNormal([64, 2], std: 0.2, seed: 4), scale: 1)]])
        let finetuned = try base.adding(lora)
        let result = try Distiller.distill(base: base, finetuned: finetuned, sequences: Self.sequences,
                                           options: .init(method: method, fit: .init(kind: .linear, rank: .fixed(4)), heldOutFraction: 0))
        #expect(result.layers.count == 4)
        let before = try ModelEvaluation.meanKL(reference: finetuned, model: base, sequences: Self.sequences)
        let after = try ModelEvaluation.meanKL(reference: finetuned, model: try base.adding(result.adapter, name: "distilled"),
                                               sequences: Self.sequences)
        #expect(before > 0 && after < 0.5 * before, "\(method): KL to the fine-tune \(before) → \(after)")
        print("Gemma-3 tiny, \(method) distillation of a LoRA: KL to the fine-tune \(before) → \(after)")
    }
}
