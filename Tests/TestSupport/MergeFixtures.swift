import Foundation
import Tensors

/// Reads `fixtures/merge/*.json` (written by fixtures/generate/extra/merge.py): JSON objects with
/// tensors as `{"shape": [...], "f32": base64 little-endian float32}`.
public enum MergeFixtures {
    public static func load(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("merge/" + name)))
        guard let obj = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw FixtureError.malformed(name)
        }
        return obj
    }

    public enum FixtureError: Error { case malformed(String) }

    public static func tensor(_ any: Any?) throws -> Tensor {
        guard let d = any as? [String: Any], let shape = d["shape"] as? [Int], let b64 = d["f32"] as? String,
              let bytes = Data(base64Encoded: b64) else { throw FixtureError.malformed("tensor") }
        let n = shape.reduce(1, *)
        guard bytes.count == n * 4 else { throw FixtureError.malformed("tensor byte count") }
        let values: [Float] = bytes.withUnsafeBytes { raw in
            (0..<n).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) }
        }
        return Tensor(shape: Shape(shape), scalars: values)
    }

    public static func tensors(_ any: Any?) throws -> [String: Tensor] {
        guard let d = any as? [String: Any] else { throw FixtureError.malformed("tensor map") }
        return try d.mapValues { try tensor($0) }
    }
}
