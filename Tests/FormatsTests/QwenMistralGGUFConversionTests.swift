import Foundation
import Testing
import Tensors
import TestSupport
import Formats

/// HF ⇄ GGUF for Qwen2, Qwen3 and Mistral against the files llama.cpp's own converter
/// (`convert_hf_to_gguf.py` of llama-cpp-python 0.3.36, --outtype f32) wrote for the small
/// fixture models (fixtures/generate/extra/gguf_archs.py): qwen2 / qwen3 files keep Q/K rows in
/// Hugging Face order and carry biases and q/k norms; Mistral is written as llama, permuted.
@Suite struct QwenMistralGGUFConversionTests {
    /// (HF folder, llama.cpp's GGUF, general.architecture).
    static let cases = [("qwen3/tiny", "qwen3/tiny.gguf", "qwen3"), ("qwen3/tiny-untied", "qwen3/tiny-untied.gguf", "qwen3"),
                        ("runtime/qwen2", "runtime/qwen2.gguf", "qwen2"), ("runtime/mistral", "runtime/mistral.gguf", "llama")]

    /// Our HF → GGUF (f32) holds llama.cpp's tensors byte for byte under the same names, types
    /// and shapes, and its architecture keys with the same values (the converter's naming and
    /// size-label keys and its vocabulary aside: these folders have no tokenizer).
    @Test(arguments: cases) func hfToGGUFMatchesLlamaCpp(folder: String, reference: String, architecture: String) throws {
        let out = TestFiles.temporaryFolder() + "/ours.gguf"
        try LlamaConverter.hfToGGUF(input: Fixtures.path(folder), output: out, type: .f32)
        let ours = try GGUFFile(path: out), ref = try GGUFFile(path: Fixtures.path(reference))
        #expect(ours.metadata["general.architecture"]?.stringValue == architecture)
        #expect(Set(ours.tensorNames) == Set(ref.tensorNames))
        for name in ref.tensorNames {
            let a = try #require(ours.info(name)), b = try #require(ref.info(name))
            #expect(a.storage == b.storage && a.shape == b.shape, "\(name)")
            #expect(Array(try ours.rawBytes(named: name)) == Array(try ref.rawBytes(named: name)), "\(name)")
        }
        let skipped: Set<String> = ["general.name", "general.size_label", "general.quantization_version"]
        for (k, v) in ref.metadata where !k.hasPrefix("tokenizer.") && !skipped.contains(k) {
            #expect(ours.metadata[k] == v, "\(k): \(ours.metadata[k]?.description ?? "missing") vs \(v)")
        }
        for k in ours.metadata.keys where !skipped.contains(k) { #expect(ref.metadata[k] != nil, "only ours: \(k)") }
    }

    /// llama.cpp's GGUF → HF gives back the fixture's tensors bit for bit (Q/K rows un-permuted
    /// for the llama-named Mistral file only); and HF → GGUF → HF → GGUF in f16 and bf16 ends with
    /// the first GGUF's bytes.
    @Test(arguments: cases) func roundTrips(folder: String, reference: String, architecture: String) throws {
        let dir = TestFiles.temporaryFolder()
        try LlamaConverter.ggufToHF(input: Fixtures.path(reference), output: dir + "/hf")
        let back = try Checkpoint(path: dir + "/hf"), original = try Checkpoint(path: Fixtures.path(folder))
        for name in original.tensorNames where !(name == "lm_head.weight" && back.info(name) == nil) {
            #expect(try back.tensor(named: name) == original.tensor(named: name), "\(name)")
        }
        let config = try #require(back.configJSON)
        #expect(GGUFModelArchitecture(configJSON: config).rawValue == architecture)
        for type in [LlamaConverter.OutputType.f16, .bf16] {
            try LlamaConverter.hfToGGUF(input: Fixtures.path(folder), output: dir + "/a.gguf", type: type, force: true)
            try LlamaConverter.ggufToHF(input: dir + "/a.gguf", output: dir + "/hf-\(type)", force: true)
            try LlamaConverter.hfToGGUF(input: dir + "/hf-\(type)", output: dir + "/b.gguf", type: type, force: true)
            let a = try GGUFFile(path: dir + "/a.gguf"), b = try GGUFFile(path: dir + "/b.gguf")
            #expect(a.tensorNames == b.tensorNames)
            for name in a.tensorNames {
                #expect(Array(try a.rawBytes(named: name)) == Array(try b.rawBytes(named: name)), "\(type) \(name)")
            }
        }
    }
}
