import Foundation
import Testing
import Equivalence
import Formats
import Runtime
import Tensors
import TestSupport

/// Distilled adapters record the model they were made for (see RuntimeTests' AdapterSignatureTests).
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

}
