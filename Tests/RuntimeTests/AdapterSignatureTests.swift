import Foundation
import Testing
import Formats
import Runtime
import Tensors
import TestSupport

/// Steering files record the model they were made for (architecture, d, layers); applying one to
/// a model with another signature is refused by name, even when the shapes would fit.
@Suite("Adapter model signatures")
struct AdapterSignatureTests {
    /// runtime/qwen2 and runtime/mistral are both d 32 with 2 layers: only the architecture differs.
    @Test func fileRecordsItsModelAndOtherArchitecturesAreRefused() throws {
        let qwen2 = try LlamaModel.load(path: Fixtures.path("runtime/qwen2"))
        let mistral = try LlamaModel.load(path: Fixtures.path("runtime/mistral"))
        #expect(qwen2.config.hiddenSize == mistral.config.hiddenSize && qwen2.config.numHiddenLayers == mistral.config.numHiddenLayers)
        let adapter = SteeringAdapter(layers: [1: SteeringLayer(bias: Tensor.randomNormal([32], seed: 3))], madeFor: qwen2.signature)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-signature-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SteeringFiles.file(from: adapter).write(to: path)
        let file = try SteeringAdapterFile.load(path: path)
        #expect(file.modelSignature == ModelSignature(architecture: "Qwen2ForCausalLM", hiddenSize: 32, layers: 2))
        let loaded = try SteeringAdapter.load(path: path)
        #expect(throws: Never.self) { try qwen2.adding(loaded, name: path) }
        #expect(throws: RuntimeError.adapterMismatch(
            adapter: path, reason: "made for Qwen2ForCausalLM (d 32, 2 layers); this model is MistralForCausalLM (d 32, 2 layers)")) {
            try mistral.adding(loaded, name: path)
        }
        // Without a recorded model (a control vector, an older file) the shapes alone decide.
        var anonymous = loaded
        anonymous.madeFor = nil
        #expect(throws: Never.self) { try mistral.adding(anonymous, name: path) }
        // Sums of adapters made for different models are refused; the sum keeps the common one.
        var other = adapter
        other.madeFor = mistral.signature
        #expect(throws: SteeringAdapterError.self) { try SteeringArithmetic.weightedSum([adapter, other], weights: [1, 1]) }
        #expect(try SteeringArithmetic.weightedSum([adapter, anonymous], weights: [1, -1]).madeFor == qwen2.signature)
    }

    /// llama.cpp writes Mistral as `llama`: an adapter made on the Mistral folder applies to its
    /// GGUF and one made on the GGUF to the folder; neither applies to Qwen2 of the same shape.
    @Test func mistralAndItsLlamaGGUFShareAdapters() throws {
        let folder = try LlamaModel.load(path: Fixtures.path("runtime/mistral"))
        let gguf = try LlamaModel.load(path: Fixtures.path("runtime/mistral.gguf"))
        let qwen2 = try LlamaModel.load(path: Fixtures.path("runtime/qwen2"))
        #expect(gguf.signature.architecture == "LlamaForCausalLM" && folder.signature.architecture == "MistralForCausalLM")
        for (made, target) in [(folder, gguf), (gguf, folder)] {
            let adapter = SteeringAdapter(layers: [0: SteeringLayer(bias: Tensor.randomNormal([32], seed: 4))], madeFor: made.signature)
            #expect(throws: Never.self) { try target.adding(adapter, name: "a") }
            #expect(throws: RuntimeError.self) { try qwen2.adding(adapter, name: "a") }
        }
        #expect(!folder.signature.matches(ModelSignature(architecture: "MistralForCausalLM", hiddenSize: 32, layers: 3)))
    }

    /// Partial or malformed signatures in a file are refused by name.
    @Test func malformedSignatureIsRefused() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-signature-\(UUID().uuidString).safetensors").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let metadata: OrderedDictionary<String, String> = ["format": SteeringAdapterFile.formatName, "format_version": "1",
                                                            "model_architecture": "LlamaForCausalLM", "model_hidden_size": "wide"]
        try SafetensorsWriter.write([SafetensorsWriter.record("layers.0.bias", Tensor(vector: [1, 2]))], metadata: metadata, to: path)
        #expect(throws: FormatsError.self) { try SteeringAdapterFile.load(path: path) }
    }
}
