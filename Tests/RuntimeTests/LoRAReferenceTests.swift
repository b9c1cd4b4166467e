import Testing
import Formats
import Runtime
import Tensors
import TestSupport

/// PEFT LoRA adapters applied unmerged (x·Wᵀ + s·(x·Aᵀ)·Bᵀ inside each projection).
@Suite("LoRA unmerged vs PEFT")
struct LoRAReferenceTests {
    /// base + tiny/lora (all seven projections) vs PeftModel's forward: logits and every block
    /// output within 1e-4 of the reference's range (f32 summation order only, as for the base).
    @Test func loraMatchesPEFTForward() throws {
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let lora = try LoRAWeights.load(directory: Fixtures.path("tiny/lora"))
        #expect(lora.layers.count == base.config.numHiddenLayers)
        #expect(lora.layers.values.allSatisfy { $0.count == 7 })
        let model = try base.adding(lora)
        try ReferenceForwardTests.check(model: model, reference: "reference/lora.safetensors")
        // The adapter matters: without it the same reference is far off.
        let runs = try ReferenceRun.load("reference/lora.safetensors", layers: base.config.numHiddenLayers)
        let plain = try base.forward(tokens: runs[2].tokens).logits
        #expect(maxAbsoluteDifferenceScaled(plain.scalars, runs[2].logits.scalars) > 1e-2)
    }

    /// tiny/lora-patterns (rsLoRA, rank_pattern, alpha_pattern, layers_to_transform) unmerged vs
    /// the model whose weights PEFT's merge_and_unload produced: same logits within 1e-4 of
    /// their range (unmerged vs merged differ by f32 rounding of W + s·B·A only).
    @Test func patternLoRAMatchesPEFTMergedWeights() throws {
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let lora = try LoRAWeights.load(directory: Fixtures.path("tiny/lora-patterns"))
        #expect(Set(lora.layers.keys) == [1, 3])   // layers_to_transform
        #expect(lora.layers[1]?[.q]?.rank == 8)    // rank_pattern "q_proj"
        #expect(lora.layers[3]?[.down]?.rank == 2) // rank_pattern "model.layers.3.mlp.down_proj"
        let merged = try SafetensorsFile(path: Fixtures.path("reference/merged-lora-patterns.safetensors"))
        let baseFile = try SafetensorsFile(path: Fixtures.path("tiny/base/model.safetensors"))
        // The merged file may hold only the tensors the adapter changed; the rest are the base's.
        let mergedWeights = try LlamaWeights.load(config: base.config, source: "merged-lora-patterns") {
            merged.info($0) != nil ? try merged.tensor(named: $0) : try baseFile.tensor(named: $0)
        }
        let mergedModel = try LlamaModel(config: base.config, weights: mergedWeights)
        let unmerged = try base.adding(lora)
        for run in try ReferenceRun.load("reference/base.safetensors", layers: base.config.numHiddenLayers) {
            let a = try unmerged.forward(tokens: run.tokens).logits
            let b = try mergedModel.forward(tokens: run.tokens).logits
            #expect(maxAbsoluteDifferenceScaled(a.scalars, b.scalars) <= 1e-4)
            #expect(maxAbsoluteDifferenceScaled(run.logits.scalars, b.scalars) > 1e-3)  // the adapter does something
        }
    }

    /// Two copies of the same adapter sum: equal to one adapter with doubled scales.
    @Test func adaptersCompose() throws {
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let lora = try LoRAWeights.load(directory: Fixtures.path("tiny/lora"))
        var doubled = lora
        for (l, mods) in lora.layers {
            for (p, f) in mods { doubled.layers[l]![p] = LoRAFactors(a: f.a, b: f.b, scale: 2 * f.scale) }
        }
        let tokens = [0, 5, 17, 300, 42]
        let twice = try base.adding(lora).adding(lora).forward(tokens: tokens).logits
        let once = try base.adding(doubled).forward(tokens: tokens).logits
        #expect(maxAbsoluteDifferenceScaled(twice.scalars, once.scalars) <= 1e-5)
    }

    /// An adapter for a wider model is refused with the module named.
    @Test func adapterForAnotherModelIsRejected() throws {
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let wide = LoRAWeights(name: "wide", layers: [0: [.up: LoRAFactors(a: Tensor(shape: [4, 128]), b: Tensor(shape: [192, 4]), scale: 1)]])
        #expect(throws: RuntimeError.adapterMismatch(
            adapter: "wide", reason: "model.layers.0.mlp.up_proj.lora_A has shape [4, 128], expected [4, 64]")) {
            try base.adding(wide)
        }
    }
}
