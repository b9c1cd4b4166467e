import Foundation
import Runtime
import Tensors
import TestSupport
import Testing

/// The weight type's products for every storage format (f32, bf16, f16, Q8_0) against the same
/// products of the dequantized matrix evaluated in Double: `x · Wᵀ` (panel and one row), `g · W`
/// (the input gradient, set and accumulated, with strided buffers), row widening, and the
/// relative Frobenius change. The dequantized values themselves are checked against gguf-py and
/// FloatBits elsewhere (GGUF and HalfMatrix tests).
@Suite("ProjectionWeight products in every storage format")
struct ProjectionWeightTests {
    enum Format: String, CaseIterable { case f32, bf16, f16, q8_0 }

    /// Odd shapes; Q8_0 needs columns divisible by 32. The last one (an 8B model's d_ff scale of
    /// inner dimension) holds three widening tiles of 2^20 floats, so the tiled paths run over
    /// several tiles.
    static func shapes(_ format: Format) -> [(Int, Int)] {
        format == .q8_0 ? [(1, 32), (7, 96), (65, 160), (150, 16_384)] : [(1, 1), (7, 33), (65, 127), (150, 16_383)]
    }

    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(Double(rng.next() % 20001) / 10000 - 1) }
    }

    static func weight(_ format: Format, _ rows: Int, _ columns: Int) throws -> ProjectionWeight {
        let t = Tensor(shape: [rows, columns], scalars: values(rows * columns, seed: UInt64(rows * 31 + columns)))
        switch format {
        case .f32: return .f32(t)
        case .bf16: return .half(try HalfMatrix(rounding: t, to: .bf16))
        case .f16: return .half(try HalfMatrix(rounding: t, to: .f16))
        case .q8_0: return .q8_0(try Q8_0Matrix(quantizing: t, name: "w", source: "test"))
        }
    }

    /// max|a − b| / max|b|, the relative error of the acceptance.
    static func relative(_ a: [Float], _ b: [Float]) -> Double { maxAbsoluteDifferenceScaled(a, b) }

    @Test(arguments: Format.allCases)
    func productsEqualTheDequantizedMatrixInDouble(_ format: Format) throws {
        defer { BLAS.setThreadCount(1) }
        for (rows, columns) in Self.shapes(format) {
            let w = try Self.weight(format, rows, columns)
            let dense = w.dense.scalars
            for tokens in [1, 3, 17] {
                let x = Self.values(tokens * columns, seed: 7 + UInt64(tokens))
                let g = Self.values(tokens * rows, seed: 11 + UInt64(tokens))
                // References in Double over the dequantized values.
                var xw = [Float](repeating: 0, count: tokens * rows), gw = [Float](repeating: 0, count: tokens * columns)
                for t in 0..<tokens {
                    for o in 0..<rows {
                        var s = 0.0
                        for j in 0..<columns { s += Double(x[t * columns + j]) * Double(dense[o * columns + j]) }
                        xw[t * rows + o] = Float(s)
                    }
                    for j in 0..<columns {
                        var s = 0.0
                        for o in 0..<rows { s += Double(g[t * rows + o]) * Double(dense[o * columns + j]) }
                        gw[t * columns + j] = Float(s)
                    }
                }
                for threads in 1...3 {
                    BLAS.setThreadCount(threads)
                    let label = "\(format) \(rows)×\(columns), \(tokens) tokens, \(threads) threads"
                    // x · Wᵀ into rows 2 floats wider than the output.
                    let ldy = rows + 2
                    var y = [Float](repeating: .nan, count: tokens * ldy)
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { w.multiply(xp.baseAddress!, tokens: tokens, into: $0.baseAddress!, ldo: ldy) }
                    }
                    let yRows = (0..<tokens).flatMap { y[$0 * ldy..<$0 * ldy + rows] }
                    #expect(Self.relative(yRows, xw) <= 1e-5, "x·Wᵀ \(label)")

                    // g · W from a strided g into a strided gx, set, then accumulated onto itself.
                    let ldg = rows + 3, ldo = columns + 1
                    var gs = [Float](repeating: .nan, count: tokens * ldg)
                    for t in 0..<tokens { for o in 0..<rows { gs[t * ldg + o] = g[t * rows + o] } }
                    var gx = [Float](repeating: .nan, count: tokens * ldo)
                    gs.withUnsafeBufferPointer { gp in
                        gx.withUnsafeMutableBufferPointer {
                            w.multiplyTransposed(gp.baseAddress!, tokens: tokens, ldg: ldg, into: $0.baseAddress!, ldo: ldo)
                        }
                    }
                    let gxRows = (0..<tokens).flatMap { gx[$0 * ldo..<$0 * ldo + columns] }
                    #expect(Self.relative(gxRows, gw) <= 1e-5, "g·W \(label)")
                    gs.withUnsafeBufferPointer { gp in
                        gx.withUnsafeMutableBufferPointer {
                            w.multiplyTransposed(gp.baseAddress!, tokens: tokens, ldg: ldg, into: $0.baseAddress!, ldo: ldo, accumulate: true)
                        }
                    }
                    let twice = (0..<tokens).flatMap { gx[$0 * ldo..<$0 * ldo + columns] }
                    #expect(Self.relative(twice, gw.map { 2 * $0 }) <= 1e-5, "g·W accumulated \(label)")
                    #expect((0..<tokens).allSatisfy { gx[$0 * ldo + columns].isNaN }, "g·W wrote past its columns: \(label)")
                }
            }
            // Row widening: a middle range into a strided buffer equals the dequantized rows.
            let r0 = rows / 3, r1 = max(r0 + 1, rows - rows / 4)
            var out = [Float](repeating: .nan, count: (r1 - r0) * (columns + 5))
            out.withUnsafeMutableBufferPointer { w.widenRows(r0..<r1, into: $0.baseAddress!, ldo: columns + 5) }
            for r in r0..<r1 {
                let got = Array(out[(r - r0) * (columns + 5)..<(r - r0) * (columns + 5) + columns])
                #expect(got == Array(dense[r * columns..<(r + 1) * columns]), "\(format) widened row \(r)")
            }
        }
    }

    /// ‖B − A‖_F / ‖A‖_F read tile by tile equals the f32 formula in Double; equal storage gives nil.
    @Test(arguments: Format.allCases)
    func relativeFrobeniusChange(_ format: Format) throws {
        let (rows, columns) = Self.shapes(format).last!
        let a = try Self.weight(format, rows, columns), b = try Self.weight(format, rows, columns + 0)
        #expect(a.relativeFrobeniusChange(to: b) == nil)
        let shifted = Tensor(shape: [rows, columns], scalars: a.dense.scalars.enumerated().map { $1 + ($0 % 7 == 0 ? 0.25 : 0) })
        let c: ProjectionWeight
        switch a {
        case .f32: c = .f32(shifted)
        case .half(let m): c = .half(try HalfMatrix(rounding: shifted, to: m.format))
        case .q8_0: c = .q8_0(try Q8_0Matrix(quantizing: shifted, name: "c", source: "test"))
        }
        let da = a.dense.scalars, dc = c.dense.scalars
        var n = 0.0, d = 0.0
        for i in da.indices { n += Double(da[i]) * Double(da[i]); d += (Double(dc[i]) - Double(da[i])) * (Double(dc[i]) - Double(da[i])) }
        let got = try #require(a.relativeFrobeniusChange(to: c))
        #expect(abs(Double(got) - (d / n).squareRoot()) <= 1e-6 * (d / n).squareRoot(), "\(format): \(got)")
    }
}
