import Foundation
import Formats
import Merge
import Runtime
import Tensors
import TestSupport
import Testing

/// steertool's merged models in the programs that consume them (fixtures/merge/merged.json,
/// written by `merged_refs()` in fixtures/generate/extra/merge.py): the generator ran
/// `steertool merge lora` on committed fixtures, recorded the sha256 of what it wrote, ran
/// llama.cpp (llama-cpp-python, f32 KV cache) on the merged GGUF and transformers on the merged
/// HF folders, and recorded PEFT's *unmerged* base+LoRA logits for the same tokens. Here the
/// merge is repeated through `MergeFiles.mergeLoRAAnyFormat` (the code path of the CLI); equal
/// hashes mean the consumers ran exactly the bytes steertool writes, so their logits are checks
/// on those bytes. The merged models are not committed (1.3 MB each): only hashes and logits.
/// The hashes hold on any machine because the merge's f32 arithmetic is bit-reproducible by
/// construction (`LoRAUpdate.merged`: a fixed summation order, no fused multiply-add; pinned by
/// ReproducibleLoRAMergeTests).
@Suite struct MergedModelConsumersTests {
    struct Recorded {
        let base: String, adapter: String, output: String
        let sha256: [String: String]
        let peftUnmerged: Tensor
        let consumer: Tensor   // llama.cpp's logits for a GGUF, transformers' for an HF folder
    }

    static func load() throws -> (tokens: [Int], merges: [String: Recorded], inputs: [String: String]) {
        let root = try MergeFixtures.load("merged.json")
        let tokens = try #require(root["tokens"] as? [Int])
        let unmerged = try #require(root["peft_unmerged_logits"] as? [String: Any])
        var merges: [String: Recorded] = [:]
        for (name, any) in try #require(root["merges"] as? [String: Any]) {
            let m = try #require(any as? [String: Any])
            let consumer = m["llama_cpp_logits"] ?? m["transformers_logits"]
            let adapter = try #require(m["adapter"] as? String)
            merges[name] = Recorded(base: try #require(m["base"] as? String), adapter: adapter,
                                    output: try #require(m["output"] as? String),
                                    sha256: try #require(m["sha256"] as? [String: String]),
                                    peftUnmerged: try MergeFixtures.tensor(unmerged[adapter]),
                                    consumer: try MergeFixtures.tensor(consumer))
        }
        return (tokens, merges, try #require(root["inputs_sha256"] as? [String: String]))
    }

    @Test("the test SHA-256 agrees with FIPS 180-4's examples and with hashlib on the merge inputs")
    func sha256KnownAnswers() throws {
        #expect(SHA256.hex([UInt8]()) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // also: the generator merged these very inputs
        let inputs = try Self.load().inputs
        #expect(inputs.count == 4)
        for (path, digest) in inputs {
            #expect(try SHA256.hex(ofFile: Fixtures.path(path)) == digest, "\(path)")
        }
    }

    /// Merges `m` into a fresh temporary folder as the generator did (same output name: the GGUF's
    /// general.name comes from it), checks the hashes, and returns our runtime's logits on it.
    static func reproduce(_ m: Recorded, tokens: [Int]) throws -> Tensor {
        let dir = NSTemporaryDirectory() + "steertool-merged-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/" + m.output
        _ = try MergeFiles.mergeLoRAAnyFormat(base: Fixtures.path(m.base), adapter: Fixtures.path(m.adapter), output: out)
        for (file, digest) in m.sha256 {
            let path = file == m.output ? out : out + "/" + file
            #expect(try SHA256.hex(ofFile: path) == digest, "\(m.output): \(file) is not the file the reference ran")
        }
        return try LlamaModel.load(path: out).forward(tokens: tokens).logits
    }

    @Test("merged GGUF (GGUF base + PEFT LoRA): llama.cpp runs our bytes; ours = llama.cpp = PEFT unmerged (1e-4)")
    func mergedGGUFInLlamaCpp() throws {
        let (tokens, merges, _) = try Self.load()
        let m = try #require(merges["gguf"])
        #expect(m.base.hasSuffix(".gguf") && m.output.hasSuffix(".gguf"))
        let ours = try Self.reproduce(m, tokens: tokens)
        // all f32 (weights, llama.cpp's KV cache, PEFT): only summation orders differ. Measured
        // (max|Δ|/max|ref|): llama.cpp vs PEFT unmerged 5.1e-7, ours vs llama.cpp 4.4e-7.
        let eConsumer = maxAbsoluteDifferenceScaled(m.consumer.scalars, m.peftUnmerged.scalars)
        let eOurs = maxAbsoluteDifferenceScaled(ours.scalars, m.consumer.scalars)
        #expect(eConsumer < 1e-4, "llama.cpp vs PEFT unmerged \(eConsumer)")
        #expect(eOurs < 1e-4, "ours vs llama.cpp \(eOurs)")
        // the LoRA matters: a merge that dropped it would be far off
        let base = try LlamaModel.load(path: Fixtures.path(m.base)).forward(tokens: tokens).logits
        #expect(maxAbsoluteDifferenceScaled(base.scalars, m.peftUnmerged.scalars) > 1e-2)
    }

    @Test("merged HF folder (single file, and sharded tied llama3): transformers loads our bytes; = PEFT unmerged (1e-5), ours = transformers (1e-4)",
          arguments: ["hf", "hf_sharded"])
    func mergedHFInTransformers(name: String) throws {
        let (tokens, merges, _) = try Self.load()
        let m = try #require(merges[name])
        #expect(!m.output.hasSuffix(".gguf") && m.sha256["config.json"] != nil)
        if name == "hf_sharded" { #expect(m.sha256.keys.contains(Checkpoint.indexFileName)) }
        let ours = try Self.reproduce(m, tokens: tokens)
        // transformers on our folder vs PEFT unmerged: both f32 torch, W + s·B·A merged vs applied
        // as x·Aᵀ·Bᵀ·s, so only rounding differs (measured max|Δ|/max|ref| 5.1e-7 hf, 2.5e-7
        // hf_sharded): bound 1e-5. Ours vs transformers: f32, our summation order vs torch's
        // (measured 6.3e-7, 1.9e-7): bound 1e-4 as for every runtime-vs-reference logit check.
        let eConsumer = maxAbsoluteDifferenceScaled(m.consumer.scalars, m.peftUnmerged.scalars)
        let eOurs = maxAbsoluteDifferenceScaled(ours.scalars, m.consumer.scalars)
        #expect(eConsumer < 1e-5, "transformers on our merge vs PEFT unmerged \(eConsumer)")
        #expect(eOurs < 1e-4, "ours vs transformers \(eOurs)")
        let base = try LlamaModel.load(path: Fixtures.path(m.base)).forward(tokens: tokens).logits
        #expect(maxAbsoluteDifferenceScaled(base.scalars, m.peftUnmerged.scalars) > 1e-2)
    }
}
