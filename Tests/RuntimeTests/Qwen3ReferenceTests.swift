import Foundation
import Testing
import Formats
import Runtime
import Tensors
import TestSupport

/// Qwen3 from a Hugging Face folder against transformers (fixtures/qwen3/, recorded by
/// fixtures/generate/extra/qwen3.py: Qwen3ForCausalLM in f32, eager attention): a tied model whose
/// head_dim (24) makes the attention 96 wide on a 64-wide stream, with GQA and per-head q/k norms,
/// and an untied one with q/k/v/o biases and one KV head. Tolerance as for the Llama reference
/// tests: 1e-4 relative (max|a − b| / max|b|).
@Suite("Qwen3 vs transformers")
struct Qwen3ReferenceTests {
    static let tied = ("qwen3/tiny", "qwen3/reference.safetensors")
    static let untied = ("qwen3/tiny-untied", "qwen3/reference-untied.safetensors")

    /// The config resolves to the block Qwen3 computes: q/k norms with plain gains (not 1 + w),
    /// head_dim from its own key, no embedding scale, biases only with attention_bias.
    @Test func configBecomesLayerDescriptions() throws {
        let model = try LlamaModel.load(path: Fixtures.path(Self.tied.0))
        let a = model.architecture
        #expect(a.name == "Qwen3ForCausalLM" && a.queryKeyNorms && !a.normGainOffset && !a.sandwichNorms && !a.scalesEmbeddings)
        #expect(!a.qkvBias && !a.outputBias)
        #expect(model.config.headDim == 24 && model.config.numAttentionHeads * model.config.headDim != model.config.hiddenSize)
        #expect(model.weights.layers[0].queryNorm?.count == 24 && model.weights.layers[0].keyNorm?.count == 24)
        #expect(model.blocks.allSatisfy { $0.slidingWindow == nil })
        let other = try LlamaModel.load(path: Fixtures.path(Self.untied.0))
        #expect(other.architecture.qkvBias && other.architecture.outputBias && !other.config.tieWordEmbeddings)
    }

    /// Every position's logits and every block output of the three sequences, one pass each and
    /// all three packed into one pass, for both models.
    @Test(arguments: [tied, untied]) func prefillMatchesTransformers(fixture: (String, String)) throws {
        let model = try LlamaModel.load(path: Fixtures.path(fixture.0))
        try ReferenceForwardTests.check(model: model, reference: fixture.1)
        let runs = try ReferenceRun.load(fixture.1, layers: model.config.numHiddenLayers)
        #expect(try ReferenceRun.packedError(model: model, runs: runs) <= 1e-4)
    }

    /// A PEFT LoRA on all seven projections, applied unmerged, gives PEFT's outputs (and not the
    /// base's).
    @Test func loraUnmergedMatchesPEFT() throws {
        let base = try LlamaModel.load(path: Fixtures.path(Self.tied.0))
        let model = try base.adding(LoRAWeights.load(directory: Fixtures.path("qwen3/lora")))
        try ReferenceForwardTests.check(model: model, reference: "qwen3/reference-lora.safetensors")
        let runs = try ReferenceRun.load("qwen3/reference-lora.safetensors", layers: model.config.numHiddenLayers)
        let plain = try ReferenceRun.load(Self.tied.1, layers: model.config.numHiddenLayers)
        for (a, b) in zip(runs, plain) { #expect(maxAbsoluteDifferenceScaled(a.logits.scalars, b.logits.scalars) > 1e-2) }
    }

    /// Token-by-token decoding through the KV cache gives the prefill's logits.
    @Test func decodeMatchesTransformers() throws {
        let model = try LlamaModel.load(path: Fixtures.path(Self.tied.0))
        let run = try ReferenceRun.load(Self.tied.1, layers: model.config.numHiddenLayers)[2]
        let cache = KVCache(config: model.config, capacity: run.tokens.count)
        var rows: [Float] = []
        for t in run.tokens { rows += try model.forward(tokens: [t], cache: cache).logits.scalars }
        #expect(maxAbsoluteDifferenceScaled(rows, run.logits.scalars) <= 1e-4)
    }
}
