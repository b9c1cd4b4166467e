import Foundation
import Testing
import Tensors
import TestSupport
import Formats

/// The real SmolLM2-135M-Instruct Q4_1 GGUF (fetched by `make test`): the header matches what
/// gguf-py reports for it (272 tensors, 33 keys, v3, 134 515 008 parameters), every
/// tensor dequantizes to finite values, and its metadata maps to a config.json.
@Suite struct SmolLM2FormatTests {
    @Test func opensAndDequantizesEveryTensor() throws {
        try #require(FileManager.default.fileExists(atPath: Fixtures.smolLM2GGUF), Comment(rawValue: Fixtures.smolLM2Missing))
        let g = try GGUFFile(path: Fixtures.smolLM2GGUF)
        #expect(g.version == 3 && g.tensorNames.count == 272 && g.metadata.count == 33)
        #expect(g.info("token_embd.weight")?.storage == .ggml(.q8_0))
        #expect(g.info("token_embd.weight")?.shape == [49152, 576])
        #expect(g.info("blk.0.attn_k.weight")?.storage == .ggml(.q4_1))
        #expect(g.info("blk.0.attn_k.weight")?.shape == [192, 576])
        #expect(g.parameterCount == 134_515_008)
        for name in g.tensorNames {
            let t = try g.tensor(named: name)
            let finite = t.scalars.allSatisfy { $0.isFinite }
            #expect(finite, "\(name)")
        }
        let h = try LlamaMetadata.hyperparameters(fromConfigJSON: LlamaMetadata.configJSON(fromGGUF: g.metadata, tensorNames: g.tensorNames))
        #expect(h.hiddenSize == 576 && h.layers == 30 && h.heads == 9 && h.kvHeads == 3 && h.vocabSize == 49152)
        #expect(h.tieWordEmbeddings && h.ropeTheta == 100000 && h.bosTokenId == 1 && h.eosTokenIds == [2])
    }
}
