import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// The attention and SwiGLU kernels of the forward pass on every code path this CPU has, against
/// the formulas evaluated in Double (the end-to-end forward tests compare the whole pass with
/// transformers; these pin the kernels' edges: masks, cached prefixes, GQA, vector tails).
@Suite struct CausalAttentionTests {
    /// Causal GQA attention in Double, straight from the definition.
    static func reference(q: [Float], rows: Int, start: Int, keys: [Float], values: [Float],
                          heads: Int, kvHeads: Int, hd: Int) -> [Float] {
        let qWidth = heads * hd, kvWidth = kvHeads * hd, group = heads / kvHeads
        var out = [Float](repeating: 0, count: rows * qWidth)
        for h in 0..<heads {
            let g = h / group
            for i in 0..<rows {
                let visible = start + i + 1
                var s = (0..<visible).map { j in
                    (0..<hd).reduce(0.0) { $0 + Double(q[i * qWidth + h * hd + $1]) * Double(keys[j * kvWidth + g * hd + $1]) }
                        / Double(hd).squareRoot()
                }
                let m = s.max()!
                s = s.map { Foundation.exp($0 - m) }
                let sum = s.reduce(0, +)
                for c in 0..<hd {
                    out[i * qWidth + h * hd + c] = Float((0..<visible).reduce(0.0) { $0 + s[$1] / sum * Double(values[$1 * kvWidth + g * hd + c]) })
                }
            }
        }
        return out
    }

    static func run(q: [Float], rows: Int, start: Int, keys: [Float], values: [Float], heads: Int, kvHeads: Int,
                    hd: Int, threads: Int, level: CPUKernelLevel) -> [Float] {
        var out = [Float](repeating: .nan, count: rows * heads * hd)
        q.withUnsafeBufferPointer { qp in
            keys.withUnsafeBufferPointer { kp in
                values.withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer { op in
                        CausalAttention.apply(q: qp.baseAddress!, rows: rows, start: start, keys: kp.baseAddress!,
                                              values: vp.baseAddress!, heads: heads, kvHeads: kvHeads, headDim: hd,
                                              out: op.baseAddress!, threads: threads, level: level)
                    }
                }
            }
        }
        return out
    }

    /// hd 64, 40 and 8 take the vector path (32- and 8-column value blocks; query rows in pairs,
    /// an odd last row alone), 12 the portable loops; query counts leave key tails of 1–3
    /// after the blocks of four; start > 0 is a cached prefix, rows 1 a decoding step.
    /// Tolerance 1e-5 of max|ref|: f32 dot products of ≤ 64 terms, sums of ≤ 23 and a 2-ulp exp,
    /// against Double.
    @Test(arguments: CPUKernelLevel.allCases)
    func matchesTheDefinition(_ level: CPUKernelLevel) throws {
        guard level.rawValue <= CPUKernelLevel.best.rawValue else { return }
        for (heads, kvHeads, hd, rows, start) in [(6, 2, 64, 7, 0), (4, 4, 8, 5, 3), (2, 1, 40, 5, 1), (3, 1, 12, 6, 2), (6, 3, 64, 1, 22)] {
            let total = start + rows
            let q = Tensor.randomNormal([rows * heads * hd], std: 1, seed: 11).scalars
            let keys = Tensor.randomNormal([total * kvHeads * hd], std: 1, seed: 12).scalars
            let values = Tensor.randomNormal([total * kvHeads * hd], std: 1, seed: 13).scalars
            let want = Self.reference(q: q, rows: rows, start: start, keys: keys, values: values, heads: heads, kvHeads: kvHeads, hd: hd)
            let got = Self.run(q: q, rows: rows, start: start, keys: keys, values: values, heads: heads, kvHeads: kvHeads,
                               hd: hd, threads: 1, level: level)
            let err = maxAbsoluteDifferenceScaled(got, want)
            #expect(err <= 1e-5, "\(level) heads \(heads)/\(kvHeads) hd \(hd) rows \(rows) start \(start): \(err)")
        }
    }

    /// A problem large enough to be split over threads gives the same bits on 1 and 2 threads
    /// (each head is computed by the same code whichever thread takes it).
    @Test func threadCountDoesNotChangeTheResult() {
        let (heads, kvHeads, hd, rows) = (8, 2, 64, 64)
        let q = Tensor.randomNormal([rows * heads * hd], std: 1, seed: 21).scalars
        let keys = Tensor.randomNormal([rows * kvHeads * hd], std: 1, seed: 22).scalars
        let values = Tensor.randomNormal([rows * kvHeads * hd], std: 1, seed: 23).scalars
        let one = Self.run(q: q, rows: rows, start: 0, keys: keys, values: values, heads: heads, kvHeads: kvHeads,
                           hd: hd, threads: 1, level: .best)
        let two = Self.run(q: q, rows: rows, start: 0, keys: keys, values: values, heads: heads, kvHeads: kvHeads,
                           hd: hd, threads: 2, level: .best)
        #expect(one == two)
        #expect(!one.contains { $0.isNaN })
    }

    /// SwiGLU on every path: within 6e-7 relative of g·σ(g)·u in Double (a 2-ulp exp, then a
    /// division and a product, each rounded once), lengths that leave vector tails, in place
    /// (out == gate) as the forward pass calls it; and bit for bit the arithmetic it documents,
    /// g / (1 + e^{-g}) · u with e^x from `VectorMath.exp` at the same level.
    @Test(arguments: CPUKernelLevel.allCases)
    func swiGLUMatchesTheDefinition(_ level: CPUKernelLevel) {
        guard level.rawValue <= CPUKernelLevel.best.rawValue else { return }
        for n in [1, 7, 16, 33, 1000] {
            let gate = Tensor.randomNormal([n], std: 4, seed: UInt64(n)).scalars
            let up = Tensor.randomNormal([n], std: 1, seed: UInt64(n) + 1).scalars
            var out = gate
            up.withUnsafeBufferPointer { u in
                out.withUnsafeMutableBufferPointer { o in
                    VectorMath.swiGLU(gate: o.baseAddress!, up: u.baseAddress!, out: o.baseAddress!, count: n, level: level)
                }
            }
            var e = gate.map { -$0 }
            e.withUnsafeMutableBufferPointer { VectorMath.exp($0.baseAddress!, into: $0.baseAddress!, count: n, level: level) }
            for i in 0..<n {
                let g = Double(gate[i]), want = g / (1 + Foundation.exp(-g)) * Double(up[i])
                #expect(abs(Double(out[i]) - want) <= 6e-7 * abs(want) + 1e-30, "\(level) n=\(n) i=\(i): \(out[i]) vs \(want)")
                #expect(out[i] == gate[i] / (1 + e[i]) * up[i], "\(level) n=\(n) i=\(i)")
            }
        }
    }
}
