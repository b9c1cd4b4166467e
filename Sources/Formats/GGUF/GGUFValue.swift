/// GGUF metadata value types, numbered as upstream gguf-py `constants.py` (`GGUFValueType`).
public enum GGUFValueType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
    case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

    /// Encoded size of a scalar value, or nil for string/array (variable length).
    public var fixedSize: Int? {
        switch self {
        case .uint8, .int8, .bool: 1
        case .uint16, .int16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .string, .array: nil
        }
    }

    /// Smallest possible encoded size of one value (string: its 8-byte length; array: type + count).
    public var minimumSize: Int { fixedSize ?? (self == .string ? 8 : 12) }

    public var description: String {
        switch self {
        case .uint8: "UINT8"
        case .int8: "INT8"
        case .uint16: "UINT16"
        case .int16: "INT16"
        case .uint32: "UINT32"
        case .int32: "INT32"
        case .float32: "FLOAT32"
        case .bool: "BOOL"
        case .string: "STRING"
        case .array: "ARRAY"
        case .uint64: "UINT64"
        case .int64: "INT64"
        case .float64: "FLOAT64"
        }
    }
}

/// A typed GGUF metadata value. Arrays carry their element type (all elements share it) and may
/// nest. The type is kept exactly so a file can be rewritten with the same encoding.
public indirect enum GGUFValue: Equatable, Sendable, CustomStringConvertible {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case float32(Float), bool(Bool), string(String)
    /// Elements, each of `elementType`.
    case array(elementType: GGUFValueType, [GGUFValue])
    case uint64(UInt64), int64(Int64), float64(Double)

    /// The value's type tag.
    public var type: GGUFValueType {
        switch self {
        case .uint8: .uint8
        case .int8: .int8
        case .uint16: .uint16
        case .int16: .int16
        case .uint32: .uint32
        case .int32: .int32
        case .float32: .float32
        case .bool: .bool
        case .string: .string
        case .array: .array
        case .uint64: .uint64
        case .int64: .int64
        case .float64: .float64
        }
    }

    /// Any integer type as Int (nil if it does not fit or is not an integer).
    public var intValue: Int? {
        switch self {
        case .uint8(let v): Int(v)
        case .int8(let v): Int(v)
        case .uint16(let v): Int(v)
        case .int16(let v): Int(v)
        case .uint32(let v): Int(v)
        case .int32(let v): Int(v)
        case .uint64(let v): Int(exactly: v)
        case .int64(let v): Int(v)
        default: nil
        }
    }

    /// A float (or integer) value as Double.
    public var doubleValue: Double? {
        switch self {
        case .float32(let v): Double(v)
        case .float64(let v): v
        default: intValue.map(Double.init)
        }
    }

    /// String contents, or nil.
    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    /// Bool, or nil.
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    /// Array elements, or nil.
    public var arrayValue: [GGUFValue]? { if case .array(_, let a) = self { a } else { nil } }

    /// A string array from `[String]`.
    public static func strings(_ s: [String]) -> GGUFValue { .array(elementType: .string, s.map { .string($0) }) }
    /// An INT32 array.
    public static func int32s(_ v: [Int32]) -> GGUFValue { .array(elementType: .int32, v.map { .int32($0) }) }
    /// A FLOAT32 array.
    public static func float32s(_ v: [Float]) -> GGUFValue { .array(elementType: .float32, v.map { .float32($0) }) }

    public var description: String {
        switch self {
        case .uint8(let v): "\(v)"
        case .int8(let v): "\(v)"
        case .uint16(let v): "\(v)"
        case .int16(let v): "\(v)"
        case .uint32(let v): "\(v)"
        case .int32(let v): "\(v)"
        case .float32(let v): "\(v)"
        case .bool(let v): "\(v)"
        case .string(let s): JSONValue.string(s).description
        case let .array(t, items):
            items.count <= 8
                ? "[" + items.map(\.description).joined(separator: ", ") + "]"
                : "[\(t)] × \(items.count): [" + items.prefix(5).map(\.description).joined(separator: ", ") + ", …]"
        case .uint64(let v): "\(v)"
        case .int64(let v): "\(v)"
        case .float64(let v): "\(v)"
        }
    }
}
