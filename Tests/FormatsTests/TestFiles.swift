import Foundation
import Formats

/// Temporary folders and hand-built byte buffers shared by the Formats tests.
enum TestFiles {
    /// A fresh empty folder under the system temp dir.
    static func temporaryFolder(_ tag: String = #function) -> String {
        let safe = tag.filter { $0.isLetter || $0.isNumber }
        let path = NSTemporaryDirectory() + "steertool-formats-\(safe)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Writes bytes to `path`.
    static func write(_ bytes: [UInt8], to path: String) {
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }

    /// A safetensors buffer: 8-byte little-endian length of `header`, the header, then `data`.
    static func safetensors(header: String, data: [UInt8] = [], length: UInt64? = nil) -> [UInt8] {
        let h = Array(header.utf8)
        var out: [UInt8] = []
        withUnsafeBytes(of: (length ?? UInt64(h.count)).littleEndian) { out.append(contentsOf: $0) }
        return out + h + data
    }

    /// Little-endian bytes of Float32 values.
    static func f32Bytes(_ values: [Float]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
    }
}

/// Parses a whole safetensors buffer, returning the error (or nil on success).
func safetensorsError(_ bytes: [UInt8]) -> SafetensorsError? {
    bytes.withUnsafeBytes { raw -> SafetensorsError? in
        do throws(SafetensorsError) { _ = try SafetensorsFile.parse(raw, file: "buf"); return nil } catch { return error }
    }
}
