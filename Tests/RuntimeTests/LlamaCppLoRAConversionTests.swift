import Foundation
import Testing
import Formats
import Runtime
import Tensors
import TestSupport

/// llama.cpp LoRA GGUF ⇄ PEFT folder. The GGUF is llama.cpp's own `convert_lora_to_gguf.py`
/// output for `tiny/lora` (`convert/tiny-lora.f32.gguf`); PEFT's logits for base + tiny/lora are
/// `reference/lora.safetensors`.
@Suite("LoRA GGUF conversion vs llama.cpp and PEFT")
struct LlamaCppLoRAConversionTests {
    static let lora = Fixtures.path("convert/tiny-lora.f32.gguf")
    static let base = LlamaCppLoRAFile.BaseModel(heads: 4, kvHeads: 2)   // tiny/base/config.json

    static func temporaryFolder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-lora-gguf-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// llama.cpp's GGUF → PEFT folder → steertool's runtime: logits and every block output within
    /// 1e-4 of the range of PEFT's (`ReferenceForwardTests.check`: f32 summation order only),
    /// which also shows the q/k rows of B were un-permuted (a wrong permutation moves the logits
    /// by far more).
    @Test func llamaCppGGUFToPEFTGivesPEFTLogits() throws {
        let dir = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let heads = try LlamaCppLoRAFile.BaseModel(path: Fixtures.path("tiny/base"))
        #expect(heads == Self.base)
        let adapter = try LlamaCppLoRAFile.peftAdapter(from: try GGUFFile(path: Self.lora), base: heads, baseModelNameOrPath: "../base")
        try adapter.write(to: dir + "/peft")
        #expect(adapter.config.r == 8 && adapter.config.loraAlpha == 16)
        #expect(adapter.config.targetModules == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"])
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let model = try base.adding(try LoRAWeights.load(directory: dir + "/peft"))
        try ReferenceForwardTests.check(model: model, reference: "reference/lora.safetensors")
        // The same tensors as PEFT's own file, to f32 bits.
        let peft = try PEFTAdapter.load(directory: Fixtures.path("tiny/lora"))
        let back = try PEFTAdapter.load(directory: dir + "/peft")
        #expect(back.modules == peft.modules)
    }

    /// PEFT folder → LoRA GGUF: the tensors (names, order, types, shapes, bytes) and alpha are
    /// those llama.cpp's converter wrote; → PEFT again gives the original adapter exactly.
    @Test func peftToGGUFMatchesLlamaCppAndRoundTrips() throws {
        let dir = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let peft = try PEFTAdapter.load(directory: Fixtures.path("tiny/lora"))
        try LlamaCppLoRAFile.write(peft, base: Self.base, to: dir + "/lora.gguf")
        let ours = try GGUFFile(path: dir + "/lora.gguf"), ref = try GGUFFile(path: Self.lora)
        #expect(ours.tensorNames == ref.tensorNames)
        for name in ref.tensorNames {
            #expect(ours.info(name)?.storage == ref.info(name)?.storage, "\(name)")
            #expect(ours.info(name)?.shape == ref.info(name)?.shape, "\(name)")
            #expect(Array(try ours.rawBytes(named: name)) == Array(try ref.rawBytes(named: name)), "\(name)")
        }
        for key in ["general.architecture", "general.type", "adapter.type", LlamaCppLoRAFile.alphaKey] {
            #expect(ours.metadata[key] == ref.metadata[key], "\(key)")
        }
        let again = try LlamaCppLoRAFile.peftAdapter(from: ours, base: Self.base)
        try again.write(to: dir + "/peft")
        let back = try PEFTAdapter.load(directory: dir + "/peft")
        #expect(back.modules == peft.modules)
        #expect(back.config.r == peft.config.r && back.config.loraAlpha == peft.config.loraAlpha)
        #expect(back.config.targetModules == peft.config.targetModules)
    }

    /// rsLoRA with rank and alpha patterns (tiny/lora-patterns): llama.cpp has one alpha and scales
    /// by alpha / r, so the writer folds the rest into B; ΔW of every module is unchanged
    /// (within f32 rounding of one product: 1e-6 relative).
    @Test func patternScalesAreFoldedIntoB() throws {
        let dir = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let peft = try PEFTAdapter.load(directory: Fixtures.path("tiny/lora-patterns"))
        try LlamaCppLoRAFile.write(peft, base: Self.base, to: dir + "/lora.gguf")
        let back = try LlamaCppLoRAFile.peftAdapter(from: try GGUFFile(path: dir + "/lora.gguf"), base: Self.base)
        #expect(back.modules.map(\.name) == peft.modules.map(\.name))
        for (a, b) in zip(peft.modules, back.modules) {
            #expect(relativeError(a.delta.scalars, b.delta.scalars) <= 1e-6, "\(a.name)")
        }
    }

    /// Without the base model's heads the q/k tensors cannot be un-permuted: refused, naming --base.
    @Test func missingHeadsAreRefused() throws {
        do {
            _ = try LlamaCppLoRAFile.peftAdapter(from: try GGUFFile(path: Self.lora), base: nil)
            Issue.record("accepted without heads")
        } catch {
            #expect("\(error)".contains("--base") && "\(error)".contains(Self.lora))
        }
    }

    /// The CLI: LoRA GGUF → PEFT folder (--base) and back; existing outputs need --force.
    @Test func cliConvertsBothWays() throws {
        let dir = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = try SteerToolBinary.run(["convert", Self.lora, dir + "/peft", "--base", Fixtures.path("tiny/base")])
        #expect(a.status == 0, "\(a.err)")
        #expect(try SteerToolBinary.run(["convert", Self.lora, dir + "/peft", "--base", Fixtures.path("tiny/base")]).status != 0, "refuses to overwrite")
        #expect(try SteerToolBinary.run(["convert", Self.lora, dir + "/peft", "--base", Fixtures.path("tiny/base"), "--force"]).status == 0)
        let b = try SteerToolBinary.run(["convert", dir + "/peft", dir + "/back.gguf"])   // heads from base_model_name_or_path
        #expect(b.status == 0, "\(b.err)")
        let ours = try GGUFFile(path: dir + "/back.gguf"), ref = try GGUFFile(path: Self.lora)
        for name in ref.tensorNames { #expect(Array(try ours.rawBytes(named: name)) == Array(try ref.rawBytes(named: name)), "\(name)") }
        let t = try SteerToolBinary.run(["convert", Fixtures.path("convert/tensors.gguf"), dir + "/t.safetensors", "--type", "bf16"])
        #expect(t.status == 0, "\(t.err)")
        let help = try SteerToolBinary.run(["convert", "--help"])
        #expect(help.out.contains("LoRA adapter .gguf") && help.out.contains("any other .gguf -> .safetensors"))
    }
}
