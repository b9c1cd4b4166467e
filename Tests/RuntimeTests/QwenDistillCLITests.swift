import Foundation
import Testing
import Formats
import TestSupport

/// The main job on Qwen3, Qwen2 and Mistral, end to end through the CLI: `distill --lora` on each
/// tiny model (from its HF folder and from llama.cpp's GGUF of it) with its PEFT LoRA writes the
/// adapter, made for that architecture and shape, and the per-layer report with Theorem 3.1;
/// `eval` compares base + adapter with base + LoRA.
@Suite("CLI distill and eval on Qwen3, Qwen2 and Mistral")
struct QwenDistillCLITests {
    /// (base, its LoRA, the architecture and shape the adapter must record).
    static let cases: [(String, String, ModelSignature)] = [
        ("qwen3/tiny", "qwen3/lora", ModelSignature(architecture: "Qwen3ForCausalLM", hiddenSize: 64, layers: 3)),
        ("qwen3/tiny.gguf", "qwen3/lora", ModelSignature(architecture: "Qwen3ForCausalLM", hiddenSize: 64, layers: 3)),
        ("runtime/qwen2", "runtime/qwen2-lora", ModelSignature(architecture: "Qwen2ForCausalLM", hiddenSize: 32, layers: 2)),
        ("runtime/qwen2.gguf", "runtime/qwen2-lora", ModelSignature(architecture: "Qwen2ForCausalLM", hiddenSize: 32, layers: 2)),
        ("runtime/mistral", "runtime/mistral-lora", ModelSignature(architecture: "MistralForCausalLM", hiddenSize: 32, layers: 2)),
        ("runtime/mistral.gguf", "runtime/mistral-lora", ModelSignature(architecture: "LlamaForCausalLM", hiddenSize: 32, layers: 2)),
    ]

    @Test(arguments: cases) func distillThenEval(base: String, loraPath: String, signature: ModelSignature) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-qwen-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // 12 sequences of 16 tokens: 154 held-in tokens, more than the widths (64, 32); ids below
        // every vocabulary (96, 120).
        let sequences = (0..<12).map { i in (0..<16).map { (i * 11 + $0 * 7) % 96 } }
        let calib = dir + "/calib.json"
        try Data(String(describing: sequences).utf8).write(to: URL(fileURLWithPath: calib))
        let model = Fixtures.path(base), lora = Fixtures.path(loraPath)
        let d = try SteerToolBinary.run(["distill", "--base", model, "--lora", lora, "--calib", calib, "--rank", "4",
                                         "--output", dir + "/steer.safetensors", "--report", dir + "/report.json"])
        #expect(d.status == 0, "\(d.err)")
        let file = try SteeringAdapterFile.load(path: dir + "/steer.safetensors")
        #expect(file.modelSignature == signature)
        let report = try JSONParser.parse([UInt8](try Data(contentsOf: URL(fileURLWithPath: dir + "/report.json"))))
        let layers = report["layers"]?.arrayValue ?? []
        #expect(layers.count == signature.layers)
        for l in layers {
            let t = l["theorem31"]
            let (e, lo, hi) = (t?["exact"]?.doubleValue ?? -1, t?["lower"]?.doubleValue ?? -1, t?["upper"]?.doubleValue ?? -1)
            #expect(e > 0 && lo <= e * (1 + 1e-5) && e <= hi * (1 + 1e-5), "layer \(l["layer"]?.intValue ?? -1): \(lo) ≤ \(e) ≤ \(hi)")
        }
        let e = try SteerToolBinary.run(["eval", "--model", model, "--adapter", dir + "/steer.safetensors", "--reference", model,
                                         "--reference-adapter", lora, "--tokens", calib, "--json"])
        #expect(e.status == 0, "\(e.err)")
        #expect(e.out.contains("recovered"), "\(e.out)")
    }
}
