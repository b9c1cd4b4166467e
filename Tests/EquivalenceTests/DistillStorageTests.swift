import Equivalence
import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// Distillation and fold-back read the weights in their storage format (bf16 in place from the
/// file, one layer widened at a time): the adapters equal those of the same model widened to f32
/// at load (`WeightStorage.f32`). Factors may differ by rotation or sign, so what they compute is
/// compared: the induced shift of each layer on held-out block outputs, and U·Dᵀ. Relative error
/// is max|a − b| / max|b|; 1e-5: the two runs multiply the same widened values, through the bf16
/// kernels and through the f32 kernels, whose sums differ in order only.
@Suite struct DistillStorageTests {
    static let tolerance = 1e-5

    /// 8 calibration sequences of 64 tokens and 2 held-out ones from corpus B.
    static func sequences() throws -> (calibration: [[Int]], heldOut: [[Int]]) {
        let ids = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("corpus/b.heldout.tokens.json")))) as? [Int])
        let all = (0..<10).map { Array(ids[$0 * 64..<($0 + 1) * 64]) }
        return (Array(all.prefix(8)), Array(all.suffix(2)))
    }

    /// The two adapters compute the same shifts on `inputs` (per layer, `[tokens, d]`), and their
    /// linear maps U·Dᵀ agree.
    static func expectSameAdapter(_ a: SteeringAdapter, _ b: SteeringAdapter, inputs: [Int: Tensor], _ label: String) {
        #expect(Set(a.layers.keys) == Set(b.layers.keys), "\(label): layers")
        var worst = 0.0
        defer { print("\(label): native vs f32, largest relative difference \(worst)") }
        for (l, la) in a.layers {
            guard let lb = b.layers[l], let z = inputs[l] else { continue }
            let e = maxAbsoluteDifferenceScaled(la.shift(z, activation: a.activation).scalars, lb.shift(z, activation: b.activation).scalars)
            #expect(e <= tolerance, "\(label) layer \(l): shift \(e)")
            worst = max(worst, e)
            if let da = la.down, let ua = la.up, let db = lb.down, let ub = lb.up {
                let m = maxAbsoluteDifferenceScaled(matmul(ua, da, transposeB: true).scalars, matmul(ub, db, transposeB: true).scalars)
                #expect(m <= tolerance, "\(label) layer \(l): U·Dᵀ \(m)")
                worst = max(worst, m)
            }
        }
    }

    /// Every layer's block output on the held-out sequences, from `model`.
    static func blockOutputs(_ model: LlamaModel, _ sequences: [[Int]]) throws -> [Int: Tensor] {
        var o = ForwardOptions(logits: .none)
        o.record = Set((0..<model.config.numHiddenLayers).map { HookSite.blockOutput($0) })
        let recs = try sequences.map { try model.forward(tokens: $0, options: o).activations }
        return Dictionary(uniqueKeysWithValues: (0..<model.config.numHiddenLayers).map { l in
            (l, Tensor.concatenatingRows(recs.map { $0[.blockOutput(l)]! }))
        })
    }

    // A LoRA on the bf16 GGUF base: every closed-form method and kind, native against f32.
    @Test(arguments: DistillMethod.allCases) func loraDistillIsTheSameInPlace(method: DistillMethod) throws {
        let (calibration, heldOut) = try Self.sequences()
        let path = Fixtures.path("tiny/gguf/base.bf16.gguf")
        let lora = try LoRAWeights.load(directory: Fixtures.path("tiny/lora"))
        let native = try LlamaModel.load(path: path, storage: .native), f32 = try LlamaModel.load(path: path, storage: .f32)
        #expect(native.weightStorage == .native && f32.weightStorage == .f32)
        let inputs = try Self.blockOutputs(f32, heldOut)
        for kind in [AdapterKind.vector, .linear, .silu] {
            let options = DistillOptions(method: method, fit: .init(kind: kind, rank: .fixed(4)), seed: 3)
            let a = try Distiller.distill(base: native, finetuned: try native.adding(lora), sequences: calibration, options: options)
            let b = try Distiller.distill(base: f32, finetuned: try f32.adding(lora), sequences: calibration, options: options)
            Self.expectSameAdapter(a.adapter, b.adapter, inputs: inputs, "lora \(method) \(kind)")
            #expect(a.parameterFraction == b.parameterFraction && a.nonBlockChanges.isEmpty && b.nonBlockChanges.isEmpty)
            for (x, y) in zip(a.layers, b.layers) {
                if let tx = x.theorem31, let ty = y.theorem31 {
                    #expect(abs(tx.exact - ty.exact) <= 1e-4 * max(ty.exact, 1e-3), "\(method) \(kind) layer \(x.layer): e* \(tx.exact) vs \(ty.exact)")
                }
            }
        }
    }

    // A full fine-tune held in bf16 (both models rounded, as bf16 checkpoints load): the weight
    // deltas are formed a projection at a time from the two models' bf16 matrices, the non-block
    // changes tile by tile.
    @Test(arguments: [DistillMethod.firstOrder, .sequential]) func finetuneDistillIsTheSameInPlace(method: DistillMethod) throws {
        let (calibration, heldOut) = try Self.sequences()
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base")).rounded(to: .bf16)
        let ft = try LlamaModel.load(path: Fixtures.path("tiny/finetuned")).rounded(to: .bf16)
        let base32 = try base.converted(to: .f32), ft32 = try ft.converted(to: .f32)
        let options = DistillOptions(method: method, fit: .init(kind: .linear, rank: .fixed(8)))
        let a = try Distiller.distill(base: base, finetuned: ft, sequences: calibration, options: options)
        let b = try Distiller.distill(base: base32, finetuned: ft32, sequences: calibration, options: options)
        Self.expectSameAdapter(a.adapter, b.adapter, inputs: try Self.blockOutputs(base32, heldOut), "finetuned \(method)")
        #expect(Set(a.nonBlockChanges.keys) == ["embedding", "final_norm", "lm_head"])
        for (k, v) in b.nonBlockChanges {
            let w = try #require(a.nonBlockChanges[k])
            #expect(abs(w - v) <= 1e-5 * v, "\(k): \(w) vs \(v)")
        }
    }

    // End-to-end KL training (the backward pass reads g·W through the weight type) on the bf16
    // base against the same run widened to f32: the same curve and adapter.
    @Test func klTrainingIsTheSameInPlace() throws {
        let (calibration, heldOut) = try Self.sequences()
        let path = Fixtures.path("tiny/gguf/base.bf16.gguf")
        let lora = try LoRAWeights.load(directory: Fixtures.path("tiny/lora"))
        let native = try LlamaModel.load(path: path, storage: .native), f32 = try LlamaModel.load(path: path, storage: .f32)
        var initial = DistillOptions(fit: .init(kind: .linear, rank: .fixed(4)))
        initial.diagnostics = false
        let options = KLDistillOptions(initial: initial, steps: 6, batchSize: 2, windowLength: 32,
                                       adam: AdamOptions(learningRate: 1e-2, clipNorm: 1, schedule: .constant), seed: 5,
                                       evaluationInterval: 3)
        let a = try KLDistiller.distill(base: native, finetuned: try native.adding(lora), calibration: calibration, heldOut: heldOut, options: options)
        let b = try KLDistiller.distill(base: f32, finetuned: try f32.adding(lora), calibration: calibration, heldOut: heldOut, options: options)
        Self.expectSameAdapter(a.adapter, b.adapter, inputs: try Self.blockOutputs(f32, heldOut), "kl")
        for (x, y) in zip(a.curve, b.curve) {
            if let kx = x.heldOutKL, let ky = y.heldOutKL { #expect(abs(kx - ky) <= 1e-5 * ky, "step \(x.step): KL \(kx) vs \(ky)") }
        }
    }

    // SmolLM2-135M held in bf16 (the fetched GGUF rounded, as a bf16 checkpoint loads) with its
    // fixture LoRA: sequential and first-order on three layers, native against the same values
    // widened to f32.
    @Test(arguments: [DistillMethod.sequential, .firstOrder]) func smolLM2DistillIsTheSameInPlace(method: DistillMethod) throws {
        try #require(FileManager.default.fileExists(atPath: Fixtures.smolLM2GGUF), Comment(rawValue: Fixtures.smolLM2Missing))
        let ids = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("corpus/b.heldout.tokens.json")))) as? [Int])
        let calibration = (0..<4).map { Array(ids[$0 * 96..<($0 + 1) * 96]) }, heldOut = [Array(ids[400..<464])]
        let native = try LlamaModel.load(path: Fixtures.smolLM2GGUF).rounded(to: .bf16)
        let f32 = try native.converted(to: .f32)
        #expect(native.weightStorage == .native && f32.weightStorage == .f32)
        let lora = try LoRAWeights.load(directory: Fixtures.path("smollm2/lora"))
        let options = DistillOptions(method: method, fit: .init(kind: .linear, rank: .fixed(4)), layers: [0, 14, 29])
        let a = try Distiller.distill(base: native, finetuned: try native.adding(lora), sequences: calibration, options: options)
        let b = try Distiller.distill(base: f32, finetuned: try f32.adding(lora), sequences: calibration, options: options)
        Self.expectSameAdapter(a.adapter, b.adapter, inputs: try Self.blockOutputs(f32, heldOut), "smollm2 \(method)")
    }

    // Fold-back of a distilled adapter into down_proj on the bf16 base: the same delta.
    @Test func foldIsTheSameInPlace() throws {
        let (calibration, _) = try Self.sequences()
        let path = Fixtures.path("tiny/gguf/base.bf16.gguf")
        let native = try LlamaModel.load(path: path, storage: .native), f32 = try LlamaModel.load(path: path, storage: .f32)
        let lora = try LoRAWeights.load(directory: Fixtures.path("tiny/lora"))
        let adapter = try Distiller.distill(base: f32, finetuned: try f32.adding(lora), sequences: calibration,
                                            options: .init(fit: .init(kind: .linear, rank: .fixed(4)), diagnostics: false)).adapter
        let layer = 2
        func fold(_ model: LlamaModel) throws -> Tensor {
            var o = ForwardOptions(logits: .none)
            o.record = [.blockInput(layer)]
            let ev = try FirstOrderMap(config: model.config, weights: model.layerWeights(layer))
            let acts = try calibration.map { try ev.forward(try model.forward(tokens: $0, options: o).activations[.blockInput(layer)]!) }
            let outcome = try FoldBack.fold(try #require(adapter.layers[layer]), site: .blockOutput, evaluator: ev,
                                            sequences: Array(acts.dropLast()), heldOut: Array(acts.suffix(1)),
                                            options: FoldBackOptions(projections: [.down], rank: 4, maxError: 1))
            return try #require(outcome.weights.delta[.down]).denseMatrix()
        }
        let e = maxAbsoluteDifferenceScaled(try fold(native).scalars, try fold(f32).scalars)
        #expect(e <= Self.tolerance, "fold down_proj delta: \(e)")
        print("fold layer \(layer) down_proj: native vs f32, largest relative difference \(e)")
    }
}
