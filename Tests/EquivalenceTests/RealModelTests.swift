import Equivalence
import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// The block evaluator, its JVP and Theorem 3.1 on a real layer: SmolLM2-135M-Instruct (Q4_1
/// GGUF dequantized to f32; d 576, 9 heads / 3 KV heads, d_ff 1536).
@Suite struct RealModelTests {
    static func model() throws -> LlamaModel {
        guard FileManager.default.fileExists(atPath: Fixtures.smolLM2GGUF) else {
            throw FixtureFile.missing(Fixtures.smolLM2Missing)
        }
        return try LlamaModel.load(path: Fixtures.smolLM2GGUF)
    }

    static let tokens: [Int] = {
        var rng = SplitMix64(seed: 2026)
        return (0..<40).map { _ in Int(rng.next() % 49152) }
    }()

    @Test func evaluatorMatchesRuntimeAndJVPMatchesFiniteDifferences() throws {
        let m = try Self.model()
        let layer = 3
        var o = ForwardOptions(logits: .none)
        o.record = [.blockInput(layer), .blockOutput(layer), .mlpOutput(layer)]
        let rec = try m.forward(tokens: Self.tokens, options: o).activations
        let h = try #require(rec[.blockInput(layer)])
        let ev = try FirstOrderMap(config: m.config, weights: m.layerWeights(layer))
        let a = try ev.forward(h)
        // Two float32 implementations of the same layer (the runtime's is checked against
        // transformers in RuntimeTests): 1e-4 relative.
        #expect(relativeError(a.output.scalars, try #require(rec[.blockOutput(layer)]).scalars) < 1e-4)
        #expect(relativeError(a.mlpOutput.scalars, try #require(rec[.mlpOutput(layer)]).scalars) < 1e-4)

        // A rank-8 LoRA on all seven projections, ~1% of each weight's scale.
        var delta = LayerWeightDelta()
        for (i, p) in LlamaProjection.allCases.enumerated() {
            let w = m.layerWeights(layer)[p].dense
            let std = w.frobeniusNorm / Float(w.count).squareRoot()
            delta[p] = .lowRank(a: Tensor.randomNormal([8, w.columns], std: 1 / Float(w.columns).squareRoot(), seed: 10 + UInt64(i)),
                                b: Tensor.randomNormal([w.rows, 8], std: 0.01 * std, seed: 20 + UInt64(i)), scale: 1)
        }
        let jvp = try ev.jvp(a, delta: delta).output
        var best = Double.infinity
        for eps: Float in [4, 2, 1, 0.5] {
            let plus = try ev.applying(delta, scale: eps).forward(h).output
            let minus = try ev.applying(delta, scale: -eps).forward(h).output
            best = min(best, relativeError(((1 / (2 * eps)) * (plus - minus)).scalars, jvp.scalars))
        }
        // Acceptance: central differences within 1e-3 relative at the best ε of the scan.
        #expect(best < 1e-3, "best central-difference relative error \(best)")
    }

    @Test func theorem31BoundsHoldOnRealActivations() throws {
        let m = try Self.model()
        let layer = 10
        var o = ForwardOptions(logits: .none)
        o.record = [.mlpOutput(layer), .blockOutput(layer)]
        var xs: [Tensor] = [], zs: [Tensor] = []
        for s in 0..<20 {   // 20 × 40 = 800 tokens > d = 576
            var rng = SplitMix64(seed: 77 + UInt64(s))
            let toks = (0..<40).map { _ in Int(rng.next() % 49152) }
            let rec = try m.forward(tokens: toks, options: o).activations
            xs.append(try #require(rec[.mlpOutput(layer)])); zs.append(try #require(rec[.blockOutput(layer)]))
        }
        let x = Tensor.concatenatingRows(xs), z = Tensor.concatenatingRows(zs)
        let ap = matmul(Tensor.randomNormal([576, 8], seed: 1), Tensor.randomNormal([8, 576], seed: 2))
        let t = matmul(x, ap, transposeB: true)   // post-MLP steer A_p·X, rank 8
        let rep = try Theorem31.analyze(target: t, blockOutput: z)
        #expect(rep.rankT == 8)
        #expect(rep.lower <= rep.exact * (1 + 1e-4) && rep.exact <= rep.upper * (1 + 1e-4), "\(rep.lower) \(rep.exact) \(rep.upper)")
        let b = try Theorem31.optimalReplacement(target: t, blockOutput: z)
        let resid = (t - matmul(z, b, transposeB: true)).frobeniusNorm / t.frobeniusNorm
        // float32 data through two different Float64 routes (projection vs gelsd): 1e-3 relative.
        #expect(abs(resid - rep.exact) <= 1e-3 * max(rep.exact, 1e-3), "\(resid) vs \(rep.exact)")
        print("SmolLM2 layer \(layer): e* \(rep.exact), bounds [\(rep.lower), \(rep.upper)], rank Z \(rep.rankZ)")
    }
}
