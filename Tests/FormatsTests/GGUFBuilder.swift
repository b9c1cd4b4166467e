import Formats

/// Builds GGUF byte buffers by hand (independently of `GGUFWriter`) for hostile-input tests.
struct GGUFBuilder {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func string(_ s: String) { u64(UInt64(s.utf8.count)); bytes.append(contentsOf: s.utf8) }

    /// magic, version, counts.
    mutating func header(version: UInt32 = 3, tensors: UInt64, kvs: UInt64) {
        u32(0x4655_4747); u32(version); u64(tensors); u64(kvs)
    }

    /// A tensor info with dims given innermost-first, as stored.
    mutating func tensorInfo(_ name: String, ne: [UInt64], type: UInt32, offset: UInt64) {
        string(name); u32(UInt32(ne.count)); for d in ne { u64(d) }; u32(type); u64(offset)
    }

    /// Zero padding up to a multiple of `n`.
    mutating func align(_ n: Int = 32) { while bytes.count % n != 0 { bytes.append(0) } }
}

/// Parses a GGUF buffer, returning the error or nil.
func ggufError(_ bytes: [UInt8]) -> GGUFError? {
    bytes.withUnsafeBytes { raw -> GGUFError? in
        do throws(GGUFError) { _ = try GGUFFile.parse(raw, file: "buf"); return nil } catch { return error }
    }
}
