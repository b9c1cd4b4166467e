import Foundation
import Testing
import Formats
import Runtime
import Tensors
import TestSupport

/// Logits and every block output against transformers (f32, eager attention) on the fixture
/// models. Tolerance: max|Δ| ≤ 1e-4 · max|ref| per tensor. Both sides compute in f32 with
/// the same formulas; what differs is summation order (OpenBLAS vs torch's gemm, our RMSNorm
/// mean in Double), worth ~1e-6 relative per operation and growing mildly through 4 layers, so
/// 1e-4 leaves headroom while any formula slip (RoPE layout, GQA head mapping, norm eps, llama3
/// frequency band) shows as an error of order 1e-2 or more.
@Suite("Forward pass vs transformers")
struct ReferenceForwardTests {
    static let tolerance = 1e-4

    static func check(model: LlamaModel, reference: String) throws {
        BLAS.setThreadCount(1)
        let runs = try ReferenceRun.load(reference, layers: model.config.numHiddenLayers)
        try #require(!runs.isEmpty, "no sequences in \(reference)")
        for (i, run) in runs.enumerated() {
            let r = try model.forward(tokens: run.tokens, options: ForwardOptions(blockOutputs: true))
            #expect(r.logits.shape == run.logits.shape)
            let e = maxAbsoluteDifferenceScaled(r.logits.scalars, run.logits.scalars)
            #expect(e <= tolerance, "\(reference) sequence \(i): logits error \(e)")
            for (l, ref) in run.hidden.enumerated() {
                let eh = maxAbsoluteDifferenceScaled(r.blockOutputs[l].scalars, ref.scalars)
                #expect(eh <= tolerance, "\(reference) sequence \(i): hidden \(l) error \(eh)")
            }
        }
    }

    /// The reference sequences packed into one pass (each from position 0, attending to itself)
    /// give each sequence's reference logits and block outputs; bad packings are refused.
    @Test func packedSequencesMatchTransformers() throws {
        BLAS.setThreadCount(1)
        let model = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let runs = try ReferenceRun.load("reference/base.safetensors", layers: model.config.numHiddenLayers)
        try #require(runs.count >= 2 && Set(runs.map(\.tokens.count)).count >= 2, "needs sequences of different lengths")
        let e = try ReferenceRun.packedError(model: model, runs: runs)
        print("packed \(runs.map(\.tokens.count)) vs transformers: largest relative error \(e)")
        #expect(e <= Self.tolerance)
        let tokens = runs.flatMap(\.tokens)
        #expect(throws: RuntimeError.self) {
            try model.forward(tokens: tokens, options: ForwardOptions(sequenceLengths: [tokens.count - 1]))
        }
        #expect(throws: RuntimeError.self) {
            try model.forward(tokens: tokens, options: ForwardOptions(sequenceLengths: [tokens.count, 0]))
        }
        #expect(throws: RuntimeError.self) {
            try model.forward(tokens: tokens, options: ForwardOptions(logits: .lastPosition, sequenceLengths: [tokens.count]))
        }
        #expect(throws: RuntimeError.self) {
            try model.forward(tokens: tokens, cache: KVCache(config: model.config), options: ForwardOptions(sequenceLengths: [tokens.count]))
        }
    }

    @Test func base() throws {
        try Self.check(model: LlamaModel.load(path: Fixtures.path("tiny/base")), reference: "reference/base.safetensors")
    }

    @Test func finetuned() throws {
        try Self.check(model: LlamaModel.load(path: Fixtures.path("tiny/finetuned")), reference: "reference/finetuned.safetensors")
    }

    /// Tied embeddings, llama3 RoPE scaling, sharded safetensors.
    @Test func tiedLlama3Sharded() throws {
        let model = try LlamaModel.load(path: Fixtures.path("tiny/tied-llama3"))
        #expect(model.config.tieWordEmbeddings)
        #expect(model.config.rope.ropeType == "llama3")
        try Self.check(model: model, reference: "reference/tied-llama3.safetensors")
    }

    /// A config saying `tie_word_embeddings: true` over a checkpoint that still holds its own
    /// lm_head.weight: transformers 5 unties and uses lm_head, so the untied base reference holds.
    @Test func tiedConfigWithOwnLMHeadUsesIt() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-rt-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createSymbolicLink(
            atPath: dir.appendingPathComponent("model.safetensors").path, withDestinationPath: Fixtures.path("tiny/base/model.safetensors"))
        let config = try String(contentsOfFile: Fixtures.path("tiny/base/config.json"), encoding: .utf8)
            .replacingOccurrences(of: "\"tie_word_embeddings\": false", with: "\"tie_word_embeddings\": true")
        #expect(config.contains("\"tie_word_embeddings\": true"))
        try config.write(to: dir.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        let model = try LlamaModel.load(path: dir.path)
        #expect(!model.config.tieWordEmbeddings)
        try Self.check(model: model, reference: "reference/base.safetensors")
    }

    /// KV-cache decoding of the longest reference sequence, one token at a time, equals the
    /// full prefill within 1e-5 relative per position (only gemm shapes differ).
    @Test func cachedDecodeEqualsPrefillOnFixtureModel() throws {
        BLAS.setThreadCount(1)
        let model = try LlamaModel.load(path: Fixtures.path("tiny/tied-llama3"))
        let runs = try ReferenceRun.load("reference/tied-llama3.safetensors", layers: model.config.numHiddenLayers)
        let tokens = try #require(runs.max { $0.tokens.count < $1.tokens.count }).tokens
        let full = try model.forward(tokens: tokens)
        let cache = KVCache(config: model.config)
        for (i, t) in tokens.enumerated() {
            let step = try model.forward(tokens: [t], cache: cache)
            #expect(relativeError(step.logits.scalars, full.logits.row(i)) <= 1e-5, "position \(i)")
        }
    }
}
