import Foundation
import Formats
import Merge
import Tensors
import TestSupport
import Testing

/// File-level merges on folders built from the recorded fixtures (inputs written with Formats'
/// safetensors writer; expectations from PEFT and mergekit).
@Suite struct MergeFilesTests {
    static func tempFolder() -> String {
        let p = NSTemporaryDirectory() + "steertool-merge-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }

    static func writeModel(_ tensors: [String: Tensor], to folder: String, shardBytes: Int? = nil) throws {
        let records = tensors.keys.sorted().map { SafetensorsWriter.record($0, tensors[$0]!) }
        if let shardBytes {
            try SafetensorsWriter.writeSharded(records, metadata: ["format": "pt"], to: folder, maxShardBytes: shardBytes)
        } else {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try SafetensorsWriter.write(records, metadata: ["format": "pt"], to: folder + "/model.safetensors")
        }
        try Data("{\"model_type\": \"llama\"}".utf8).write(to: URL(fileURLWithPath: folder + "/config.json"))
    }

    @Test("merge lora: PEFT merge_and_unload through files, sharded like the base, nothing overwritten without force",
          arguments: [nil, 3000] as [Int?])
    func mergeLoRAFiles(shardBytes: Int?) throws {
        let root = try MergeFixtures.load("peft-merge.json")
        let v = root["patterns"] as! [String: Any]
        let dir = Self.tempFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeModel(try MergeFixtures.tensors(v["base"]), to: dir + "/base", shardBytes: shardBytes)
        try FileManager.default.createDirectory(atPath: dir + "/adapter", withIntermediateDirectories: true)
        let adapter = try MergeFixtures.tensors(v["adapter"])
        try SafetensorsWriter.write(adapter.keys.sorted().map { SafetensorsWriter.record($0, adapter[$0]!) }, to: dir + "/adapter/adapter_model.safetensors")
        try JSONSerialization.data(withJSONObject: v["adapter_config"]!).write(to: URL(fileURLWithPath: dir + "/adapter/adapter_config.json"))

        let s = try MergeFiles.mergeLoRA(base: dir + "/base", adapter: dir + "/adapter", output: dir + "/out")
        #expect(s.changedCount == adapter.count / 2)
        let baseFiles = Set(try FileManager.default.contentsOfDirectory(atPath: dir + "/base"))
        let outFiles = Set(try FileManager.default.contentsOfDirectory(atPath: dir + "/out"))
        #expect(baseFiles == outFiles)
        if shardBytes != nil { #expect(outFiles.contains(Checkpoint.indexFileName)) }
        let merged = try Checkpoint(path: dir + "/out")
        let expected = try MergeFixtures.tensors(v["merged"])
        #expect(Set(merged.tensorNames) == Set(expected.keys))
        for (name, ref) in expected {
            // float32 W + s·B·A as PEFT: 1e-6 relative (untouched tensors are byte copies: exact)
            #expect(relativeError(try merged.tensor(named: name).scalars, ref.scalars) < 1e-6, "\(name)")
        }
        #expect(throws: (any Error).self) { try MergeFiles.mergeLoRA(base: dir + "/base", adapter: dir + "/adapter", output: dir + "/out") }
        _ = try MergeFiles.mergeLoRA(base: dir + "/base", adapter: dir + "/adapter", output: dir + "/out", force: true)
    }

    /// config.json of the tiny Llama the generator's `tiny_llama` builds.
    static let tinyConfig = #"""
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 32, "hidden_size": 16,
         "intermediate_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1,
         "max_position_embeddings": 64, "rms_norm_eps": 1e-06, "rope_theta": 10000.0, "tie_word_embeddings": false,
         "hidden_act": "silu", "torch_dtype": "float32"}
        """#

    @Test("merge lora into GGUF (HF base → .gguf, and .gguf base → HF): PEFT's merged weights, Q/K permuted as gguf-py")
    func mergeLoRAGGUF() throws {
        let root = try MergeFixtures.load("peft-merge.json")
        let v = root["plain"] as! [String: Any]
        let dir = Self.tempFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeModel(try MergeFixtures.tensors(v["base"]), to: dir + "/base")
        try Data(Self.tinyConfig.utf8).write(to: URL(fileURLWithPath: dir + "/base/config.json"))
        try FileManager.default.createDirectory(atPath: dir + "/adapter", withIntermediateDirectories: true)
        let adapter = try MergeFixtures.tensors(v["adapter"])
        try SafetensorsWriter.write(adapter.keys.sorted().map { SafetensorsWriter.record($0, adapter[$0]!) }, to: dir + "/adapter/adapter_model.safetensors")
        try JSONSerialization.data(withJSONObject: v["adapter_config"]!).write(to: URL(fileURLWithPath: dir + "/adapter/adapter_config.json"))
        let expected = try MergeFixtures.tensors(v["merged"])

        _ = try MergeFiles.mergeLoRAAnyFormat(base: dir + "/base", adapter: dir + "/adapter", output: dir + "/merged.gguf")
        let g = try GGUFFile(path: dir + "/merged.gguf")
        var checked = 0
        for name in g.tensorNames {
            guard let m = LlamaTensorName.hf(fromGGUF: name), let ref = expected[m.name] else { continue }
            var t = try g.tensor(named: name)
            if m.permutation != nil { t = try RopePermutation.unpermute(t, heads: m.permutation == .key ? 1 : 2, name: name) }
            // f32 GGUF of W + s·B·A: PEFT's 1e-6 relative
            #expect(relativeError(t.scalars, ref.scalars) < 1e-6, "\(name)")
            checked += 1
        }
        #expect(checked == expected.count)
        #expect(!(try FileManager.default.contentsOfDirectory(atPath: dir)).contains { $0.hasPrefix(".steertool-merge") })

        // GGUF base in, HF folder out
        try LlamaConverter.hfToGGUF(input: dir + "/base", output: dir + "/base.gguf", type: .f32)
        _ = try MergeFiles.mergeLoRAAnyFormat(base: dir + "/base.gguf", adapter: dir + "/adapter", output: dir + "/from-gguf")
        let out = try Checkpoint(path: dir + "/from-gguf")
        for (name, ref) in expected {
            #expect(relativeError(try out.tensor(named: name).scalars, ref.scalars) < 1e-6, "\(name)")
        }
        #expect(throws: (any Error).self) { try MergeFiles.mergeLoRAAnyFormat(base: dir + "/base", adapter: dir + "/adapter", output: dir + "/merged.gguf") }
    }

    @Test("merge lora refuses a base without the adapter's modules and writes nothing")
    func mergeLoRAMismatch() throws {
        let root = try MergeFixtures.load("peft-merge.json")
        let v = root["plain"] as! [String: Any], other = root["fan_in_fan_out"] as! [String: Any]
        let dir = Self.tempFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeModel(try MergeFixtures.tensors(other["base"]), to: dir + "/base")
        try FileManager.default.createDirectory(atPath: dir + "/adapter", withIntermediateDirectories: true)
        let adapter = try MergeFixtures.tensors(v["adapter"])
        try SafetensorsWriter.write(adapter.keys.sorted().map { SafetensorsWriter.record($0, adapter[$0]!) }, to: dir + "/adapter/adapter_model.safetensors")
        try JSONSerialization.data(withJSONObject: v["adapter_config"]!).write(to: URL(fileURLWithPath: dir + "/adapter/adapter_config.json"))
        #expect(throws: MergeError.self) { try MergeFiles.mergeLoRA(base: dir + "/base", adapter: dir + "/adapter", output: dir + "/out") }
        #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    }

    @Test("merge config: mergekit's ties output from files")
    func mergeConfigFiles() throws {
        let (models, merges) = try MergekitTests.load()
        let dir = Self.tempFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (n, t) in models { try Self.writeModel(t, to: dir + "/" + n) }
        let (yaml, expected) = merges["ties"]!
        _ = try MergeFiles.mergeCheckpoints(config: try MergekitConfig(yaml: yaml), relativeTo: dir, output: dir + "/out")
        let out = try Checkpoint(path: dir + "/out")
        for (name, ref) in expected {
            #expect(relativeError(try out.tensor(named: name).scalars, ref.scalars) < 1e-6, "\(name)")
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/out/config.json"))
        // a density outside (0, 1] for one tensor only is refused before anything is written
        let bad = yaml.replacingOccurrences(of: "density: 0.7", with: "density:\n        - filter: mlp.down_proj\n          value: 1.5\n        - value: 0.7")
        #expect(bad != yaml)
        let badConfig = try MergekitConfig(yaml: bad)
        do {
            _ = try MergeFiles.mergeCheckpoints(config: badConfig, relativeTo: dir, output: dir + "/bad")
            Issue.record("a density of 1.5 was accepted")
        } catch {
            #expect("\(error)".contains("density = 1.5") && "\(error)".contains("mlp.down_proj"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/bad"))
    }

    @Test("extract → adapter folder → merge lora reproduces the fine-tuned weights up to the SVD tail; combine adapters")
    func extractRoundTrip() throws {
        let (models, _) = try MergekitTests.load()
        let dir = Self.tempFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.writeModel(models["base"]!, to: dir + "/base")
        try Self.writeModel(models["a"]!, to: dir + "/ft")
        let errors = try MergeFiles.extractLoRA(base: dir + "/base", finetuned: dir + "/ft", rank: .fixed(32), output: dir + "/lora")
        #expect(errors.count == 14)
        #expect(errors.values.allSatisfy { $0 < 1e-6 })   // rank 32 ≥ every projection's min dimension: exact
        _ = try MergeFiles.mergeLoRA(base: dir + "/base", adapter: dir + "/lora", output: dir + "/merged")
        let merged = try Checkpoint(path: dir + "/merged")
        for name in merged.tensorNames {
            // projections: full-rank extraction, a float32 round trip of the delta (1e-5 relative
            // to the weight); everything else (norms, embeddings) is not a LoRA target: the base's
            let ref = name.hasSuffix("_proj.weight") ? models["a"]![name]! : models["base"]![name]!
            #expect(relativeError(try merged.tensor(named: name).scalars, ref.scalars) < 1e-5, "\(name)")
        }
        // combining the adapter with itself at weights 0.5/0.5 by cat is the adapter itself
        _ = try MergeFiles.combineAdapters([dir + "/lora", dir + "/lora"], weights: [0.5, 0.5],
                                           combination: LoRACombination(type: .cat), output: dir + "/combined")
        let a = try PEFTAdapterFolder.read(dir + "/lora"), c = try PEFTAdapterFolder.read(dir + "/combined")
        for (m, f) in a.modules {
            #expect(relativeError(c.modules[m]!.delta.scalars, f.delta.scalars) < 1e-6, "\(m)")
        }
    }
}
