import Testing
import Formats
import Runtime
import Tensors
import TestSupport

@Suite("Adapters applied unmerged")
struct AdapterTests {
    let tokens = [3, 8, 21, 34, 2, 11]

    func lora(_ c: LlamaConfig, rank: Int, seed: UInt64, scale: Float, projections: [LlamaProjection] = LlamaProjection.allCases) -> LoRAWeights {
        var layers: [Int: [LlamaProjection: LoRAFactors]] = [:]
        var s = seed
        for l in 0..<c.numHiddenLayers {
            for p in projections {
                s &+= 1
                layers[l, default: [:]][p] = LoRAFactors(
                    a: .randomNormal([rank, p.inputSize(c)], std: 0.2, seed: s),
                    b: .randomNormal([p.outputSize(c), rank], std: 0.2, seed: s &+ 1000), scale: scale)
            }
        }
        return LoRAWeights(name: "lora-\(seed)", layers: layers)
    }

    /// Two adapters compose by summing: equal to one adapter whose factors are stacked
    /// (A = [A₁; A₂], B = [B₁ B₂], both scales folded into B). Different gemm shapes: 1e-5 rel.
    @Test func twoLoRAsSumLikeOneStacked() throws {
        let base = try SyntheticModel.model()
        let c = base.config
        let l1 = lora(c, rank: 2, seed: 10, scale: 0.5), l2 = lora(c, rank: 3, seed: 20, scale: 2)
        var stacked: [Int: [LlamaProjection: LoRAFactors]] = [:]
        for (layer, mods) in l1.layers {
            for (p, f1) in mods {
                let f2 = try #require(l2.layers[layer]?[p])
                let a = Tensor.concatenatingRows([f1.a, f2.a])
                let b = Tensor.concatenatingRows([(f1.scale * f1.b).transposed(), (f2.scale * f2.b).transposed()]).transposed()
                stacked[layer, default: [:]][p] = LoRAFactors(a: a, b: b, scale: 1)
            }
        }
        let both = try base.adding(l1).adding(l2).forward(tokens: tokens)
        let one = try base.adding(LoRAWeights(name: "stacked", layers: stacked)).forward(tokens: tokens)
        let none = try base.forward(tokens: tokens)
        #expect(relativeError(both.logits.scalars, one.logits.scalars) <= 1e-5)
        #expect(relativeError(both.logits.scalars, none.logits.scalars) > 1e-2)
    }

    /// A LoRA with B = 0 (PEFT's initialisation) changes nothing.
    @Test func zeroLoRAIsIdentity() throws {
        let base = try SyntheticModel.model()
        var z = lora(base.config, rank: 4, seed: 1, scale: 2)
        for (l, mods) in z.layers {
            for (p, f) in mods { z.layers[l]![p] = LoRAFactors(a: f.a, b: Tensor(shape: f.b.shape), scale: f.scale) }
        }
        #expect(try base.adding(z).forward(tokens: tokens).logits == base.forward(tokens: tokens).logits)
    }

    @Test func loraOfAnotherModelIsRejected() throws {
        let base = try SyntheticModel.model()
        let wrong = LoRAWeights(name: "wrong", layers: [0: [.q: LoRAFactors(a: Tensor(shape: [2, 31]), b: Tensor(shape: [32, 2]), scale: 1)]])
        #expect(throws: RuntimeError.self) { try base.adding(wrong) }
        let deep = LoRAWeights(name: "deep", layers: [9: [.q: LoRAFactors(a: Tensor(shape: [2, 32]), b: Tensor(shape: [32, 2]), scale: 1)]])
        #expect(throws: RuntimeError.adapterMismatch(adapter: "deep", reason: "layer 9 outside 0..<3")) { try base.adding(deep) }
    }

    /// A fixed-vector steering adapter at blockOutput(l) equals adding scale·b with a hook.
    @Test func steeringAdapterEqualsAddHook() throws {
        let base = try SyntheticModel.model()
        let b = Tensor.randomNormal([32], std: 0.3, seed: 9)
        let adapter = SteeringAdapter(layers: [1: SteeringLayer(bias: b)], scale: 2)
        let steered = try base.adding(adapter, name: "vec").forward(tokens: tokens)
        let hooked = try base.forward(tokens: tokens, hooks: [.blockOutput(1): .add(b, scale: 2)])
        #expect(maxAbsoluteDifferenceScaled(steered.logits.scalars, hooked.logits.scalars) <= 1e-6)
    }

    /// A low-rank SiLU adapter at mlpOutput adds U·SiLU(Dᵀx)+b of the activation it sees;
    /// checked against the shift computed from the recorded, unshifted activation.
    @Test func lowRankSteeringUsesItsSiteActivation() throws {
        let base = try SyntheticModel.model()
        let layer = SteeringLayer(down: .randomNormal([32, 3], std: 0.3, seed: 1), up: .randomNormal([32, 3], std: 0.3, seed: 2),
                                  bias: .randomNormal([32], std: 0.1, seed: 3))
        let adapter = SteeringAdapter(site: .mlpOutput, activation: .silu, layers: [0: layer])
        let before = try base.forward(tokens: tokens, options: .init(record: [.mlpOutput(0)]))
        let after = try base.adding(adapter, name: "silu").forward(tokens: tokens, options: .init(record: [.mlpOutput(0)]))
        let x = try #require(before.activations[.mlpOutput(0)])
        let expected = x + layer.shift(x, activation: .silu)
        #expect(try #require(after.activations[.mlpOutput(0)]) == expected)
    }

    @Test func steeringAdapterOfAnotherWidthIsRejected() throws {
        let base = try SyntheticModel.model()
        let bad = SteeringAdapter(layers: [0: SteeringLayer(bias: Tensor(shape: [16]))])
        #expect(throws: RuntimeError.self) { try base.adding(bad, name: "narrow") }
    }

    /// Steering files name the site by case name or raw value; unknown sites are refused.
    @Test func steeringFileConversion() throws {
        let layer = SteeringAdapterFile.Layer(index: 1, down: Tensor(shape: [32, 2]), up: Tensor(shape: [32, 2]), bias: Tensor(shape: [32]))
        let a = try SteeringAdapter(file: SteeringAdapterFile(site: "blockOutput", kind: "nonlinear", activation: "silu", rank: 2,
                                                              baseModel: "x", source: "y", layers: [layer]), name: "a")
        #expect(a.site == .blockOutput && a.activation == .silu && a.layers[1]?.rank == 2)
        let b = try SteeringAdapter(file: SteeringAdapterFile(site: "mlp_output", kind: "vector", rank: 0, baseModel: "x", source: "y",
                                                              layers: [.init(index: 0, bias: Tensor(shape: [32]))]), name: "b", scale: 3)
        #expect(b.site == .mlpOutput && b.scale == 3 && b.layers[0]?.rank == 0)
        #expect(throws: RuntimeError.adapterMismatch(adapter: "c", reason: "unknown site 'residual'")) {
            try SteeringAdapter(file: SteeringAdapterFile(site: "residual", kind: "vector", rank: 0, baseModel: "x", source: "y", layers: []), name: "c")
        }
    }
}
