import Foundation
import Runtime
import Tensors
import TestSupport
import Testing

/// Steering-adapter sums and re-compression against numpy (fixtures/merge/steering.json).
@Suite struct SteeringArithmeticTests {
    static func load() throws -> (adapters: [SteeringAdapter], weights: [Float], h: Tensor, sum: [String: [String: Any]]) {
        let root = try MergeFixtures.load("steering.json")
        var adapters: [SteeringAdapter] = []
        for a in root["adapters"] as! [[String: Any]] {
            var layers: [Int: SteeringLayer] = [:]
            for (l, v) in a {
                let t = try MergeFixtures.tensors(v)
                layers[Int(l)!] = SteeringLayer(down: t["down"], up: t["up"], bias: t["bias"])
            }
            adapters.append(SteeringAdapter(layers: layers))
        }
        return (adapters, (root["weights"] as! [NSNumber]).map(\.floatValue), try MergeFixtures.tensor(root["h"]),
                root["sum"] as! [String: [String: Any]])
    }

    @Test("weighted sum: linear map U·Dᵀ, bias and shift equal numpy's")
    func weightedSum() throws {
        let (adapters, weights, h, sum) = try Self.load()
        let s = try SteeringArithmetic.weightedSum(adapters, weights: weights)
        #expect(s.layers.keys.sorted() == [0, 1, 2])
        #expect(s.layers[0]!.rank == 5 && s.layers[1]!.rank == 2)
        for (l, ref) in sum {
            let layer = s.layers[Int(l)!]!
            let map = matmul(layer.up!, layer.down!, transposeB: true)
            // float32 products of float32 inputs vs numpy float64: 1e-6 relative
            #expect(relativeError(map.scalars, try MergeFixtures.tensor(ref["linear_map"]).scalars) < 1e-6, "layer \(l)")
            #expect(relativeError(layer.bias!.scalars, try MergeFixtures.tensor(ref["bias"]).scalars) < 1e-6)
            #expect(relativeError(layer.shift(h, activation: .identity).scalars, try MergeFixtures.tensor(ref["shift"]).scalars) < 1e-6)
        }
    }

    @Test("re-compression to rank 2 leaves exactly numpy's SVD tail")
    func recompress() throws {
        let (adapters, weights, _, sum) = try Self.load()
        let s = try SteeringArithmetic.weightedSum(adapters, weights: weights)
        let (c, errors) = try SteeringArithmetic.recompressed(s, rank: 2)
        for (l, ref) in sum {
            let layer = c.layers[Int(l)!]!
            #expect(layer.rank == 2)
            let expectedErr = (ref["rank2_frobenius_error"] as! NSNumber).doubleValue
            let full = try MergeFixtures.tensor(ref["linear_map"])
            let actual = Double((full - matmul(layer.up!, layer.down!, transposeB: true)).frobeniusNorm)
            // float32 factors of a float64 SVD: 1e-5 of ‖M‖
            #expect(abs(actual - expectedErr) < 1e-5 * Double(full.frobeniusNorm), "layer \(l)")
            #expect(abs(errors[Int(l)!]! - expectedErr) < 1e-5 * Double(full.frobeniusNorm))
        }
        // rank ≥ the sum's rank is exact
        let (exact, e) = try SteeringArithmetic.recompressed(s, rank: 12)
        #expect(e.values.allSatisfy { $0 < 1e-5 })
        _ = exact
    }

    @Test("SiLU sums concatenate exactly; SiLU re-compression is refused; mixed kinds are refused")
    func silu() throws {
        let d = 6
        let a = SteeringAdapter(activation: .silu, layers: [1: SteeringLayer(down: .randomNormal([d, 2], seed: 1), up: .randomNormal([d, 2], seed: 2))], scale: 0.5)
        let b = SteeringAdapter(activation: .silu, layers: [1: SteeringLayer(down: .randomNormal([d, 3], seed: 3), up: .randomNormal([d, 3], seed: 4), bias: .randomNormal([d], seed: 5))])
        let s = try SteeringArithmetic.weightedSum([a, b], weights: [2, -1])
        let h = Tensor.randomNormal([4, d], seed: 6)
        // Σ wᵢ·scaleᵢ·shiftᵢ written out with the Runtime's own SteeringLayer.shift
        let expected = (2 * 0.5 as Float) * a.layers[1]!.shift(h, activation: .silu) + (-1 as Float) * b.layers[1]!.shift(h, activation: .silu)
        #expect(relativeError(s.layers[1]!.shift(h, activation: .silu).scalars, expected.scalars) < 1e-6)
        #expect(throws: SteeringAdapterError.self) { try SteeringArithmetic.recompressed(s, rank: 2) }
        let lin = SteeringAdapter(activation: .identity, layers: a.layers)
        #expect(throws: SteeringAdapterError.self) { try SteeringArithmetic.weightedSum([a, lin], weights: [1, 1]) }
        let other = SteeringAdapter(site: .mlpOutput, activation: .silu, layers: a.layers)
        #expect(throws: SteeringAdapterError.self) { try SteeringArithmetic.weightedSum([a, other], weights: [1, 1]) }
    }

    @Test("scale and negate fold into U and b")
    func scaleNegate() throws {
        let a = SteeringAdapter(layers: [0: SteeringLayer(down: .randomNormal([4, 2], seed: 1), up: .randomNormal([4, 2], seed: 2), bias: .randomNormal([4], seed: 3))], scale: 2)
        let h = Tensor.randomNormal([3, 4], seed: 4)
        let n = SteeringArithmetic.negated(a)
        #expect(n.scale == 1)
        let sum = n.layers[0]!.shift(h, activation: .identity) + (2 as Float) * a.layers[0]!.shift(h, activation: .identity)
        #expect(sum.maxAbsolute < 1e-6)
        let v = SteeringArithmetic.scaled(SteeringAdapter(layers: [3: SteeringLayer(bias: Tensor(vector: [1, -2]))]), by: 3)
        #expect(v.layers[3]!.bias!.scalars == [3, -6])
    }
}
