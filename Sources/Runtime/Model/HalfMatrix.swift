import CKernels
import Formats
import Tensors

/// A `[rows, columns]` weight matrix of 16-bit floats, bfloat16 or IEEE binary16, row-major
/// (PyTorch's `[out, in]`), read where it lies: normally the file's own bytes in a `MappedFile`
/// (safetensors BF16/F16 tensors, GGUF F16/BF16 tensors), which this value keeps mapped, so a
/// model in this storage holds 2 bytes per weight and copies nothing at load. Rows may be read
/// through a row order (GGUF's permuted Q/K rows are undone without a copy). The forward pass
/// multiplies it without an f32 copy of the matrix (`Kernels.linear`): one token through
/// `steertool_half_matvec`, several by widening a few rows at a time to f32 in a per-thread
/// scratch and running the token-panel gemm (or sgemm) on them.
public struct HalfMatrix: Sendable, Equatable {
    /// The element type.
    public enum Format: String, Sendable, CaseIterable, CustomStringConvertible {
        /// bfloat16: the high 16 bits of an f32 (Hugging Face checkpoints' usual dtype).
        case bf16 = "BF16"
        /// IEEE 754 binary16.
        case f16 = "F16"

        var cValue: steertool_half_format { self == .bf16 ? STEERTOOL_HALF_BF16 : STEERTOOL_HALF_F16 }

        /// "BF16" or "F16", the safetensors spelling.
        public var description: String { rawValue }
    }

    /// Element type.
    public let format: Format
    /// Output features (rows).
    public let rows: Int
    /// Input features (columns).
    public let columns: Int
    /// Row r of the matrix is stored row `rowOrder[r]`; nil when rows are stored in order.
    public var rowOrder: [UInt32]? { stored.order }
    private let stored: StoredRows

    /// The matrix stored in `file` at `byteRange` (2·rows·columns bytes, little-endian), used in
    /// place; the mapping stays alive as long as this value (or a copy) does.
    /// - Throws: `RuntimeError.shapeMismatch` naming `name` and `source` when the range is not
    ///   inside the file or does not hold exactly rows·columns values.
    public init(file: MappedFile, byteRange: Range<Int>, format: Format, rows: Int, columns: Int,
                name: String = "matrix", source: String = "model") throws {
        let (values, o1) = rows.multipliedReportingOverflow(by: columns)
        let (needed, o2) = values.multipliedReportingOverflow(by: 2)
        guard rows >= 0, columns >= 0, !o1, !o2, needed == byteRange.count,
              byteRange.lowerBound >= 0, byteRange.upperBound <= file.count else {
            throw RuntimeError.shapeMismatch(tensor: name + " (\(format) bytes at \(byteRange) of a \(file.count)-byte file)",
                                             expected: [o1 || o2 ? -1 : needed], found: [byteRange.count], source: source)
        }
        self.format = format; self.rows = rows; self.columns = columns
        stored = StoredRows(bytes: MatrixBytes(file: file, offset: byteRange.lowerBound), count: rows, rowBytes: 2 * columns)
    }

    /// Rounds an f32 `[rows, columns]` tensor to `format` (round to nearest even, as PyTorch's
    /// `.to(torch.bfloat16)` / `.half()` and the safetensors writer do) into a buffer this value owns.
    /// - Throws: `RuntimeError.shapeMismatch` unless `t` is 2-D.
    public init(rounding t: Tensor, to format: Format, name: String = "matrix", source: String = "model") throws {
        guard t.rank == 2 else {
            throw RuntimeError.shapeMismatch(tensor: name + " (\(format) holds matrices)", expected: [-1, -1],
                                             found: t.shape.dims, source: source)
        }
        let halves: [UInt16] = t.scalars.map { format == .bf16 ? FloatBits.bfloat16(from: $0) : FloatBits.half(from: $0) }
        self.format = format; self.rows = t.rows; self.columns = t.columns
        stored = StoredRows(bytes: halves.withUnsafeBytes { MatrixBytes(copying: $0) }, count: t.rows, rowBytes: 2 * t.columns)
    }

    private init(format: Format, rows: Int, columns: Int, stored: StoredRows) {
        self.format = format; self.rows = rows; self.columns = columns; self.stored = stored
    }

    /// The same matrix with its rows reordered, without a copy: row r of the result is row
    /// `sourceRows[r]` of this one (e.g. `RopePermutation.sourceRows`). `sourceRows` is a
    /// permutation of 0..<rows.
    public func permutingRows(_ sourceRows: [Int]) -> HalfMatrix {
        HalfMatrix(format: format, rows: rows, columns: columns, stored: stored.permuting(sourceRows))
    }

    /// Bytes of weight data (2 per value; a row order adds 4 per row).
    public var byteCount: Int { 2 * rows * columns + 4 * (rowOrder?.count ?? 0) }

    /// The matrix as f32 (every value widened exactly: bit-identical to `ElementCodec`'s and
    /// gguf-py's conversion): a new buffer.
    public func dequantized() -> Tensor {
        Tensor(shape: [rows, columns]) { out in
            guard rows > 0, columns > 0, let o = out.baseAddress else { return }
            widenRows(0..<rows, into: o, ldo: columns)
        }
    }

    /// Calls `body` with the stored bytes and the row order (null when rows are in order).
    private func withRows<R>(_ body: (UnsafeRawPointer, UnsafePointer<UInt32>?) -> R) -> R { stored.withRows(body) }

    /// Writes rows `range` as f32 into `out`, row r at out + (r − range.lowerBound)·ldo.
    /// `level` forces a code path (tests); every path gives the same bits.
    public func widenRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>, ldo: Int,
                          level: CPUKernelLevel = .best) {
        guard !range.isEmpty, columns > 0 else { return }
        precondition(range.lowerBound >= 0 && range.upperBound <= rows, "widenRows: \(range) outside 0..<\(rows)")
        withRows { w, order in
            steertool_half_widen_rows(w, columns, columns, order, range.lowerBound, range.upperBound, out, ldo,
                                      format.cValue, level.cValue)
        }
    }

    /// y = W·x for one input vector x `[columns]` into y `[rows]`, rows split over `threads`
    /// contiguous chunks (`WorkerPool`). Equals `F32MatrixVector.multiply` on `dequantized()` at
    /// the same level (the same f32 sums in the same order); any split gives the same bits.
    /// `level` forces a code path (tests).
    public func multiply(vector x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                         threads: Int = 1, level: CPUKernelLevel = .best) {
        guard rows > 0 else { return }
        if columns == 0 { y.update(repeating: 0, count: rows); return }
        let path = level.cValue, fmt = format.cValue, k = columns
        withRows { w, order in
            let chunks = WorkerPool.chunks(work: rows * columns, units: rows / 16, threads: threads)
            let wAddress = UInt(bitPattern: w), oAddress = UInt(bitPattern: order)
            let xAddress = UInt(bitPattern: x), yAddress = UInt(bitPattern: y)
            WorkerPool.run(splitting: rows, into: chunks) { r in
                steertool_half_matvec(UnsafeRawPointer(bitPattern: wAddress), k, k, UnsafePointer(bitPattern: oAddress),
                                      r.lowerBound, r.upperBound, UnsafePointer(bitPattern: xAddress),
                                      UnsafeMutablePointer<Float>(bitPattern: yAddress)! + r.lowerBound, fmt, path)
            }
        }
    }

    /// out[m, n] = Σ_j x[m, j]·W[n, j] for the packed tokens (`TokenPanelGemm.pack`, `columns`
    /// features) and every row n, out rows `ldo` apart. Output features are split over `threads`
    /// in whole 6-row tiles; each thread widens `tileRows(columns)` rows at a time into its own
    /// f32 scratch (never the whole matrix) and runs `steertool_token_panel_gemm` on them, so the
    /// result equals `TokenPanelGemm.multiply` on `dequantized()` bit for bit.
    public func multiply(_ x: PackedTokens, out: UnsafeMutablePointer<Float>, ldo: Int, threads: Int = 1,
                         level: CPUKernelLevel = .best) {
        precondition(x.columns == columns, "HalfMatrix.multiply: \(x.columns) features for \(columns) columns")
        guard x.rows > 0, rows > 0 else { return }
        let tile = Self.tileRows(columns: columns)
        let chunks = WorkerPool.chunks(work: x.rows * columns * rows, units: (rows + 5) / 6, threads: threads)
        let path = level.cValue, fmt = format.cValue, k = columns, tokens = x.rows
        let panelsAddress = UInt(bitPattern: x.panels), outAddress = UInt(bitPattern: out)
        withRows { w, order in
            let wAddress = UInt(bitPattern: w), oAddress = UInt(bitPattern: order)
            WorkerPool.run(splitting: rows, into: chunks, alignment: 6) { range in
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: tile * k)
                defer { scratch.deallocate() }
                var r0 = range.lowerBound
                while r0 < range.upperBound {
                    let r1 = min(range.upperBound, r0 + tile)
                    steertool_half_widen_rows(UnsafeRawPointer(bitPattern: wAddress), k, k, UnsafePointer(bitPattern: oAddress),
                                              r0, r1, scratch, k, fmt, path)
                    steertool_token_panel_gemm(UnsafePointer(bitPattern: panelsAddress), tokens, k, scratch, k, 0, r1 - r0,
                                               UnsafeMutablePointer<Float>(bitPattern: outAddress)! + r0, ldo, 1, 0, path)
                    r0 = r1
                }
            }
        }
    }

    /// Rows widened per step of the multi-token product: a multiple of the gemm's 6-row tile
    /// whose f32 copy stays within ~192 KiB (an L2-sized block), at least 6.
    static func tileRows(columns: Int) -> Int {
        max(6, (48 << 10) / max(columns, 1) / 6 * 6)
    }

    /// Lets the kernel drop this matrix's pages from the resident set when it is read in place
    /// from a mapped file (they are read again from the file if the matrix is used later, so
    /// nothing changes but memory); nothing for a matrix in a buffer of its own. For passes that
    /// are done with a layer (distillation streams the model a layer at a time).
    public func releasePages() {
        stored.releasePages()
    }

    /// Same format, shape and stored values row for row (whatever holds the bytes, in whatever row
    /// order). Two views of the same bytes in the same row order are equal without reading them
    /// (a model and the same model with a LoRA share their matrices: comparing them must not
    /// touch every page of a mapped file).
    public static func == (a: HalfMatrix, b: HalfMatrix) -> Bool {
        a.format == b.format && a.rows == b.rows && a.columns == b.columns && a.stored.sameRows(as: b.stored)
    }
}

extension HalfMatrix.Format {
    /// The format of a stored tensor type: safetensors BF16/F16 and GGML BF16/F16; nil for others.
    public init?(_ storage: StorageType) {
        switch storage {
        case .safetensors(.bf16), .ggml(.bf16): self = .bf16
        case .safetensors(.f16), .ggml(.f16): self = .f16
        default: return nil
        }
    }
}
