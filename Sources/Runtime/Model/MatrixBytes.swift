import Formats
import Tensors

/// The bytes behind a matrix read in place (`HalfMatrix`, `GGMLMatrix`): a place in a mapped
/// file (kept mapped by holding the `MappedFile`) or a buffer this object owns. Never written after init, so reads from any
/// thread are safe (`@unchecked Sendable`).
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
