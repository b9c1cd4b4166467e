import CKernels
import Formats
import Tensors

/// A `[rows, columns]` weight matrix of GGML quantized blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K,
/// Q5_K or Q6_K), row-major (PyTorch's `[out, in]`) with each row's blocks back to back, read where
/// it lies: normally a GGUF file's own bytes in a `MappedFile`, which this value keeps mapped, so a
/// model in this storage holds the file's 4.5–8.5 bits per weight and copies nothing at load; or
/// a buffer of its own (`init(quantizing:…)`, `WeightStorage.q8_0` on a model of another dtype).
/// Rows may be read through a row order (GGUF's permuted Q/K rows are undone without a copy).
///
/// Blocks decode with gguf-py's float operations (`steertool_ggml_widen_rows`: the values equal
/// gguf-py's dequantization bit for bit). One token multiplies through `steertool_ggml_matvec`
/// (each block read once, its scale and offset factored out of the sum on AVX2; Q8_0 in 16 lanes on
/// AVX-512); several tokens, and the
/// backward's `g · W`, widen a tile of rows at a time into scratch (`ProjectionWeight`'s tiled
/// products), never the whole matrix.
public struct GGMLMatrix: Sendable, Equatable {
    /// The block formats held in place.
    public enum BlockType: String, Sendable, CaseIterable, CustomStringConvertible {
        case q4_0 = "Q4_0", q4_1 = "Q4_1", q5_0 = "Q5_0", q5_1 = "Q5_1", q8_0 = "Q8_0", q4_K = "Q4_K", q5_K = "Q5_K"
        case q6_K = "Q6_K"

        /// The block type of a GGML tensor type (the raw values are GGML's spellings); nil for
        /// every other type.
        public init?(_ type: GGMLType) { self.init(rawValue: type.name) }

        /// The GGML tensor type.
        public var ggmlType: GGMLType {
            switch self {
            case .q4_0: .q4_0
            case .q4_1: .q4_1
            case .q5_0: .q5_0
            case .q5_1: .q5_1
            case .q8_0: .q8_0
            case .q4_K: .q4_K
            case .q5_K: .q5_K
            case .q6_K: .q6_K
            }
        }

        /// The kernels' enum, whose values are GGML's type ids.
        var cValue: steertool_ggml_type { steertool_ggml_type(rawValue: ggmlType.rawValue) }

        /// Values per block: 32, or 256 for the K-quants.
        public var blockValues: Int { steertool_ggml_block_values(cValue) }
        /// Bytes per block.
        public var blockBytes: Int { steertool_ggml_block_bytes(cValue) }

        /// The GGUF spelling ("Q4_K").
        public var description: String { rawValue }
    }

    /// Block format.
    public let type: BlockType
    /// Output features (rows).
    public let rows: Int
    /// Input features (columns), a multiple of the block size.
    public let columns: Int
    /// Row r of the matrix is stored row `rowOrder[r]`; nil when rows are stored in order.
    public var rowOrder: [UInt32]? { stored.order }
    private let stored: StoredRows

    /// Bytes of one stored row.
    public var rowBytes: Int { stored.rowBytes }

    /// Bytes of a row of `columns` values (a multiple of the block size) of `type`.
    private static func rowBytes(_ type: BlockType, columns: Int) -> Int { columns / type.blockValues * type.blockBytes }

    /// Checks that `count` bytes hold exactly `rows` rows of `columns` values of `type`.
    private static func validate(count: Int, type: BlockType, rows: Int, columns: Int, name: String, source: String,
                                 where place: String) throws {
        guard rows >= 0, columns >= 0, columns % type.blockValues == 0 else {
            throw RuntimeError.shapeMismatch(tensor: name + " (\(type) needs a multiple of \(type.blockValues) columns)",
                                             expected: [rows, (columns / type.blockValues + 1) * type.blockValues],
                                             found: [rows, columns], source: source)
        }
        let (needed, overflow) = rowBytes(type, columns: columns).multipliedReportingOverflow(by: rows)
        guard !overflow, needed == count else {
            throw RuntimeError.shapeMismatch(tensor: name + " (\(type) bytes\(place))", expected: [overflow ? -1 : needed],
                                             found: [count], source: source)
        }
    }

    /// The matrix stored in `file` at `byteRange`, used in place; the mapping stays alive as long
    /// as this value (or a copy) does.
    /// - Throws: `RuntimeError.shapeMismatch` naming `name` and `source` when the columns are not
    ///   a multiple of the block size, or the range is not inside the file or does not hold
    ///   exactly rows·columns values.
    public init(file: MappedFile, byteRange: Range<Int>, type: BlockType, rows: Int, columns: Int,
                name: String = "matrix", source: String = "model") throws {
        guard byteRange.lowerBound >= 0, byteRange.upperBound <= file.count else {
            throw RuntimeError.shapeMismatch(tensor: name + " (\(type) bytes at \(byteRange) of a \(file.count)-byte file)",
                                             expected: [file.count], found: [byteRange.upperBound], source: source)
        }
        try Self.validate(count: byteRange.count, type: type, rows: rows, columns: columns, name: name, source: source,
                          where: " at \(byteRange)")
        self.type = type; self.rows = rows; self.columns = columns
        stored = StoredRows(bytes: MatrixBytes(file: file, offset: byteRange.lowerBound), count: rows,
                            rowBytes: Self.rowBytes(type, columns: columns))
    }

    /// The matrix held in a buffer of its own, copied from `blocks` (as a GGUF tensor stores them).
    /// - Throws: `RuntimeError.shapeMismatch` as `init(file:…)`.
    public init(blocks: [UInt8], type: BlockType, rows: Int, columns: Int, name: String = "matrix",
                source: String = "model") throws {
        try Self.validate(count: blocks.count, type: type, rows: rows, columns: columns, name: name, source: source, where: "")
        self.type = type; self.rows = rows; self.columns = columns
        stored = StoredRows(bytes: blocks.withUnsafeBytes { MatrixBytes(copying: $0) }, count: rows,
                            rowBytes: Self.rowBytes(type, columns: columns))
    }

    /// An f32 `[rows, columns]` tensor quantized to `type` with gguf-py's rounding (`GGMLQuantizer`:
    /// Q8_0 or Q4_0, as llama.cpp's `--outtype q8_0` writes them), in a buffer of its own.
    /// - Throws: `RuntimeError.shapeMismatch` naming `name` unless `t` is 2-D with a multiple of 32
    ///   columns; `RuntimeError.invalidArgument` for a type the quantizer does not write.
    public init(quantizing t: Tensor, as type: BlockType, name: String = "matrix", source: String = "model") throws {
        guard GGMLQuantizer.supports(type.ggmlType) else {
            throw RuntimeError.invalidArgument("\(source): cannot quantize \(name) to \(type) (Q8_0 and Q4_0 are written)")
        }
        guard t.rank == 2 else {
            throw RuntimeError.shapeMismatch(tensor: name + " (\(type) holds matrices)", expected: [-1, -1],
                                             found: t.shape.dims, source: source)
        }
        let bytes = t.columns % type.blockValues == 0
            ? t.withUnsafeBufferPointer { GGMLQuantizer.quantize($0, as: type.ggmlType) } : []
        try self.init(blocks: bytes, type: type, rows: t.rows, columns: t.columns, name: name, source: source)
    }

    private init(type: BlockType, rows: Int, columns: Int, stored: StoredRows) {
        self.type = type; self.rows = rows; self.columns = columns; self.stored = stored
    }

    /// The same matrix with its rows reordered, without a copy: row r of the result is row
    /// `sourceRows[r]` of this one (e.g. `RopePermutation.sourceRows`), a permutation of 0..<rows.
    public func permutingRows(_ sourceRows: [Int]) -> GGMLMatrix {
        GGMLMatrix(type: type, rows: rows, columns: columns, stored: stored.permuting(sourceRows))
    }

    /// Bytes of weight data (the blocks; a row order adds 4 per row).
    public var byteCount: Int { rows * rowBytes + 4 * (rowOrder?.count ?? 0) }

    /// Calls `body` with the stored bytes and the row order (null when rows are in order).
    private func withRows<R>(_ body: (UnsafeRawPointer, UnsafePointer<UInt32>?) -> R) -> R { stored.withRows(body) }

    /// Writes rows `range` as f32 into `out`, row r at out + (r − range.lowerBound)·ldo: gguf-py's
    /// dequantization, bit for bit, on every path (`level` forces one: tests).
    public func widenRows(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>, ldo: Int, level: CPUKernelLevel = .best) {
        guard !range.isEmpty, columns > 0 else { return }
        precondition(range.lowerBound >= 0 && range.upperBound <= rows && ldo >= columns,
                     "widenRows: \(range) outside 0..<\(rows) or ldo \(ldo) < \(columns)")
        withRows { w, order in
            steertool_ggml_widen_rows(w, columns, order, range.lowerBound, range.upperBound, out, ldo, type.cValue, level.cValue)
        }
    }

    /// The matrix as f32 (`widenRows` over every row): a new buffer.
    public func dequantized(level: CPUKernelLevel = .best) -> Tensor {
        Tensor(shape: [rows, columns]) { out in
            guard rows > 0, columns > 0, let o = out.baseAddress else { return }
            widenRows(0..<rows, into: o, ldo: columns, level: level)
        }
    }

    /// y = W·x for one token (x `[columns]`, y `[rows]`) through `steertool_ggml_matvec`, rows
    /// split over `threads` in contiguous chunks; any split gives the same bits. `level` forces a
    /// code path (tests).
    public func multiply(vector x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>,
                         threads: Int = 1, level: CPUKernelLevel = .best) {
        guard rows > 0 else { return }
        if columns == 0 { y.update(repeating: 0, count: rows); return }
        let path = level.cValue, kind = type.cValue, k = columns
        withRows { w, order in
            let chunks = WorkerPool.chunks(work: rows * rowBytes, units: rows / 16, threads: threads)
            let wAddress = UInt(bitPattern: w), oAddress = UInt(bitPattern: order)
            let xAddress = UInt(bitPattern: x), yAddress = UInt(bitPattern: y)
            WorkerPool.run(splitting: rows, into: chunks) { r in
                steertool_ggml_matvec(UnsafeRawPointer(bitPattern: wAddress), k, UnsafePointer(bitPattern: oAddress),
                                      r.lowerBound, r.upperBound, UnsafePointer(bitPattern: xAddress)!,
                                      UnsafeMutablePointer<Float>(bitPattern: yAddress)! + r.lowerBound, kind, path)
            }
        }
    }

    /// Lets the kernel drop this matrix's pages from the resident set when it is read in place from
    /// a mapped file (`MatrixBytes.releasePages`); nothing for a matrix in a buffer of its own.
    public func releasePages() {
        stored.releasePages()
    }

    /// Same type, shape and stored blocks row for row. Two views of the same bytes in the same row
    /// order are equal without reading them.
    public static func == (a: GGMLMatrix, b: GGMLMatrix) -> Bool {
        a.type == b.type && a.rows == b.rows && a.columns == b.columns && a.stored.sameRows(as: b.stored)
    }
}
