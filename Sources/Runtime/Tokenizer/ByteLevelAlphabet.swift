/// GPT-2's `bytes_to_unicode` table: every byte 0…255 stands for one printable Unicode scalar, so
/// that byte-level BPE vocabularies are plain strings. Printable Latin-1 bytes (`!`…`~`, `¡`…`¬`,
/// `®`…`ÿ`) stand for themselves; the other 68 bytes map, in increasing byte order, to U+0100….
public enum ByteLevelAlphabet {
    /// `scalar[b]`: the scalar that byte `b` is written as.
    public static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            let printable = (0x21...0x7E).contains(b) || (0xA1...0xAC).contains(b) || (0xAE...0xFF).contains(b)
            if printable {
                table[b] = Unicode.Scalar(UInt32(b))!
            } else {
                table[b] = Unicode.Scalar(next)!
                next += 1
            }
        }
        return table
    }()

    /// Inverse of `scalarForByte`: the byte a scalar stands for, or nil for scalars outside the
    /// alphabet (all alphabet scalars are below U+0144).
    public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
        let v = scalar.value
        guard v < UInt32(byteForScalarTable.count) else { return nil }
        let b = byteForScalarTable[Int(v)]
        return b < 0 ? nil : UInt8(b)
    }

    private static let byteForScalarTable: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (b, s) in scalarForByte.enumerated() { table[Int(s.value)] = Int16(b) }
        return table
    }()

    /// The byte-level spelling of `bytes` (each byte replaced by its alphabet scalar).
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        var s = String.UnicodeScalarView()
        for b in bytes { s.append(scalarForByte[Int(b)]) }
        return String(s)
    }

    /// The bytes a byte-level token spells, or nil if some scalar is outside the alphabet.
    public static func decode(_ token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.utf8.count)
        for s in token.unicodeScalars {
            guard let b = byte(for: s) else { return nil }
            out.append(b)
        }
        return out
    }
}
