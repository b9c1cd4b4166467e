import Equivalence
import Runtime
import Tensors
import Testing
import TestSupport

/// Distillation on the tiny Gemma-3 fixture (fixtures/gemma3/tiny): the methods that need only
/// forward passes run; the first-order map, whose tangent is written for Llama-family layers so
/// far, refuses it with a message instead of computing wrong shifts.
@Suite struct Gemma3DistillTests {
    static let sequences = (0..<4).map { s in (0..<16).map { (s * 37 + $0 * 11) % 120 } }

    @Test func firstOrderRefusesGemmaLayers() throws {
        let model = try LlamaModel.load(path: Fixtures.path("gemma3/tiny"))
        #expect(throws: EquivalenceError.self) {
            try Distiller.distill(base: model, finetuned: model, sequences: Self.sequences,
                                  options: .init(method: .firstOrder, fit: .init(kind: .linear, rank: .fixed(2)), heldOutFraction: 0))
        }
    }

    /// A fine-tune made by a LoRA on one projection: the sequential method fits the shift it
    /// causes at every later block output, and the steered base moves toward the fine-tune.
    @Test func sequentialDistillationRunsOnGemma() throws {
        let base = try LlamaModel.load(path: Fixtures.path("gemma3/tiny"))
        let lora = LoRAWeights(name: "test", layers: [1: [.down: LoRAFactors(a: Tensor.randomNormal([2, 96], std: 0.2, seed: 3),
                                                              b: Tensor.randomNormal([64, 2], std: 0.2, seed: 4), scale: 1)]])
        let finetuned = try base.adding(lora)
        let result = try Distiller.distill(base: base, finetuned: finetuned, sequences: Self.sequences,
                                           options: .init(method: .sequential, fit: .init(kind: .linear, rank: .fixed(4)), heldOutFraction: 0))
        #expect(result.layers.count == 4)
        let before = try ModelEvaluation.meanKL(reference: finetuned, model: base, sequences: Self.sequences)
        let after = try ModelEvaluation.meanKL(reference: finetuned, model: try base.adding(result.adapter, name: "sequential"),
                                               sequences: Self.sequences)
        #expect(before > 0 && after < 0.5 * before, "KL to the fine-tune \(before) → \(after)")
    }
}
