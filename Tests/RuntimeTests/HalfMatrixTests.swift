import Foundation
import Formats
import Runtime
import Tensors
import TestSupport
import Testing

/// Weights kept in their file's bf16/f16 (`WeightStorage.native`, `HalfMatrix`): the kernels
/// against products of the values widened by Formats' own converter (`FloatBits`, independent
/// of the C kernels) and evaluated in Double, and whole models against the f32 path, which
/// widens the same file values at load and multiplies them through the f32 kernels / BLAS.
@Suite("bf16/f16 weights used in place")
struct HalfMatrixTests {
    /// Odd shapes: 1×1, fewer than 8 columns, k % 8 ≠ 0, rows % 4 and % 6 ≠ 0, a split over threads.
    static let shapes = [(1, 1), (7, 33), (65, 127), (300, 1000)]

    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(Double(rng.next() % 20001) / 10000 - 1) }
    }

    /// A `[rows, columns]` matrix in `format` and its values widened by `FloatBits`.
    static func matrix(_ rows: Int, _ columns: Int, _ format: HalfMatrix.Format) throws -> (HalfMatrix, [Float]) {
        let w = Tensor(shape: [rows, columns], scalars: values(rows * columns, seed: UInt64(rows * 7 + columns)))
        let m = try HalfMatrix(rounding: w, to: format)
        let widened = w.scalars.map {
            format == .bf16 ? FloatBits.float(fromBFloat16: FloatBits.bfloat16(from: $0))
                            : FloatBits.float(fromHalf: FloatBits.half(from: $0))
        }
        return (m, widened)
    }

    /// x · Wᵀ in Double: x `[tokens, k]`, w `[n, k]`.
    static func reference(x: [Float], w: [Float], tokens: Int, k: Int, n: Int) -> [Float] {
        var out = [Float](repeating: 0, count: tokens * n)
        for t in 0..<tokens {
            for o in 0..<n {
                var s = 0.0
                for j in 0..<k { s += Double(x[t * k + j]) * Double(w[o * k + j]) }
                out[t * n + o] = Float(s)
            }
        }
        return out
    }

    static var levels: [CPUKernelLevel] { CPUKernelLevel.allCases.filter { $0.rawValue <= CPUKernelLevel.best.rawValue } }

    /// Widening is exact on every path (bit-equal to FloatBits), through a row order too.
    @Test(arguments: HalfMatrix.Format.allCases)
    func widenedValuesAreExact(_ format: HalfMatrix.Format) throws {
        for (rows, columns) in Self.shapes {
            let (m, widened) = try Self.matrix(rows, columns, format)
            #expect(m.dequantized().scalars == widened, "\(format) \(rows)×\(columns)")
            for level in Self.levels {
                var out = [Float](repeating: .nan, count: columns)
                let r = rows - 1
                out.withUnsafeMutableBufferPointer { m.widenRows(r..<rows, into: $0.baseAddress!, ldo: columns, level: level) }
                #expect(out == Array(widened[r * columns..<rows * columns]), "\(format) \(level)")
            }
            let order = Array((0..<rows).reversed())
            let p = m.permutingRows(order)
            let want = order.flatMap { widened[$0 * columns..<($0 + 1) * columns] }
            #expect(p.dequantized().scalars == want)
            #expect(p.permutingRows(order) == m, "a permutation undone gives the same matrix")
        }
    }

    /// Decode matrix-vector product on every path and thread count: within 1e-5 relative of the
    /// Double product of the widened values (f32 sums of ≤ 1000 products), and bit-equal to the
    /// f32 kernel on the widened matrix at the same level (same sums in the same order) on any split.
    @Test(arguments: HalfMatrix.Format.allCases)
    func matvecEqualsWidenedProduct(_ format: HalfMatrix.Format) throws {
        for (rows, columns) in Self.shapes {
            let (m, widened) = try Self.matrix(rows, columns, format)
            let x = Self.values(columns, seed: 5)
            let want = Self.reference(x: x, w: widened, tokens: 1, k: columns, n: rows)
            for level in Self.levels {
                var f32 = [Float](repeating: .nan, count: rows)
                widened.withUnsafeBufferPointer { w in
                    F32MatrixVector.multiply(w.baseAddress!, rows: rows, columns: columns, x: x, into: &f32, level: level)
                }
                for threads in [1, 2, 3] {
                    var got = [Float](repeating: .nan, count: rows)
                    x.withUnsafeBufferPointer { xp in
                        got.withUnsafeMutableBufferPointer {
                            m.multiply(vector: xp.baseAddress!, into: $0.baseAddress!, threads: threads, level: level)
                        }
                    }
                    #expect(relativeError(got, want) <= 1e-5, "\(format) \(level) \(rows)×\(columns) t\(threads)")
                    #expect(got == f32, "\(format) \(level) \(rows)×\(columns) t\(threads): differs from the f32 kernel")
                }
            }
        }
    }

    /// Prefill product (rows widened a tile at a time into scratch, token-panel gemm): within 1e-5
    /// relative of the Double product for token counts across the 16-token panel edges, and
    /// bit-equal to the token-panel gemm on the widened matrix, on every path and thread count;
    /// the sgemm path (CPUs without the panel gemm) within 1e-5 relative too.
    @Test(arguments: HalfMatrix.Format.allCases)
    func gemmEqualsWidenedProduct(_ format: HalfMatrix.Format) throws {
        for (rows, columns) in Self.shapes {
            let (m, widened) = try Self.matrix(rows, columns, format)
            for tokens in [1, 17, 33] {
                let x = Self.values(tokens * columns, seed: UInt64(tokens))
                let want = Self.reference(x: x, w: widened, tokens: tokens, k: columns, n: rows)
                var panels = [Float](repeating: .nan, count: TokenPanelGemm.panelFloats(rows: tokens, columns: columns))
                for level in Self.levels {
                    var f32 = [Float](repeating: .nan, count: tokens * rows)
                    for threads in [1, 2, 3] {
                        var got = [Float](repeating: .nan, count: tokens * rows)
                        x.withUnsafeBufferPointer { xp in
                            panels.withUnsafeMutableBufferPointer { pp in
                                let packed = TokenPanelGemm.pack(xp.baseAddress!, rows: tokens, columns: columns, ldx: columns,
                                                                 into: pp.baseAddress!, level: level)
                                got.withUnsafeMutableBufferPointer {
                                    m.multiply(packed, out: $0.baseAddress!, ldo: rows, threads: threads, level: level)
                                }
                                if threads == 1 {
                                    widened.withUnsafeBufferPointer { w in
                                        f32.withUnsafeMutableBufferPointer {
                                            TokenPanelGemm.multiply(packed, weight: w.baseAddress!, outFeatures: rows,
                                                                    out: $0.baseAddress!, ldo: rows, level: level)
                                        }
                                    }
                                }
                            }
                        }
                        #expect(relativeError(got, want) <= 1e-5, "\(format) \(level) \(tokens)×\(columns)→\(rows) t\(threads)")
                        #expect(got == f32, "\(format) \(level) \(tokens)×\(columns)→\(rows) t\(threads): differs from the f32 gemm")
                    }
                }
                var blas = [Float](repeating: .nan, count: tokens * rows)
                x.withUnsafeBufferPointer { xp in
                    blas.withUnsafeMutableBufferPointer {
                        ProjectionWeight.half(m).multiply(xp.baseAddress!, tokens: tokens, into: $0.baseAddress!, ldo: rows, useBLAS: true)
                    }
                }
                #expect(relativeError(blas, want) <= 1e-5, "\(format) sgemm \(tokens)×\(columns)→\(rows)")
            }
        }
    }

    /// Bad input: a byte range that does not hold rows·columns values or lies outside the file.
    @Test func malformedRangesAreRejected() throws {
        let file = try MappedFile(path: Fixtures.path("tiny/base/config.json"))
        #expect(throws: RuntimeError.self) { try HalfMatrix(file: file, byteRange: 0..<7, format: .bf16, rows: 2, columns: 2) }
        #expect(throws: RuntimeError.self) {
            try HalfMatrix(file: file, byteRange: (file.count - 4)..<(file.count + 4), format: .f16, rows: 2, columns: 2)
        }
        #expect(throws: RuntimeError.self) { try HalfMatrix(file: file, byteRange: 0..<8, format: .bf16, rows: Int.max / 2, columns: 4) }
        #expect(throws: Never.self) { try HalfMatrix(file: file, byteRange: 0..<8, format: .bf16, rows: 2, columns: 2) }
    }

    /// Prefill logits, and token-by-token decoding (matrix-vector kernel, lm_head included), of
    /// `native` against `f32` within 1e-5 · max|logit|: both compute with the same widened values,
    /// only the kernels and their summation order differ.
    static func checkForwardMatches(_ native: LlamaModel, _ f32: LlamaModel, _ what: String) throws {
        let tokens = [0, 5, 17, 42, 99, 7, 250, 31, 3, 64, 128, 11, 2, 19, 23, 200, 1, 77]
        for threads in [1, 2] {
            BLAS.setThreadCount(threads)
            let a = try native.forward(tokens: tokens).logits, b = try f32.forward(tokens: tokens).logits
            #expect(maxAbsoluteDifferenceScaled(a.scalars, b.scalars) <= 1e-5, "\(what) prefill t\(threads)")
            let cache = KVCache(config: native.config)
            for (i, t) in tokens.prefix(6).enumerated() {
                let step = try native.forward(tokens: [t], cache: cache).logits
                #expect(maxAbsoluteDifferenceScaled(step.scalars, b.row(i)) <= 1e-5, "\(what) decode \(i) t\(threads)")
            }
        }
        BLAS.setThreadCount(1)
    }

    /// GGUF F16/BF16 (tiny/gguf, written like convert_hf_to_gguf.py, Q/K rows permuted): every
    /// matrix is held in the file's dtype, its values bit-equal to the f32 load's (pins the row
    /// permutation read through the row order), at about half the bytes; forward passes match.
    @Test(arguments: ["f16", "bf16"])
    func ggufModelMatchesF32Path(_ type: String) throws {
        let path = Fixtures.path("tiny/gguf/base.\(type).gguf")
        let native = try LlamaModel.load(path: path, storage: .native)
        let f32 = try LlamaModel.load(path: path)
        #expect(native.weightStorage == .native && f32.weightStorage == .f32)
        for (i, (m, f)) in zip(native.weights.matrices, f32.weights.matrices).enumerated() {
            guard case .half(let h) = m else { Issue.record("\(type) matrix \(i) is not held in 16 bits"); continue }
            #expect(h.format.rawValue.lowercased() == type)
            #expect(m.dense == f.dense, "\(type) matrix \(i)")
        }
        #expect(Double(native.weights.byteCount) < 0.6 * Double(f32.weights.byteCount))
        try Self.checkForwardMatches(native, f32, type)
        // back to f32: the same weights as the f32 load
        #expect(try native.converted(to: .f32).weights.matrices == f32.weights.matrices)
    }

    /// A Hugging Face BF16 checkpoint (tiny/base rounded to bf16 and written by Formats'
    /// safetensors writer next to its config.json, LoRA applied unmerged too) used in place
    /// against the f32 load of the same file.
    @Test func bf16SafetensorsMatchesF32Path() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-bf16-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let source = try SafetensorsFile(file: MappedFile(path: Fixtures.path("tiny/base/model.safetensors")))
        let records = try source.tensorNames.map { name in
            let t = try source.tensor(named: name)
            return SafetensorsWriter.record(name, t, as: t.rank == 2 ? .bf16 : .f32)
        }
        try SafetensorsWriter.write(records, to: dir.appendingPathComponent("model.safetensors").path)
        try FileManager.default.copyItem(atPath: Fixtures.path("tiny/base/config.json"),
                                         toPath: dir.appendingPathComponent("config.json").path)
        let native = try LlamaModel.load(path: dir.path, storage: .native)
        let f32 = try LlamaModel.load(path: dir.path)
        #expect(native.weightStorage == .native)
        #expect(native.weights.matrices.allSatisfy { if case .half(let h) = $0 { h.format == .bf16 } else { false } })
        try Self.checkForwardMatches(native, f32, "bf16 safetensors")
        let lora = try LoRAWeights.load(directory: Fixtures.path("tiny/lora"))
        try Self.checkForwardMatches(try native.adding(lora), try f32.adding(lora), "bf16 safetensors + LoRA")
        // an f32 checkpoint loads natively as f32
        #expect(try LlamaModel.load(path: Fixtures.path("tiny/base"), storage: .native).weightStorage == .f32)
    }

    /// SmolLM2-135M (real shapes: d 576, d_ff 1536, 49152-row tied output head, products large
    /// enough to split over threads) rounded to bf16 in memory, against the f32 path on the same
    /// rounded values: prefill and decode within 1e-5 · max|logit|, on 1 and 2 threads.
    @Test func smolLM2BF16MatchesF32Path() throws {
        try #require(FileManager.default.fileExists(atPath: Fixtures.smolLM2GGUF), Comment(rawValue: Fixtures.smolLM2Missing))
        let half = try LlamaModel.load(path: Fixtures.smolLM2GGUF).rounded(to: .bf16)
        let f32 = try half.converted(to: .f32)
        #expect(half.weightStorage == .native && f32.weightStorage == .f32)
        try Self.checkForwardMatches(half, f32, "SmolLM2 bf16")
    }
}
