import Foundation
import Testing
import Formats
import Runtime
import Tensors
import TestSupport

/// LoRA GGUF ⇄ PEFT for Qwen3, Qwen2, Mistral and Gemma-3 against llama.cpp's own
/// `convert_lora_to_gguf.py` (fixtures/generate/extra/gguf_archs.py): each file records its base
/// model's architecture (`general.architecture`), names tensors as that architecture does, and
/// permutes q/k rows for llama-named files (Mistral) only.
@Suite("LoRA GGUF per architecture vs llama.cpp and PEFT")
struct LoRAGGUFArchitectureTests {
    /// (PEFT folder, base folder, llama.cpp's LoRA GGUF, PEFT's outputs, general.architecture).
    static let cases = [
        ("qwen3/lora", "qwen3/tiny", "qwen3/lora.f32.gguf", "qwen3/reference-lora.safetensors", "qwen3"),
        ("runtime/qwen2-lora", "runtime/qwen2", "runtime/qwen2-lora.f32.gguf", "runtime/reference-qwen2-lora.safetensors", "qwen2"),
        ("runtime/mistral-lora", "runtime/mistral", "runtime/mistral-lora.f32.gguf", "runtime/reference-mistral-lora.safetensors", "llama"),
        ("gemma3/lora", "gemma3/tiny", "gemma3/lora.f32.gguf", "gemma3/reference-lora.safetensors", "gemma3"),
    ]

    /// PEFT → GGUF: llama.cpp's tensors (names, order, types, shapes, bytes) and keys.
    @Test(arguments: cases) func peftToGGUFMatchesLlamaCpp(peft: String, base: String, gguf: String, reference: String, architecture: String) throws {
        let dir = try LlamaCppLoRAConversionTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let baseModel = try LlamaCppLoRAFile.BaseModel(path: Fixtures.path(base))
        #expect(baseModel.architecture.rawValue == architecture)
        try LlamaCppLoRAFile.write(try PEFTAdapter.load(directory: Fixtures.path(peft)), base: baseModel, to: dir + "/lora.gguf")
        let ours = try GGUFFile(path: dir + "/lora.gguf"), ref = try GGUFFile(path: Fixtures.path(gguf))
        #expect(ours.tensorNames == ref.tensorNames)
        for name in ref.tensorNames {
            #expect(ours.info(name)?.storage == ref.info(name)?.storage && ours.info(name)?.shape == ref.info(name)?.shape, "\(name)")
            #expect(Array(try ours.rawBytes(named: name)) == Array(try ref.rawBytes(named: name)), "\(name)")
        }
        for key in ["general.architecture", "general.type", "adapter.type", LlamaCppLoRAFile.alphaKey] {
            #expect(ours.metadata[key] == ref.metadata[key], "\(key)")
        }
    }

    /// llama.cpp's GGUF → PEFT folder → the runtime: PEFT's logits and block outputs; the
    /// folder holds PEFT's own tensors.
    @Test(arguments: cases) func llamaCppGGUFToPEFTGivesPEFTLogits(peft: String, base: String, gguf: String, reference: String, architecture: String) throws {
        let dir = try LlamaCppLoRAConversionTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let adapter = try LlamaCppLoRAFile.peftAdapter(from: try GGUFFile(path: Fixtures.path(gguf)),
                                                       base: try LlamaCppLoRAFile.BaseModel(path: Fixtures.path(base)))
        try adapter.write(to: dir + "/peft")
        #expect(try PEFTAdapter.load(directory: dir + "/peft").modules == (try PEFTAdapter.load(directory: Fixtures.path(peft))).modules)
        let model = try LlamaModel.load(path: Fixtures.path(base)).adding(try LoRAWeights.load(directory: dir + "/peft"))
        try ReferenceForwardTests.check(model: model, reference: reference)
    }

    /// A LoRA made for one architecture is refused with another base, naming both; a Qwen file
    /// needs no base at all (no permutation); the CLI writes the base's architecture.
    @Test func otherArchitecturesAreRefused() throws {
        let qwen2 = try GGUFFile(path: Fixtures.path("runtime/qwen2-lora.f32.gguf"))
        #expect {
            try LlamaCppLoRAFile.peftAdapter(from: qwen2, base: try LlamaCppLoRAFile.BaseModel(path: Fixtures.path("runtime/mistral.gguf")))
        } throws: { "\($0)".contains("made for a qwen2 model; the base model is llama") && "\($0)".contains("qwen2-lora.f32.gguf") }
        #expect(throws: Never.self) { try LlamaCppLoRAFile.peftAdapter(from: qwen2, base: nil) }
        let dir = try LlamaCppLoRAConversionTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try SteerToolBinary.run(["convert", Fixtures.path("runtime/qwen2-lora"), dir + "/a.gguf", "--base", Fixtures.path("runtime/qwen2.gguf")])
        #expect(r.status == 0, "\(r.err)")
        #expect(try GGUFFile(path: dir + "/a.gguf").metadata["general.architecture"]?.stringValue == "qwen2")
        let noBase = try SteerToolBinary.run(["convert", Fixtures.path("runtime/qwen2-lora"), dir + "/b.gguf"])
        #expect(noBase.status != 0 && noBase.err.contains("give --base"), "\(noBase.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/b.gguf"))
    }
}
