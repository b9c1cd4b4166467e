import Foundation
import Testing
import Tensors
import TestSupport
import Formats

/// HF ⇄ GGUF conversion against `fixtures/tiny/gguf/*.gguf`, written by the fixtures generator
/// following convert_hf_to_gguf.py step by step with gguf-py.
@Suite struct LlamaConversionFixtureTests {
    func compare(ours: GGUFFile, reference: GGUFFile, ropeFreqsTolerance: Float = 0) throws {
        #expect(ours.tensorNames == reference.tensorNames)
        #expect(Set(ours.metadata.keys) == Set(reference.metadata.keys),
                "keys only ours: \(Set(ours.metadata.keys).subtracting(reference.metadata.keys)), only reference: \(Set(reference.metadata.keys).subtracting(ours.metadata.keys))")
        #expect(Array(ours.metadata.keys) == Array(reference.metadata.keys), "same key order as gguf-py's writer")
        for (k, v) in reference.metadata where k != "general.name" {
            #expect(ours.metadata[k] == v, "\(k): \(ours.metadata[k]?.description ?? "missing") vs \(v)")
        }
        for name in reference.tensorNames {
            let a = try #require(ours.info(name)), b = try #require(reference.info(name))
            #expect(a.storage == b.storage && a.shape == b.shape, "\(name)")
            if name == LlamaTensorName.ropeFreqs {
                // torch computes the llama3 factors with its own float32 pow; allow one-ulp-level
                // differences (relative 1e-6) there. Every other tensor is a pure copy/encode: exact.
                #expect(relativeError(try ours.tensor(named: name).scalars, try reference.tensor(named: name).scalars) <= Double(ropeFreqsTolerance))
            } else {
                #expect(Array(try ours.rawBytes(named: name)) == Array(try reference.rawBytes(named: name)), "\(name)")
            }
        }
    }

    @Test(arguments: ["f32", "f16", "bf16", "q8_0"])
    func hfToGGUFMatchesReference(type: String) throws {
        let dir = TestFiles.temporaryFolder()
        let out = dir + "/base.\(type).gguf"
        try LlamaConverter.hfToGGUF(input: Fixtures.path("tiny/base"), output: out, type: try #require(.init(rawValue: type)), name: "tiny-base")
        try compare(ours: GGUFFile(path: out), reference: GGUFFile(path: Fixtures.path("tiny/gguf/base.\(type).gguf")))
    }

    @Test func shardedTiedLlama3ToGGUF() throws {
        let dir = TestFiles.temporaryFolder()
        let out = dir + "/t.gguf"
        try LlamaConverter.hfToGGUF(input: Fixtures.path("tiny/tied-llama3"), output: out, type: .f32, name: "tiny-tied-llama3")
        try compare(ours: GGUFFile(path: out), reference: GGUFFile(path: Fixtures.path("tiny/gguf/tied-llama3.f32.gguf")), ropeFreqsTolerance: 1e-6)
    }

    /// GGUF → HF gives back the original model.safetensors byte for byte (same header layout as
    /// the Python library, tensors un-permuted exactly), and a config the runtime can read.
    @Test func ggufToHFReproducesSafetensors() throws {
        let dir = TestFiles.temporaryFolder() + "/hf"
        try LlamaConverter.ggufToHF(input: Fixtures.path("tiny/gguf/base.f32.gguf"), output: dir)
        let ours = try #require(FileManager.default.contents(atPath: dir + "/model.safetensors"))
        let reference = try #require(FileManager.default.contents(atPath: Fixtures.path("tiny/base/model.safetensors")))
        #expect(ours == reference)
        let h = try LlamaMetadata.hyperparameters(fromConfigJSON: try #require(FileManager.default.contents(atPath: dir + "/config.json")))
        let ref = try LlamaMetadata.hyperparameters(fromConfigJSON: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny/base/config.json"))))
        #expect(h.hiddenSize == ref.hiddenSize && h.kvHeads == ref.kvHeads && h.headDim == ref.headDim && h.vocabSize == ref.vocabSize)
        // The rebuilt tokenizer.json carries the same vocabulary and merges.
        let tok = try JSONParser.parse([UInt8](try #require(FileManager.default.contents(atPath: dir + "/tokenizer.json"))))
        let refTok = try fixtureJSON("tiny/base/tokenizer.json")
        let vocab = Dictionary(uniqueKeysWithValues: (tok["model"]?["vocab"]?.objectValue ?? []).map { ($0.0, $0.1.intValue ?? -1) })
        let refVocab = Dictionary(uniqueKeysWithValues: (refTok["model"]?["vocab"]?.objectValue ?? []).map { ($0.0, $0.1.intValue ?? -1) })
        #expect(vocab == refVocab)
        #expect(tok["model"]?["merges"] == refTok["model"]?["merges"])
        #expect(throws: FormatsError.self) { try LlamaConverter.ggufToHF(input: Fixtures.path("tiny/gguf/base.f32.gguf"), output: dir) }
    }

    @Test func roundTripThroughQ8_0IsStable() throws {
        // GGUF(q8_0) → HF → GGUF(q8_0) requantizes already-quantized values: each block's
        // values are d·q with |q| ≤ 127, and requantizing them reproduces the same bytes.
        let dir = TestFiles.temporaryFolder()
        try LlamaConverter.ggufToHF(input: Fixtures.path("tiny/gguf/base.q8_0.gguf"), output: dir + "/hf")
        try LlamaConverter.hfToGGUF(input: dir + "/hf", output: dir + "/again.gguf", type: .q8_0)
        let a = try GGUFFile(path: dir + "/again.gguf"), b = try GGUFFile(path: Fixtures.path("tiny/gguf/base.q8_0.gguf"))
        for name in b.tensorNames { #expect(try a.tensor(named: name) == b.tensor(named: name), "\(name)") }
        // Metadata survives the trip through config.json and tokenizer.json (general.name is
        // the folder's name, hence excluded).
        #expect(Array(a.metadata.keys) == Array(b.metadata.keys))
        for (k, v) in b.metadata where k != "general.name" { #expect(a.metadata[k] == v, "\(k)") }
    }
}
