import Foundation
internal import CZlib

/// What identifies a file's contents in a record of how something was made: its size and zlib's
/// CRC-32 of every byte (the checksum `gzip -l` and `crc32` print), read in 1 MiB chunks.
public struct FileFingerprint: Sendable, Equatable, CustomStringConvertible {
    /// Bytes.
    public var bytes: Int
    /// CRC-32 (IEEE 802.3 polynomial, as zlib's `crc32`).
    public var crc32: UInt32

    /// Reads `path`.
    /// - Throws: `FormatsError.missingFile` when it cannot be opened.
    public init(path: String) throws {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw FormatsError.missingFile(path: path, reason: "cannot be opened to fingerprint it")
        }
        defer { try? handle.close() }
        var crc = CZlib.crc32(0, nil, 0)
        var total = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { raw in
                crc = CZlib.crc32(crc, raw.bindMemory(to: Bytef.self).baseAddress, uInt(raw.count))
            }
            total += chunk.count
        }
        bytes = total
        crc32 = UInt32(truncatingIfNeeded: crc)
    }

    /// "crc32:1a2b3c4d, 1234 bytes".
    public var description: String { String(format: "crc32:%08x, %d bytes", crc32, bytes) }
}
