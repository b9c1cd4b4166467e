import Foundation
import Testing
import Runtime
import Tensors
import TestSupport

@Suite("Hooks")
struct HookTests {
    let tokens = [1, 5, 9, 13, 20, 33]

    /// blockOutput(l) and blockInput(l+1) are the same tensor: adding v at either gives the same
    /// logits bit for bit (same operations in the same order).
    @Test func blockOutputEqualsNextBlockInput() throws {
        let model = try SyntheticModel.model()
        let v = Tensor.randomNormal([model.config.hiddenSize], std: 0.5, seed: 3)
        let a = try model.forward(tokens: tokens, hooks: [.blockOutput(0): .add(v)], options: .init(blockOutputs: true))
        let b = try model.forward(tokens: tokens, hooks: [.blockInput(1): .add(v)], options: .init(blockOutputs: true))
        let base = try model.forward(tokens: tokens, options: .init(blockOutputs: true))
        #expect(a.logits == b.logits)
        #expect(a.logits != base.logits)
        // The block output returned for layer 0 includes the shift only when added there.
        #expect(maxAbsoluteDifference(a.blockOutputs[0].scalars, base.blockOutputs[0].addingToEachRow(v.scalars).scalars) == 0)
        #expect(b.blockOutputs[0] == base.blockOutputs[0])
    }

    /// mlpOutput(l) + v ≡ blockOutput(l) + v (the residual add is linear): equal to rounding.
    @Test func mlpOutputShiftReachesBlockOutput() throws {
        let model = try SyntheticModel.model()
        let v = Tensor.randomNormal([model.config.hiddenSize], std: 0.5, seed: 4)
        let a = try model.forward(tokens: tokens, hooks: [.mlpOutput(1): .add(v)])
        let b = try model.forward(tokens: tokens, hooks: [.blockOutput(1): .add(v)])
        // One reordered float addition per element: relative 1e-6.
        #expect(relativeError(a.logits.scalars, b.logits.scalars) <= 1e-6)
    }

    /// attentionOutput(l) + v ≡ mlpInput(l) + v for the same reason.
    @Test func attentionOutputShiftReachesMLPInput() throws {
        let model = try SyntheticModel.model()
        let v = Tensor.randomNormal([model.config.hiddenSize], std: 0.5, seed: 5)
        let a = try model.forward(tokens: tokens, hooks: [.attentionOutput(2): .add(v)])
        let b = try model.forward(tokens: tokens, hooks: [.mlpInput(2): .add(v)])
        #expect(relativeError(a.logits.scalars, b.logits.scalars) <= 1e-6)
    }

    /// The recorder and `record` see exactly what `forward` returns as block outputs, and the
    /// block's `record` (the analysis pass) sees the same activations at every site.
    @Test func recorderCapturesWhatForwardReturns() throws {
        let model = try SyntheticModel.model()
        let L = model.config.numHiddenLayers
        let sites = Set((0..<L).flatMap { l in HookSiteKind.allCases.map { HookSite($0, layer: l) } })
        let recorder = ActivationRecorder(sites: sites)
        let r = try model.forward(tokens: tokens, hooks: recorder.hooks, options: .init(blockOutputs: true, record: sites))
        for l in 0..<L {
            #expect(recorder.activation(at: .blockOutput(l)) == r.blockOutputs[l])
            #expect(r.activations[.blockOutput(l)] == r.blockOutputs[l])
            let block = DecoderBlock(description: model.blocks[l], weights: model.weights.layers[l])
            let h = try #require(recorder.activation(at: .blockInput(l)))
            if l > 0 { #expect(h == r.blockOutputs[l - 1]) }
            // record runs the projections through sgemm, forward through its token-panel kernels:
            // equal up to summation order.
            let i = try block.record(h, positions: 0..<tokens.count, rotary: model.rotary, config: model.config)
            let pairs: [(Tensor?, Tensor)] = [(r.blockOutputs[l], i.output), (recorder.activation(at: .attentionOutput(l)), i.attentionOutput),
                                              (recorder.activation(at: .mlpInput(l)), i.mlpInput),
                                              (recorder.activation(at: .mlpOutput(l)), i.mlpOutput)]
            for (seen, recorded) in pairs {
                let seen = try #require(seen)
                #expect(maxAbsoluteDifferenceScaled(seen.scalars, recorded.scalars) <= 1e-6)
            }
            // Y = h + Attn and Z = Y + X hold exactly (same float additions).
            #expect(i.input + i.attentionOutput == i.mlpInput)
            #expect(i.mlpInput + i.mlpOutput == i.output)
            // m = SiLU(a_g) ⊙ a_u, X = m·W_downᵀ (gemm vs matmul: same BLAS call, same order).
            let m = Tensor(shape: i.gatePreActivation.shape, scalars: zip(i.gatePreActivation.scalars, i.upPreActivation.scalars)
                .map { g, u in g / (1 + Float(exp(Double(-g)))) * u })
            #expect(maxAbsoluteDifferenceScaled(i.hidden.scalars, m.scalars) <= 1e-6)
            let x = matmul(i.hidden, model.layerWeights(l).down.dense, transposeB: true)
            #expect(maxAbsoluteDifferenceScaled(x.scalars, i.mlpOutput.scalars) <= 1e-6)
            #expect(i.attentionContext.shape == [tokens.count, model.config.numAttentionHeads * model.config.headDim])
        }
    }

    @Test func recorderAppendsAcrossCachedCalls() throws {
        let model = try SyntheticModel.model()
        let recorder = ActivationRecorder(sites: [.blockOutput(1)])
        let cache = KVCache(config: model.config)
        _ = try model.forward(tokens: Array(tokens[0..<4]), hooks: recorder.hooks, cache: cache)
        var seen: [Range<Int>] = []
        let spy = Hook.read { _, ctx in seen.append(ctx.positions) }
        _ = try model.forward(tokens: Array(tokens[4...]), hooks: recorder.hooks.chained(with: [.blockOutput(1): spy]), cache: cache)
        let full = try model.forward(tokens: tokens, options: .init(blockOutputs: true))
        let rec = try #require(recorder.activation(at: .blockOutput(1)))
        #expect(rec.shape == full.blockOutputs[1].shape)
        #expect(relativeError(rec.scalars, full.blockOutputs[1].scalars) <= 1e-5)
        #expect(seen == [4..<tokens.count])
    }

    @Test func hookThatChangesShapeIsAnError() throws {
        let model = try SyntheticModel.model()
        let bad = Hook { x, _ in x = Tensor(shape: [1, 1]) }
        #expect(throws: RuntimeError.hookChangedShape(site: .mlpInput(0), expected: [tokens.count, 32], found: [1, 1])) {
            try model.forward(tokens: tokens, hooks: [.mlpInput(0): bad])
        }
    }
}
