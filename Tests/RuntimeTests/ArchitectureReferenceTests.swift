import Foundation
import Testing
import Runtime
import Tensors
import TestSupport

/// The Llama-family variants that differ only in config (fixtures/runtime/, recorded by
/// fixtures/generate/extra/runtime.py with transformers, f32 eager): same 1e-4 tolerance and
/// reason as ReferenceForwardTests.
@Suite("Qwen2 and Mistral vs transformers")
struct ArchitectureReferenceTests {
    /// q/k/v biases, no o bias, tied embeddings, rope_theta 1e6; config.json without
    /// `architectures`, so model_type "qwen2" decides.
    @Test func qwen2() throws {
        let model = try LlamaModel.load(path: Fixtures.path("runtime/qwen2"))
        #expect(model.architecture.name == "Qwen2ForCausalLM")
        #expect(model.architecture.qkvBias && !model.architecture.outputBias)
        try ReferenceForwardTests.check(model: model, reference: "runtime/reference-qwen2.safetensors")
    }

    /// Mistral with `sliding_window: null` is Llama's computation.
    @Test func mistral() throws {
        let model = try LlamaModel.load(path: Fixtures.path("runtime/mistral"))
        #expect(model.architecture.name == "MistralForCausalLM")
        try ReferenceForwardTests.check(model: model, reference: "runtime/reference-mistral.safetensors")
    }

    /// A real sliding window (smaller than the context) is refused by name: it is not implemented.
    @Test func mistralWithSlidingWindowIsRefused() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-rt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createSymbolicLink(
            atPath: dir.appendingPathComponent("model.safetensors").path,
            withDestinationPath: Fixtures.path("runtime/mistral/model.safetensors"))
        let config = try String(contentsOfFile: Fixtures.path("runtime/mistral/config.json"), encoding: .utf8)
            .replacingOccurrences(of: "\"sliding_window\": null", with: "\"sliding_window\": 16")
        #expect(config.contains("\"sliding_window\": 16"))
        let path = dir.appendingPathComponent("config.json").path
        try config.write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: RuntimeError.unsupportedFeature("sliding_window 16 < max_position_embeddings 128", source: path)) {
            try LlamaModel.load(path: dir.path)
        }
    }
}
