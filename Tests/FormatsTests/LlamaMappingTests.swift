import Foundation
import Testing
import Tensors
import TestSupport
import Formats

@Suite struct LlamaMappingTests {
    /// llama.cpp's permute on one head of width 4: reshape (1, 2, 2) and swap the last two axes
    /// maps rows [r0, r1, r2, r3] to [r0, r2, r1, r3] (worked by hand from the numpy expression).
    @Test func permutationOfOneHead() throws {
        let t = Tensor(rows: [[0, 0], [1, 1], [2, 2], [3, 3]])
        let p = try RopePermutation.permute(t, heads: 1)
        #expect(p == Tensor(rows: [[0, 0], [2, 2], [1, 1], [3, 3]]))
        #expect(try RopePermutation.unpermute(p, heads: 1) == t)
        let big = Tensor(shape: [24, 3], scalars: (0..<72).map(Float.init))
        #expect(try RopePermutation.unpermute(RopePermutation.permute(big, heads: 3), heads: 3) == big)
        #expect(throws: FormatsError.self) { try RopePermutation.permute(big, heads: 5) }
    }

    @Test func namesMapBothWays() {
        #expect(LlamaTensorName.gguf(fromHF: "model.layers.12.self_attn.k_proj.weight") ==
                .init(name: "blk.12.attn_k.weight", layer: 12, permutation: .key))
        #expect(LlamaTensorName.hf(fromGGUF: "blk.3.ffn_down.weight")?.name == "model.layers.3.mlp.down_proj.weight")
        #expect(LlamaTensorName.hf(fromGGUF: "output.weight")?.name == "lm_head.weight")
        #expect(LlamaTensorName.gguf(fromHF: "model.layers.x.mlp.up_proj.weight") == nil)
        #expect(LlamaTensorName.gguf(fromHF: "model.layers.01.mlp.up_proj.weight") == nil)
        for e in LlamaTensorName.layerEntries {
            let g = LlamaTensorName.gguf(fromHF: "model.layers.7." + e.hf)
            #expect(LlamaTensorName.hf(fromGGUF: g?.name ?? "")?.name == "model.layers.7." + e.hf)
        }
    }

    /// config.json → llama.* → config.json keeps every hyperparameter the runtime reads.
    @Test func configRoundTrip() throws {
        for model in ["tiny/base", "tiny/tied-llama3"] {
            let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(model + "/config.json")))
            let h = try LlamaMetadata.hyperparameters(fromConfigJSON: data)
            var md = LlamaMetadata.ggufMetadata(h)
            md["general.architecture"] = .string("llama")
            md["tokenizer.ggml.bos_token_id"] = .uint32(UInt32(h.bosTokenId ?? 0))
            md["tokenizer.ggml.eos_token_id"] = .uint32(UInt32(h.eosTokenIds.first ?? 0))
            let names = h.tieWordEmbeddings ? ["token_embd.weight"] : ["token_embd.weight", "output.weight"]
            let back = try LlamaMetadata.hyperparameters(fromConfigJSON: LlamaMetadata.configJSON(fromGGUF: md, tensorNames: names))
            #expect(back.vocabSize == h.vocabSize && back.hiddenSize == h.hiddenSize && back.intermediateSize == h.intermediateSize)
            #expect(back.layers == h.layers && back.heads == h.heads && back.kvHeads == h.kvHeads && back.headDim == h.headDim)
            #expect(Float(back.rmsNormEps) == Float(h.rmsNormEps) && Float(back.ropeTheta) == Float(h.ropeTheta))
            #expect(back.maxPositionEmbeddings == h.maxPositionEmbeddings && back.tieWordEmbeddings == h.tieWordEmbeddings)
            #expect(back.bosTokenId == h.bosTokenId && back.eosTokenIds == h.eosTokenIds)
        }
    }

    @Test func legacyAndNewRopeLayoutsAgree() throws {
        let new = try LlamaMetadata.hyperparameters(fromConfigJSON: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny/tied-llama3/config.json"))))
        let old = try LlamaMetadata.hyperparameters(fromConfigJSON: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny/tied-llama3/config.legacy.json"))))
        #expect(new.ropeType == "llama3" && old.ropeType == "llama3")
        #expect(new.ropeTheta == old.ropeTheta && new.ropeFactor == old.ropeFactor)
        #expect(new.originalMaxPositionEmbeddings == old.originalMaxPositionEmbeddings)
        #expect(LlamaMetadata.llama3RopeFactors(new) == LlamaMetadata.llama3RopeFactors(old))
    }
}
