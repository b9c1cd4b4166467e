/// The character classes the pre-tokenizer patterns use: `\p{L}` (general categories Lu Ll Lt Lm
/// Lo), `\p{N}` (Nd Nl No) and `\s` (the Unicode White_Space property, which is what Oniguruma's
/// `\s` matches for Unicode text). Everything else is "other" (`[^\s\p{L}\p{N}]`).
public enum ScalarClass: UInt8, Sendable {
    /// `[^\s\p{L}\p{N}]`: punctuation, symbols, marks, controls, unassigned.
    case other = 0
    /// `\p{L}`.
    case letter = 1
    /// `\p{N}`.
    case number = 2
    /// `\s` (White_Space).
    case whitespace = 3

    /// The class of `scalar` (ASCII through a table, the rest through Unicode properties).
    @inline(__always)
    public static func of(_ scalar: Unicode.Scalar) -> ScalarClass {
        let v = scalar.value
        if v < 128 { return ScalarClass(rawValue: asciiTable[Int(v)])! }
        let p = scalar.properties
        if p.isWhitespace { return .whitespace }
        switch p.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            return .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            return .number
        default:
            return .other
        }
    }

    private static let asciiTable: [UInt8] = (0..<128).map { v -> UInt8 in
        switch v {
        case 0x09...0x0D, 0x20: return ScalarClass.whitespace.rawValue
        case 0x30...0x39: return ScalarClass.number.rawValue
        case 0x41...0x5A, 0x61...0x7A: return ScalarClass.letter.rawValue
        default: return ScalarClass.other.rawValue
        }
    }
}
