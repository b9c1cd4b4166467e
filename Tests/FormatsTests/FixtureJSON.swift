import Foundation
import Formats
import TestSupport

/// Reads a JSON fixture with the Formats JSON parser (it keeps number literals exact).
func fixtureJSON(_ relative: String) throws -> JSONValue {
    let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(relative)))
    return try JSONParser.parse([UInt8](data))
}

/// The Float32 a reference number literal denotes: integers converted directly from their
/// exact Int64/UInt64 value (one rounding, as a cast in the reader does), others via Double.
func referenceFloat(_ v: JSONValue) -> Float? {
    switch v {
    case .number(let s):
        if let i = Int64(s) { return Float(i) }
        if let u = UInt64(s) { return Float(u) }
        return Double(s).map { Float($0) }
    case .bool(let b): return b ? 1 : 0
    default: return nil
    }
}
