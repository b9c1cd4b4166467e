import Foundation
import Formats
import Merge
import Runtime
import Tensors
import TestSupport
import Testing

/// PEFT as the consumer of `steertool extract-lora` (fixtures/merge/extracted.json, written by
/// `extracted_refs()` in fixtures/generate/extra/merge.py): the generator ran steertool's
/// extraction of tiny/finetuned − tiny/base at rank 8, loaded the folder with
/// `PeftModel.from_pretrained` (every tensor used) and recorded the config PEFT read, the tensor
/// names and shapes, and PEFT's logits. Here the extraction is repeated through
/// `MergeFiles.extractLoRA` (the CLI's code path): same layout, and the runtime's base + extracted
/// LoRA gives PEFT's logits. The factors come from an SVD whose last bits depend on the LAPACK
/// build, so numbers are compared with a tolerance: 1e-4 · max|logit| (f32 forward passes and a
/// rank-8 truncation whose singular values are well separated).
@Suite struct ExtractedLoRAConsumerTests {
    @Test func peftLoadsTheExtractedAdapterAndAgrees() throws {
        let ref = try MergeFixtures.load("extracted.json")
        let rank = try #require(ref["rank"] as? Int)
        let tokens = try #require(ref["tokens"] as? [Int])
        let dir = NSTemporaryDirectory() + "steertool-extract-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        BLAS.setThreadCount(1)
        _ = try MergeFiles.extractLoRA(base: Fixtures.path("tiny/base"), finetuned: Fixtures.path("tiny/finetuned"),
                                       rank: .fixed(rank), output: dir)

        // the layout PEFT read
        let adapter = try PEFTAdapter.load(directory: dir)
        let cfg = try #require(ref["peft_config"] as? [String: Any])
        #expect(adapter.config.r == cfg["r"] as? Int)
        #expect(adapter.config.loraAlpha == (cfg["lora_alpha"] as? NSNumber)?.doubleValue)
        #expect(adapter.config.targetModules?.sorted() == cfg["target_modules"] as? [String])
        #expect(adapter.config.useRSLoRA == cfg["use_rslora"] as? Bool)
        #expect(adapter.config.fanInFanOut == cfg["fan_in_fan_out"] as? Bool)
        let shapes = try #require(ref["tensors"] as? [String: [Int]])
        let file = try SafetensorsFile(path: dir + "/adapter_model.safetensors")
        #expect(file.tensorNames.sorted() == shapes.keys.sorted())
        for (name, dims) in shapes { #expect(file.info(name)?.shape.dims == dims, "\(name)") }

        // the numbers PEFT computed with it
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let steered = try base.adding(LoRAWeights.load(directory: dir)).forward(tokens: tokens).logits
        let peft = try MergeFixtures.tensor(ref["peft_logits"])
        let e = maxAbsoluteDifferenceScaled(steered.scalars, peft.scalars)
        #expect(e <= 1e-4, "runtime + extracted LoRA vs PEFT: \(e)")
        let plain = try MergeFixtures.tensor(ref["base_logits"])
        #expect(maxAbsoluteDifferenceScaled(plain.scalars, peft.scalars) > 1e-2)   // the adapter matters
        print("extracted LoRA r\(rank): runtime vs PEFT \(e)")
    }
}
