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

    /// A PEFT LoRA on all seven projections, applied unmerged to the HF folder and to llama.cpp's
    /// GGUF of it (its Q/K rows permuted back for Mistral, which llama.cpp writes as `llama`),
    /// gives PEFT's outputs, and not the base's.
    @Test(arguments: ["qwen2", "mistral"], ["", ".gguf"]) func loraUnmergedMatchesPEFT(kind: String, suffix: String) throws {
        let base = try LlamaModel.load(path: Fixtures.path("runtime/\(kind)\(suffix)"))
        let model = try base.adding(LoRAWeights.load(directory: Fixtures.path("runtime/\(kind)-lora")))
        let reference = "runtime/reference-\(kind)-lora.safetensors"
        try ReferenceForwardTests.check(model: model, reference: reference)
        let runs = try ReferenceRun.load(reference, layers: model.config.numHiddenLayers)
        let plain = try ReferenceRun.load("runtime/reference-\(kind).safetensors", layers: model.config.numHiddenLayers)
        for (a, b) in zip(runs, plain) { #expect(maxAbsoluteDifferenceScaled(a.logits.scalars, b.logits.scalars) > 1e-2) }
    }

    /// Windows of configs written before `layer_types`, as transformers reads them: Mistral
    /// v0.1's `sliding_window` on every layer; Qwen2's `use_sliding_window` from
    /// `max_window_layers` on (layer 0 full, layer 1 windowed). The window (6) is shorter than
    /// two of the three sequences; one pass each and all three packed.
    @Test(arguments: [("mistral", [6, 6]), ("qwen2", [nil, 6])]) func slidingWindowWithoutLayerTypes(kind: String, windows: [Int?]) throws {
        let model = try LlamaModel.load(path: Fixtures.path("runtime/\(kind)-window"))
        #expect(model.blocks.map(\.slidingWindow) == windows)
        let reference = "runtime/reference-\(kind)-window.safetensors"
        try ReferenceForwardTests.check(model: model, reference: reference)
        let runs = try ReferenceRun.load(reference, layers: model.config.numHiddenLayers)
        #expect(try ReferenceRun.packedError(model: model, runs: runs) <= 1e-4)
        // The window matters: the same weights without it give other logits.
        let plain = try LlamaModel.load(path: Fixtures.path("runtime/\(kind)"))
        let last = try #require(runs.last)
        let windowed = try model.forward(tokens: last.tokens).logits, full = try plain.forward(tokens: last.tokens).logits
        #expect(maxAbsoluteDifferenceScaled(windowed.scalars, full.scalars) > 1e-3)
    }
}
