import Foundation
import Formats
import Runtime
import Tensors
import TestSupport
import Testing

/// The weight type's products for every storage format (f32, bf16, f16, Q8_0 and the GGML block
/// formats Q4_0 … Q6_K) against the same products of the dequantized matrix evaluated in Double:
/// `x · Wᵀ` (panel and one row), `g · W` (the input gradient, set and accumulated, with strided
/// buffers), row widening, and the relative Frobenius change. The dequantized values of the GGML
/// block formats are gguf-py's (`ggmlBlocksEqualGGUFPy`); the others are checked against gguf-py
/// and FloatBits elsewhere (GGUF and HalfMatrix tests).
@Suite("ProjectionWeight products in every storage format")
struct ProjectionWeightTests {
    enum Format: String, CaseIterable {
        case f32, bf16, f16, q8_0, q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1", q4_K = "Q4_K", q5_K = "Q5_K", q6_K = "Q6_K"

        /// The GGML block type of the in-place formats.
        var block: GGMLMatrix.BlockType? { GGMLMatrix.BlockType(rawValue: rawValue) }
    }

    /// Odd shapes; Q8_0 and the GGML formats need columns divisible by their block size. The last
    /// one (an 8B model's d_ff scale of inner dimension) holds three widening tiles of 2^20 floats,
    /// so the tiled paths run over several tiles.
    static func shapes(_ format: Format) -> [(Int, Int)] {
        if let b = format.block { return [(1, b.blockValues), (7, 3 * b.blockValues), (65, 5 * b.blockValues), (150, 16_384)] }
        return format == .q8_0 ? [(1, 32), (7, 96), (65, 160), (150, 16_384)] : [(1, 1), (7, 33), (65, 127), (150, 16_383)]
    }

    /// Blocks of `type` quantized by gguf-py (Q4_0 … Q5_1) or llama.cpp (the K-quants' ffn_down),
    /// each with gguf-py's dequantized values, from fixtures/quant.
    static func referenceBlocks(_ type: GGMLMatrix.BlockType) throws -> [(bytes: [UInt8], values: [Float])] {
        let kQuant = type.blockValues == 256
        let stem = kQuant ? "quant/kquant.\(type.rawValue.lowercased())" : "quant/\(type.rawValue.lowercased())"
        let gguf = try GGUFFile(path: Fixtures.path(stem + ".gguf"))
        let dequant = try SafetensorsFile(path: Fixtures.path(stem + ".dequant.safetensors"))
        var out: [(bytes: [UInt8], values: [Float])] = []
        for name in gguf.tensorNames.sorted() {
            guard let info = gguf.info(name), info.storage == .ggml(type.ggmlType) else { continue }
            let raw = Array(try gguf.rawBytes(named: name)), values = try dequant.tensor(named: name).scalars
            for b in 0..<(values.count / type.blockValues) {
                out.append((Array(raw[(b * type.blockBytes)..<((b + 1) * type.blockBytes)]),
                            Array(values[(b * type.blockValues)..<((b + 1) * type.blockValues)])))
            }
        }
        return out
    }

    /// A `[rows, columns]` matrix of `type` whose block i (row-major over the block grid) is
    /// reference block i·7 mod count, and gguf-py's values of it.
    static func referenceMatrix(_ type: GGMLMatrix.BlockType, _ rows: Int, _ columns: Int) throws -> (GGMLMatrix, [Float]) {
        let pool = try referenceBlocks(type)
        precondition(pool.count > 8, "\(type): \(pool.count) reference blocks")
        let count = rows * columns / type.blockValues
        let picks = (0..<count).map { pool[($0 * 7) % pool.count] }
        let m = try GGMLMatrix(blocks: picks.flatMap(\.bytes), type: type, rows: rows, columns: columns, name: "w", source: "test")
        return (m, picks.flatMap(\.values))
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
        case .q8_0: return .quantized(try GGMLMatrix(quantizing: t, as: .q8_0, name: "w", source: "test"))
        default: return .quantized(try referenceMatrix(format.block!, rows, columns).0)
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
        case .quantized(let m) where m.type == .q8_0: c = .quantized(try GGMLMatrix(quantizing: shifted, as: .q8_0, name: "c", source: "test"))
        case .quantized: c = .f32(shifted)
        }
        let da = a.dense.scalars, dc = c.dense.scalars
        var n = 0.0, d = 0.0
        for i in da.indices { n += Double(da[i]) * Double(da[i]); d += (Double(dc[i]) - Double(da[i])) * (Double(dc[i]) - Double(da[i])) }
        let got = try #require(a.relativeFrobeniusChange(to: c))
        #expect(abs(Double(got) - (d / n).squareRoot()) <= 1e-6 * (d / n).squareRoot(), "\(format): \(got)")
    }

    /// Each GGML block format widens to gguf-py's dequantized values bit for bit, through a row
    /// order too, and one row's product (`GGMLMatrix.multiply(vector:)`, every kernel path,
    /// 1–3 threads) is within 1e-5 of the Double product and, on each path, the same for every split.
    @Test(arguments: GGMLMatrix.BlockType.allCases)
    func ggmlBlocksEqualGGUFPy(_ type: GGMLMatrix.BlockType) throws {
        // The second shape's rows are wider than the AVX2 product's stack buffer of x sums.
        for (rows, columns) in [(13, 3 * type.blockValues), (3, 16_896)] {
            try Self.checkGGMLMatrix(type, rows: rows, columns: columns)
        }
    }

    static func checkGGMLMatrix(_ type: GGMLMatrix.BlockType, rows: Int, columns: Int) throws {
        let (m, values) = try Self.referenceMatrix(type, rows, columns)
        for level in [CPUKernelLevel.scalar, .best] {
            #expect(m.dequantized(level: level).scalars == values, "\(type) widened, \(level)")
        }
        let order = (0..<rows).map { ($0 * 5) % rows }
        let permuted = m.permutingRows(order)
        #expect(permuted.dequantized().scalars == order.flatMap { values[($0 * columns)..<(($0 + 1) * columns)] }, "\(type) row order")
        #expect(permuted != m && permuted.permutingRows(order.indices.map { i in order.firstIndex(of: i)! }) == m)
        let x = Self.values(columns, seed: 3)
        let want = (0..<rows).map { r in Float((0..<columns).reduce(0.0) { $0 + Double(x[$1]) * Double(values[r * columns + $1]) }) }
        for level in [CPUKernelLevel.scalar, .best] {
            var first: [Float]?
            for threads in 1...3 {
                var y = [Float](repeating: .nan, count: rows)
                x.withUnsafeBufferPointer { xp in
                    y.withUnsafeMutableBufferPointer { m.multiply(vector: xp.baseAddress!, into: $0.baseAddress!, threads: threads, level: level) }
                }
                #expect(Self.relative(y, want) <= 1e-5, "\(type) \(level) \(threads) threads")
                if let first { #expect(y == first, "\(type) \(level): \(threads) threads differ from 1") } else { first = y }
            }
        }
    }

    /// Bad input: columns that are not a multiple of the block size, and a byte count that does
    /// not hold the matrix, are errors naming the tensor.
    @Test func ggmlMatrixRejectsMisshapenBlocks() throws {
        #expect(throws: RuntimeError.self) { try GGMLMatrix(blocks: [UInt8](repeating: 0, count: 18), type: .q4_0, rows: 1, columns: 31) }
        #expect(throws: RuntimeError.self) { try GGMLMatrix(blocks: [UInt8](repeating: 0, count: 143), type: .q4_K, rows: 1, columns: 256) }
        #expect(throws: RuntimeError.self) { try GGMLMatrix(blocks: [], type: .q6_K, rows: Int.max / 2, columns: 512) }
        #expect(throws: Never.self) { try GGMLMatrix(blocks: [UInt8](repeating: 0, count: 2 * 210), type: .q6_K, rows: 2, columns: 256) }
    }
}
