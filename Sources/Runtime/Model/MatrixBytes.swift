#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Formats
import Tensors

/// The stored rows of a matrix read in place (`HalfMatrix`, `GGMLMatrix`): `count` rows of
/// `rowBytes` bytes each, back to back in `bytes`, and a row order (row r of the matrix is stored
/// row `order[r]`; nil when rows are stored in order), so GGUF's permuted Q/K rows are undone
/// without a copy.
struct StoredRows: Sendable {
    let bytes: MatrixBytes
    let count: Int
    let rowBytes: Int
    let order: [UInt32]?

    /// Rows stored in order.
    init(bytes: MatrixBytes, count: Int, rowBytes: Int) {
        self.bytes = bytes; self.count = count; self.rowBytes = rowBytes; self.order = nil
    }

    private init(bytes: MatrixBytes, count: Int, rowBytes: Int, order: [UInt32]) {
        self.bytes = bytes; self.count = count; self.rowBytes = rowBytes; self.order = order
    }

    /// The same bytes with the rows reordered: row r of the result is row `sourceRows[r]` of these
    /// (a permutation of 0..<count).
    func permuting(_ sourceRows: [Int]) -> StoredRows {
        precondition(sourceRows.count == count, "permutingRows: \(sourceRows.count) indices for \(count) rows")
        let reordered = sourceRows.map { from -> UInt32 in
            precondition(from >= 0 && from < count, "permutingRows: row \(from) outside 0..<\(count)")
            return order.map { $0[from] } ?? UInt32(from)
        }
        return StoredRows(bytes: bytes, count: count, rowBytes: rowBytes, order: reordered)
    }

    /// Calls `body` with the first stored byte and the row order (null when rows are in order).
    func withRows<R>(_ body: (UnsafeRawPointer, UnsafePointer<UInt32>?) -> R) -> R {
        guard let order else { return body(bytes.base, nil) }
        return order.withUnsafeBufferPointer { body(bytes.base, $0.baseAddress) }
    }

    /// Whether both hold the same bytes row for row (whatever holds them, in whatever row order).
    /// Two views of the same bytes in the same row order are equal without reading them (a model
    /// and the same model with a LoRA share their matrices: comparing them must not touch every
    /// page of a mapped file).
    func sameRows(as other: StoredRows) -> Bool {
        guard count == other.count, rowBytes == other.rowBytes else { return false }
        if bytes.base == other.bytes.base && order == other.order { return true }
        let width = rowBytes
        return withRows { pa, oa in
            other.withRows { pb, ob in
                (0..<count).allSatisfy { r in
                    let ra = Int(oa?[r] ?? UInt32(r)), rb = Int(ob?[r] ?? UInt32(r))
                    return memcmp(pa + ra * width, pb + rb * width, width) == 0
                }
            }
        }
    }

    /// Drops the rows' pages of a mapped file from the resident set (`MatrixBytes.releasePages`).
    func releasePages() { bytes.releasePages(byteCount: count * rowBytes) }
}

/// The bytes behind a matrix read in place (`HalfMatrix`, `GGMLMatrix`): a place in a mapped
/// file (kept mapped by holding the `MappedFile`) or a buffer this object owns. Never written
/// after init, so reads from any thread are safe (`@unchecked Sendable`).
final class MatrixBytes: @unchecked Sendable {
    /// The first value's byte.
    let base: UnsafeRawPointer
    private let file: MappedFile?
    private let owned: UnsafeMutableRawPointer?

    init(file: MappedFile, offset: Int) {
        self.file = file
        if let start = file.bytes.baseAddress {
            owned = nil; base = UnsafeRawPointer(start) + offset
        } else {  // an empty file: only an empty matrix fits, whose bytes are never read
            let p = UnsafeMutableRawPointer.allocate(byteCount: 16, alignment: 16)
            owned = p; base = UnsafeRawPointer(p)
        }
    }

    /// A buffer of its own holding a copy of `raw`.
    init(copying raw: UnsafeRawBufferPointer) {
        file = nil
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(16, raw.count), alignment: 64)
        if let b = raw.baseAddress { p.copyMemory(from: b, byteCount: raw.count) }
        owned = p; base = UnsafeRawPointer(p)
    }

    /// Drops `byteCount` bytes from `base` from the process's resident set when they are a
    /// mapped file's (`MappedFile.Advice.dontNeed`: read-only pages, faulted back in if read
    /// again); nothing for an owned buffer.
    func releasePages(byteCount: Int) {
        guard let file, let start = file.bytes.baseAddress else { return }
        let offset = base - UnsafeRawPointer(start)
        file.advise(.dontNeed, range: offset..<offset + byteCount)
    }

    deinit { owned?.deallocate() }
}
