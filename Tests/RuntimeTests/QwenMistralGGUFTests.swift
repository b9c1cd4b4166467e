import Foundation
import Testing
import Runtime
import Tensors
import TestSupport

/// Qwen2, Qwen3 and Mistral from the GGUFs llama.cpp's own converter wrote for the small fixture
/// models (fixtures/generate/extra/gguf_archs.py): the same models as their Hugging Face folders.
@Suite("Qwen and Mistral GGUFs")
struct QwenMistralGGUFTests {
    /// Qwen3 from llama.cpp's file against transformers (1e-4, as every reference test), tied
    /// and untied with biases.
    @Test(arguments: [("qwen3/tiny.gguf", "qwen3/reference.safetensors"), ("qwen3/tiny-untied.gguf", "qwen3/reference-untied.safetensors")])
    func qwen3MatchesTransformers(file: String, reference: String) throws {
        let model = try LlamaModel.load(path: Fixtures.path(file))
        #expect(model.architecture.name == "Qwen3ForCausalLM" && model.architecture.queryKeyNorms)
        try ReferenceForwardTests.check(model: model, reference: reference)
    }

    /// Qwen2 (qwen2 file: Q/K rows unpermuted, q/k/v biases) and Mistral (a llama file, permuted)
    /// give the HF folder's logits and block outputs within 1e-5 relative.
    @Test(arguments: [("runtime/qwen2.gguf", "runtime/qwen2", "Qwen2ForCausalLM"),
                      ("runtime/mistral.gguf", "runtime/mistral", "LlamaForCausalLM")])
    func equalsTheFolder(file: String, folder: String, architecture: String) throws {
        BLAS.setThreadCount(1)
        let gguf = try LlamaModel.load(path: Fixtures.path(file)), hf = try LlamaModel.load(path: Fixtures.path(folder))
        #expect(gguf.architecture.name == architecture)
        let runs = try ReferenceRun.load("runtime/reference-\(folder.split(separator: "/").last!).safetensors",
                                         layers: hf.config.numHiddenLayers)
        for run in runs {
            let a = try gguf.forward(tokens: run.tokens, options: ForwardOptions(blockOutputs: true))
            let b = try hf.forward(tokens: run.tokens, options: ForwardOptions(blockOutputs: true))
            #expect(maxAbsoluteDifferenceScaled(a.logits.scalars, b.logits.scalars) <= 1e-5)
            for (x, y) in zip(a.blockOutputs, b.blockOutputs) { #expect(maxAbsoluteDifferenceScaled(x.scalars, y.scalars) <= 1e-5) }
        }
    }
}
