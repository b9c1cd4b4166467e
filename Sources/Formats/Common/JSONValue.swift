/// A JSON document as a value, with objects kept in file order and numbers kept as their literal
/// text (so 64-bit offsets are exact). Written by hand because the safetensors header must be
/// parsed as hostile input: the parser bounds nesting depth, rejects duplicate keys, and reports
/// the byte offset of the first error; Foundation's `JSONSerialization` does neither and loses
/// key order.
public indirect enum JSONValue: Equatable, Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    /// The number's literal text as it appeared (or will be written).
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Key–value pairs in document order; keys are unique.
    case object([(String, JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.bool(x), .bool(y)): x == y
        case let (.number(x), .number(y)): x == y || (Double(x) != nil && Double(x) == Double(y))
        case let (.string(x), .string(y)): x == y
        case let (.array(x), .array(y)): x == y
        case let (.object(x), .object(y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    /// A number value from an integer.
    public static func int(_ v: Int) -> JSONValue { .number(String(v)) }
    /// A number value from a Double (shortest round-trip spelling; integral values without ".0").
    public static func double(_ v: Double) -> JSONValue {
        if v.isFinite, v == v.rounded(), abs(v) < 1e15 { return .number(String(Int64(v))) }
        return .number("\(v)")
    }
    /// A number value from a Float, spelled with Float's shortest round-trip digits (1e-05, not
    /// 9.999999747378752e-06).
    public static func float(_ v: Float) -> JSONValue {
        if v.isFinite, v == v.rounded(), abs(v) < 1e7 { return .number(String(Int64(v))) }
        return .number("\(v)")
    }

    /// The value of `key` in an object (nil for other values or a missing key).
    public subscript(key: String) -> JSONValue? {
        guard case .object(let pairs) = self else { return nil }
        return pairs.first { $0.0 == key }?.1
    }

    /// Object pairs, or nil.
    public var objectValue: [(String, JSONValue)]? { if case .object(let o) = self { o } else { nil } }
    /// Array elements, or nil.
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    /// String contents, or nil.
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    /// Bool, or nil.
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    /// An exact integer (a number literal without fraction/exponent that fits Int, or an
    /// integral float literal such as `2.0`), or nil.
    public var intValue: Int? {
        guard case .number(let s) = self else { return nil }
        if let i = Int(s) { return i }
        if let d = Double(s), d == d.rounded(), abs(d) < 9e15 { return Int(d) }
        return nil
    }
    /// The number as Double, or nil.
    public var doubleValue: Double? { if case .number(let s) = self { Double(s) } else { nil } }
    /// Whether the value is JSON null.
    public var isNull: Bool { if case .null = self { true } else { false } }

    /// Compact serialization (no spaces), as serde_json / `json.dumps(separators=(",", ":"))`.
    public var description: String {
        var out = ""
        write(to: &out, indent: nil, level: 0)
        return out
    }

    /// Serialization with `indent` spaces per level (as `json.dumps(indent=2)`), or compact when nil.
    public func serialized(indent: Int? = nil) -> String {
        var out = ""
        write(to: &out, indent: indent, level: 0)
        return out
    }

    private func write(to out: inout String, indent: Int?, level: Int) {
        func newline(_ l: Int) {
            if let indent { out += "\n" + String(repeating: " ", count: indent * l) }
        }
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let s): out += s
        case .string(let s): JSONValue.writeString(s, to: &out)
        case .array(let a):
            if a.isEmpty { out += "[]"; return }
            out += "["
            for (i, v) in a.enumerated() {
                if i > 0 { out += "," }
                newline(level + 1)
                v.write(to: &out, indent: indent, level: level + 1)
            }
            newline(level)
            out += "]"
        case .object(let o):
            if o.isEmpty { out += "{}"; return }
            out += "{"
            for (i, (k, v)) in o.enumerated() {
                if i > 0 { out += "," }
                newline(level + 1)
                JSONValue.writeString(k, to: &out)
                out += indent == nil ? ":" : ": "
                v.write(to: &out, indent: indent, level: level + 1)
            }
            newline(level)
            out += "}"
        }
    }

    private static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}

/// Why a JSON document was rejected, with the byte offset of the problem.
public struct JSONParseError: Error, Equatable, CustomStringConvertible {
    /// Byte offset from the start of the document.
    public let offset: Int
    public let reason: String
    public var description: String { "\(reason) at byte \(offset)" }
}

/// A strict RFC 8259 parser over bytes (see `JSONValue`).
public struct JSONParser {
    /// Deepest nesting of arrays/objects accepted.
    public static let maxDepth = 128

    /// Parses a complete document (whitespace allowed around it).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
        var p = JSONParser(bytes: bytes)
        p.skipWhitespace()
        let v = try p.value(depth: 0)
        p.skipWhitespace()
        guard p.i == bytes.count else { throw p.error("trailing characters after the document") }
        return v
    }

    /// Parses a complete document held in an array.
    public static func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
        let r: Result<JSONValue, JSONParseError> = bytes.withUnsafeBytes { raw in
            do throws(JSONParseError) { return .success(try parse(raw)) } catch { return .failure(error) }
        }
        return try r.get()
    }

    private let bytes: UnsafeRawBufferPointer
    private var i = 0

    private init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    private func error(_ reason: String) -> JSONParseError { JSONParseError(offset: i, reason: reason) }

    private var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    private mutating func skipWhitespace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0a || bytes[i] == 0x0d || bytes[i] == 0x09 { i += 1 }
    }

    private mutating func expect(_ literal: StaticString) throws(JSONParseError) {
        let n = literal.utf8CodeUnitCount
        guard i + n <= bytes.count else { throw error("unexpected end of input") }
        for k in 0..<n where bytes[i + k] != literal.utf8Start[k] { throw error("invalid literal") }
        i += n
    }

    private mutating func value(depth: Int) throws(JSONParseError) -> JSONValue {
        guard let c = peek else { throw error("unexpected end of input") }
        switch c {
        case UInt8(ascii: "{"):
            guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
            i += 1
            var pairs: [(String, JSONValue)] = []
            // Keys compared by their UTF-8 bytes, as JSON (and Python, and serde) compare them: Swift
            // String equality is canonical equivalence, under which distinct keys such as a
            // precomposed and a decomposed spelling of one syllable (both in Gemma's vocabulary)
            // would be taken for duplicates.
            var seen = Set<[UInt8]>()
            skipWhitespace()
            if peek == UInt8(ascii: "}") { i += 1; return .object(pairs) }
            while true {
                skipWhitespace()
                guard peek == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let keyOffset = i
                let key = try string()
                guard seen.insert(Array(key.utf8)).inserted else {
                    throw JSONParseError(offset: keyOffset, reason: "duplicate key \"\(key)\"")
                }
                skipWhitespace()
                guard peek == UInt8(ascii: ":") else { throw error("expected ':'") }
                i += 1
                skipWhitespace()
                pairs.append((key, try value(depth: depth + 1)))
                skipWhitespace()
                guard let d = peek else { throw error("unexpected end of input") }
                i += 1
                if d == UInt8(ascii: "}") { return .object(pairs) }
                guard d == UInt8(ascii: ",") else { i -= 1; throw error("expected ',' or '}'") }
            }
        case UInt8(ascii: "["):
            guard depth < Self.maxDepth else { throw error("nesting deeper than \(Self.maxDepth)") }
            i += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if peek == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try value(depth: depth + 1))
                skipWhitespace()
                guard let d = peek else { throw error("unexpected end of input") }
                i += 1
                if d == UInt8(ascii: "]") { return .array(items) }
                guard d == UInt8(ascii: ",") else { i -= 1; throw error("expected ',' or ']'") }
            }
        case UInt8(ascii: "\""):
            return .string(try string())
        case UInt8(ascii: "t"): try expect("true"); return .bool(true)
        case UInt8(ascii: "f"): try expect("false"); return .bool(false)
        case UInt8(ascii: "n"): try expect("null"); return .null
        default:
            return .number(try number())
        }
    }

    private mutating func number() throws(JSONParseError) -> String {
        let start = i
        func digits() -> Int {
            let s = i
            while let c = peek, c >= 0x30 && c <= 0x39 { i += 1 }
            return i - s
        }
        if peek == UInt8(ascii: "-") { i += 1 }
        guard let first = peek, first >= 0x30 && first <= 0x39 else { throw error("invalid value") }
        if first == 0x30 { i += 1 } else { _ = digits() }
        if peek == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { throw error("invalid number") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            i += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw error("invalid number") }
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
    }

    private mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw error("unexpected end of input in \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    private mutating func string() throws(JSONParseError) -> String {
        i += 1  // opening quote
        var out: [UInt8] = []
        var runStart = i
        while true {
            guard i < bytes.count else { throw error("unterminated string") }
            let c = bytes[i]
            if c == UInt8(ascii: "\"") {
                out.append(contentsOf: bytes[runStart..<i])
                i += 1
                break
            }
            if c < 0x20 { throw error("control character in string") }
            if c != UInt8(ascii: "\\") { i += 1; continue }
            out.append(contentsOf: bytes[runStart..<i])
            i += 1
            guard let e = peek else { throw error("unterminated escape") }
            i += 1
            switch e {
            case UInt8(ascii: "\""): out.append(0x22)
            case UInt8(ascii: "\\"): out.append(0x5c)
            case UInt8(ascii: "/"): out.append(0x2f)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0c)
            case UInt8(ascii: "n"): out.append(0x0a)
            case UInt8(ascii: "r"): out.append(0x0d)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var code = try hex4()
                if code >= 0xd800 && code < 0xdc00 {
                    guard i + 6 <= bytes.count, bytes[i] == 0x5c, bytes[i + 1] == UInt8(ascii: "u") else {
                        throw error("unpaired surrogate")
                    }
                    i += 2
                    let low = try hex4()
                    guard low >= 0xdc00 && low < 0xe000 else { throw error("unpaired surrogate") }
                    code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00)
                } else if code >= 0xdc00 && code < 0xe000 {
                    throw error("unpaired surrogate")
                }
                guard let scalar = Unicode.Scalar(code) else { throw error("invalid code point") }
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
            default:
                i -= 1
                throw error("invalid escape")
            }
            runStart = i
        }
        guard let s = String(validating: out, as: UTF8.self) else {
            throw error("string is not valid UTF-8")
        }
        return s
    }
}
