import Foundation
import Testing
import Equivalence
import Formats
import Runtime
import Tensors
import TestSupport

/// What a distillation result says beyond its adapter: the model it was made for (see RuntimeTests' AdapterSignatureTests) and when its Theorem 3.1 report is uninformative.
@Suite struct DistillSignatureTests {
    /// A distilled adapter is made for its base; on a model of another shape it is refused by its
    /// signature before any tensor is compared.
    @Test func distilledAdapterCarriesItsBase() throws {
        let base = try LlamaModel.load(path: Fixtures.path("qwen3/tiny"))
        let ft = try base.adding(LoRAWeights.load(directory: Fixtures.path("qwen3/lora")))
        let sequences = (0..<6).map { i in (0..<16).map { (i * 7 + $0 * 5) % 120 } }
        let result = try Distiller.distill(base: base, finetuned: ft, sequences: sequences,
                                           options: DistillOptions(method: .sequential, fit: AdapterFitOptions(kind: .vector)))
        #expect(result.adapter.madeFor == ModelSignature(architecture: "Qwen3ForCausalLM", hiddenSize: 64, layers: 3))
        let llama = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        do {
            _ = try llama.adding(result.adapter, name: "distilled")
            Issue.record("a Qwen3 adapter was applied to \(llama.signature)")
        } catch let RuntimeError.adapterMismatch(_, reason) {
            #expect(reason.hasPrefix("made for Qwen3ForCausalLM (d 64, 3 layers)"), "\(reason)")
        }
    }


    /// With no more held-in tokens than the width (d 64), rank Z = N and e* = 0 says nothing: the
    /// result says so; with more tokens than the width it does not.
    @Test func uninformativeTheorem31IsSaid() throws {
        let base = try LlamaModel.load(path: Fixtures.path("qwen3/tiny"))
        let ft = try base.adding(LoRAWeights.load(directory: Fixtures.path("qwen3/lora")))
        func distill(_ count: Int) throws -> DistillationResult {
            let sequences = (0..<count).map { i in (0..<16).map { (i * 7 + $0 * 5) % 120 } }
            return try Distiller.distill(base: base, finetuned: ft, sequences: sequences, options: DistillOptions(method: .sequential))
        }
        let few = try distill(3), many = try distill(8)
        #expect(few.heldInTokens < 64 && many.heldInTokens > 64)
        #expect(few.layers.allSatisfy { $0.theorem31?.exact == 0 && $0.theorem31?.rankZ == few.heldInTokens })
        #expect(few.uninformativeTheorem31 != nil)
        #expect(many.uninformativeTheorem31 == nil)
        #expect(many.layers.contains { ($0.theorem31?.exact ?? 0) > 0 })
    }
}
