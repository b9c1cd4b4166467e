import OrderedCollections

/// GGUF metadata as text, for files whose metadata is a string → string map (safetensors'
/// `__metadata__`), and back.
///
/// Rendering of each GGUF value type:
/// - STRING: the string itself.
/// - UINT8 … INT64: decimal (`42`, `-7`).
/// - FLOAT32 / FLOAT64: the shortest decimal that reads back to the same bits (`1e-05`,
///   `0.5`), `nan`, `inf` or `-inf`.
/// - BOOL: `true` / `false`.
/// - ARRAY: compact JSON (`["a","b"]`, `[1,2,3]`, `[[1],[2]]`); strings JSON-escaped, numbers as
///   above, non-finite floats as the JSON strings `"nan"`, `"inf"`, `"-inf"`.
///
/// The exact types travel in one extra entry, `typesKey`, a JSON object from each key to its type
/// (`"UINT32"`, `"FLOAT32"`, `"ARRAY[STRING]"`, `"ARRAY[ARRAY[INT32]]"`), so the way back restores
/// every value with its original encoding; keys it does not list come back as STRING.
public enum GGUFMetadataText {
    /// The `__metadata__` entry holding each key's GGUF type.
    public static let typesKey = "gguf.value_types"
    /// Values whose text would be longer than this are left out (safetensors caps its whole header
    /// at 100 MB, and a long token list is no use as a string).
    public static let maxValueLength = 16 << 20

    /// The text of one value (see the type's documentation).
    public static func render(_ value: GGUFValue) -> String {
        switch value {
        case .string(let s): return s
        case .array:
            var out = ""
            json(value, into: &out)
            return out
        default:
            var out = ""
            scalar(value, into: &out, quoteNonFinite: false)
            return out
        }
    }

    /// The type spelling of `value`: its `GGUFValueType` name, `ARRAY[<element>]` for arrays
    /// (a nested array's element type is its first item's; an empty nested array reads UINT8).
    public static func typeName(_ value: GGUFValue) -> String {
        guard case let .array(t, items) = value else { return value.type.description }
        if t == .array { return "ARRAY[" + (items.first.map(typeName) ?? "ARRAY[UINT8]") + "]" }
        return "ARRAY[\(t)]"
    }

    /// `metadata` as a string map plus `typesKey`; also the keys left out for length.
    public static func strings(from metadata: OrderedDictionary<String, GGUFValue>)
        -> (strings: OrderedDictionary<String, String>, omitted: [String]) {
        var out = OrderedDictionary<String, String>()
        var types: [(String, JSONValue)] = []
        var omitted: [String] = []
        for (k, v) in metadata where k != typesKey {
            let text = render(v)
            guard text.utf8.count <= maxValueLength else { omitted.append(k); continue }
            out[k] = text
            types.append((k, .string(typeName(v))))
        }
        if !types.isEmpty { out[typesKey] = JSONValue.object(types).description }
        return (out, omitted)
    }

    /// A string map (safetensors `__metadata__`) back to typed GGUF metadata: keys listed in its
    /// `typesKey` entry are parsed as that type, the others become STRING values. `source` names
    /// the file in errors.
    /// - Throws: `FormatsError.invalidModel` naming the key when a value does not parse as its
    ///   stated type, or when `typesKey` is not a JSON object of strings.
    public static func metadata(from strings: OrderedDictionary<String, String>, source: String) throws
        -> OrderedDictionary<String, GGUFValue> {
        var types: [String: String] = [:]
        if let t = strings[typesKey] {
            guard let j = try? JSONParser.parse(Array(t.utf8)), let pairs = j.objectValue else {
                throw FormatsError.invalidModel(file: source, reason: "metadata '\(typesKey)' is not a JSON object")
            }
            for (k, v) in pairs {
                guard let s = v.stringValue else {
                    throw FormatsError.invalidModel(file: source, reason: "metadata '\(typesKey)': type of '\(k)' is not a string")
                }
                types[k] = s
            }
        }
        var out = OrderedDictionary<String, GGUFValue>()
        for (k, text) in strings where k != typesKey {
            guard let t = types[k] else { out[k] = .string(text); continue }
            guard let v = parse(text, type: t) else {
                throw FormatsError.invalidModel(file: source, reason: "metadata '\(k)': '\(text.prefix(80))' is not a \(t)")
            }
            out[k] = v
        }
        return out
    }

    /// Parses `text` as the type spelled `type` (see `typeName`), or nil.
    public static func parse(_ text: String, type: String) -> GGUFValue? {
        if type == "STRING" { return .string(text) }
        if type.hasPrefix("ARRAY[") {
            guard let j = try? JSONParser.parse(Array(text.utf8)) else { return nil }
            return value(j, type: type)
        }
        return scalar(text, type: type)
    }

    // MARK: rendering

    private static func scalar(_ v: GGUFValue, into out: inout String, quoteNonFinite: Bool) {
        func float(_ s: String, finite: Bool) { out += finite || !quoteNonFinite ? s : "\"" + s + "\"" }
        switch v {
        case .uint8(let x): out += String(x)
        case .int8(let x): out += String(x)
        case .uint16(let x): out += String(x)
        case .int16(let x): out += String(x)
        case .uint32(let x): out += String(x)
        case .int32(let x): out += String(x)
        case .uint64(let x): out += String(x)
        case .int64(let x): out += String(x)
        case .float32(let x): float(x.isNaN ? "nan" : x.description, finite: x.isFinite)
        case .float64(let x): float(x.isNaN ? "nan" : x.description, finite: x.isFinite)
        case .bool(let b): out += b ? "true" : "false"
        case .string(let s): out += JSONValue.string(s).description
        case .array: json(v, into: &out)
        }
    }

    private static func json(_ v: GGUFValue, into out: inout String) {
        guard case let .array(_, items) = v else { scalar(v, into: &out, quoteNonFinite: true); return }
        out += "["
        for (i, item) in items.enumerated() {
            if i > 0 { out += "," }
            json(item, into: &out)
        }
        out += "]"
    }

    // MARK: parsing

    private static func scalar(_ s: String, type: String) -> GGUFValue? {
        switch type {
        case "UINT8": UInt8(s).map { .uint8($0) }
        case "INT8": Int8(s).map { .int8($0) }
        case "UINT16": UInt16(s).map { .uint16($0) }
        case "INT16": Int16(s).map { .int16($0) }
        case "UINT32": UInt32(s).map { .uint32($0) }
        case "INT32": Int32(s).map { .int32($0) }
        case "UINT64": UInt64(s).map { .uint64($0) }
        case "INT64": Int64(s).map { .int64($0) }
        case "FLOAT32": Float(s).map { .float32($0) }
        case "FLOAT64": Double(s).map { .float64($0) }
        case "BOOL": s == "true" ? .bool(true) : s == "false" ? .bool(false) : nil
        case "STRING": .string(s)
        default: nil
        }
    }

    private static func value(_ j: JSONValue, type: String) -> GGUFValue? {
        if type.hasPrefix("ARRAY["), type.hasSuffix("]") {
            let inner = String(type.dropFirst("ARRAY[".count).dropLast())
            guard let items = j.arrayValue else { return nil }
            let elementType: GGUFValueType
            if inner.hasPrefix("ARRAY[") { elementType = .array } else {
                guard let t = GGUFValueType.allCases.first(where: { $0.description == inner }) else { return nil }
                elementType = t
            }
            var out: [GGUFValue] = []
            out.reserveCapacity(items.count)
            for item in items {
                guard let v = value(item, type: inner) else { return nil }
                out.append(v)
            }
            return .array(elementType: elementType, out)
        }
        switch j {
        case .number(let s): return type == "STRING" || type == "BOOL" ? nil : scalar(s, type: type)
        case .string(let s): return type == "STRING" ? .string(s) : (type.hasPrefix("FLOAT") ? scalar(s, type: type) : nil)
        case .bool(let b): return type == "BOOL" ? .bool(b) : nil
        default: return nil
        }
    }
}
