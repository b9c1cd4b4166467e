import CKernels
import Formats
import Tensors

/// A `[rows, columns]` weight matrix kept in GGML Q8_0 blocks (34 bytes per 32 values: an f16
/// scale d and 32 signed quants q, value = d·q), row-major with the blocks of a row consecutive,
/// exactly as GGUF stores it. About 1.06 bytes per weight instead of f32's 4; the forward pass
/// multiplies it without an f32 copy (`Kernels.linear`).
public struct Q8_0Matrix: Sendable, Equatable {
    /// Output features (rows).
    public let rows: Int
    /// Input features (columns), a multiple of 32.
    public let columns: Int
    /// The Q8_0 blocks, `rows · columns/32 · 34` bytes.
    public let blocks: [UInt8]

    /// Bytes per block and values per block of GGML Q8_0.
    public static let blockBytes = 34, blockValues = 32

    /// Wraps Q8_0 bytes of a `[rows, columns]` matrix (as stored in a GGUF tensor).
    /// - Throws: `RuntimeError.shapeMismatch` naming `name` when `columns` is not a multiple of 32
    ///   or the byte count is not `rows · columns/32 · 34`.
    public init(blocks: [UInt8], rows: Int, columns: Int, name: String = "matrix", source: String = "model") throws {
        guard rows >= 0, columns >= 0, columns % Self.blockValues == 0 else {
            throw RuntimeError.shapeMismatch(tensor: name + " (Q8_0 needs a multiple of 32 columns)",
                                             expected: [rows, (columns / Self.blockValues + 1) * Self.blockValues],
                                             found: [rows, columns], source: source)
        }
        let (perRow, o1) = (columns / Self.blockValues).multipliedReportingOverflow(by: Self.blockBytes)
        let (total, o2) = perRow.multipliedReportingOverflow(by: rows)
        guard !o1, !o2, total == blocks.count else {
            throw RuntimeError.shapeMismatch(tensor: name + " (Q8_0 bytes)", expected: [o1 || o2 ? -1 : total],
                                             found: [blocks.count], source: source)
        }
        self.rows = rows; self.columns = columns; self.blocks = blocks
    }

    /// Quantizes an f32 `[rows, columns]` tensor to Q8_0 (gguf-py's rounding, via
    /// `GGMLQuantizer`), as llama.cpp's `--outtype q8_0` does.
    /// - Throws: `RuntimeError.shapeMismatch` unless `t` is 2-D with a multiple of 32 columns.
    public init(quantizing t: Tensor, name: String = "matrix", source: String = "model") throws {
        guard t.rank == 2 else {
            throw RuntimeError.shapeMismatch(tensor: name + " (Q8_0 holds matrices)", expected: [-1, -1],
                                             found: t.shape.dims, source: source)
        }
        let bytes = t.columns % Self.blockValues == 0
            ? t.withUnsafeBufferPointer { GGMLQuantizer.quantize($0, as: .q8_0) } : []
        try self.init(blocks: bytes, rows: t.rows, columns: t.columns, name: name, source: source)
    }

    /// Blocks per row.
    public var blocksPerRow: Int { columns / Self.blockValues }

    /// The same matrix with its rows reordered: row r of the result is row `sourceRows[r]` of
    /// this one (e.g. `RopePermutation.sourceRows`). `sourceRows` is a permutation of 0..<rows.
    public func permutingRows(_ sourceRows: [Int]) -> Q8_0Matrix {
        precondition(sourceRows.count == rows, "permutingRows: \(sourceRows.count) indices for \(rows) rows")
        let width = blocksPerRow * Self.blockBytes
        var out = [UInt8](repeating: 0, count: blocks.count)
        out.withUnsafeMutableBytes { o in
            blocks.withUnsafeBytes { s in
                for (to, from) in sourceRows.enumerated() {
                    precondition(from >= 0 && from < rows, "permutingRows: row \(from) outside 0..<\(rows)")
                    (o.baseAddress! + to * width).copyMemory(from: s.baseAddress! + from * width, byteCount: width)
                }
            }
        }
        return Q8_0Matrix(checkedBlocks: out, rows: rows, columns: columns)
    }

    private init(checkedBlocks: [UInt8], rows: Int, columns: Int) {
        self.rows = rows; self.columns = columns; self.blocks = checkedBlocks
    }

    /// The matrix as f32 values d·q (bit-identical to gguf-py's and `GGMLDequantizer`'s Q8_0).
    public func dequantized() -> Tensor {
        Tensor(shape: [rows, columns]) { out in
            guard rows > 0, columns > 0 else { return }
            dequantizeRows(0..<rows, into: out.baseAddress!)
        }
    }

    /// Writes rows `range` as f32 into `out` (`range.count · columns` floats, row-major).
    func dequantizeRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
        blocks.withUnsafeBufferPointer { b in
            steertool_q8_0_dequantize_rows(b.baseAddress!, blocksPerRow, range.lowerBound, range.upperBound, out)
        }
    }

    /// y = W·x for one input vector x `[columns]` into y `[rows]`, rows split over `threads`
    /// contiguous chunks. Accumulates Σ_b d_b·(Σ_i q_i·x_i) in f32 (x is not quantized), so it
    /// equals the f32 product with the dequantized matrix up to summation order.
    /// `level` forces a code path (tests); nil takes the best this CPU has.
    public func multiply(vector x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                         threads: Int = 1, level: CPUKernelLevel? = nil) {
        guard rows > 0 else { return }
        if columns == 0 { y.update(repeating: 0, count: rows); return }
        let path = (level ?? .best).cValue
        let bpr = blocksPerRow
        blocks.withUnsafeBufferPointer { b in
            let base = b.baseAddress!
            let chunks = WorkerPool.chunks(work: rows * columns, units: rows / 16, threads: threads)
            let xAddress = UInt(bitPattern: x), yAddress = UInt(bitPattern: y), bAddress = UInt(bitPattern: base)
            WorkerPool.run(splitting: rows, into: chunks) { r in
                steertool_q8_0_matvec(UnsafePointer(bitPattern: bAddress)!, bpr, r.lowerBound, r.upperBound,
                                      UnsafePointer(bitPattern: xAddress)!,
                                      UnsafeMutablePointer<Float>(bitPattern: yAddress)! + r.lowerBound, path)
            }
        }
    }

    /// Bytes held.
    public var byteCount: Int { blocks.count }
}
