import Testing
import Tensors
import TestSupport
import Formats

/// GGUF files written by gguf-py, with the values gguf-py itself reads back.
@Suite struct GGUFFixtureTests {
    /// The GGUFValue a metadata.json entry describes.
    func expectedValue(_ e: JSONValue, type: String? = nil, element: String? = nil) throws -> GGUFValue {
        let t = type ?? e["type"]?.stringValue ?? ""
        let v = e["value"] ?? e
        func num<T>(_ f: (String) -> T?) throws -> T {
            guard case .number(let s) = v, let x = f(s) else { throw FormatsError.invalidJSON(file: "metadata.json", reason: "\(v)") }
            return x
        }
        switch t {
        case "UINT8": return .uint8(try num { UInt8($0) })
        case "INT8": return .int8(try num { Int8($0) })
        case "UINT16": return .uint16(try num { UInt16($0) })
        case "INT16": return .int16(try num { Int16($0) })
        case "UINT32": return .uint32(try num { UInt32($0) })
        case "INT32": return .int32(try num { Int32($0) })
        case "UINT64": return .uint64(try num { UInt64($0) })
        case "INT64": return .int64(try num { Int64($0) })
        case "FLOAT32": return .float32(try num { Double($0).map { Float($0) } })
        case "FLOAT64": return .float64(try num { Double($0) })
        case "BOOL": return .bool(v.boolValue ?? false)
        case "STRING": return .string(v.stringValue ?? "")
        case "ARRAY":
            let et = element ?? e["element_type"]?.stringValue ?? ""
            let inner = e["inner_element_type"]?.stringValue
            let items = try (v.arrayValue ?? []).map { item -> GGUFValue in
                et == "ARRAY" ? try expectedValue(.object([("value", item)]), type: "ARRAY", element: inner)
                              : try expectedValue(.object([("value", item)]), type: et)
            }
            return .array(elementType: GGUFValueType.allCases.first { $0.description == et } ?? .uint8, items)
        default:
            throw FormatsError.invalidJSON(file: "metadata.json", reason: "type \(t)")
        }
    }

    @Test func metadataOfEveryValueType() throws {
        let ref = try fixtureJSON("formats/metadata.json")
        let f = try GGUFFile(path: Fixtures.path("formats/metadata.gguf"))
        let entries = try #require(ref["metadata"]?.objectValue)
        for (key, e) in entries {
            #expect(f.metadata[key] == (try expectedValue(e)), "\(key)")
        }
        #expect(Array(f.metadata.keys.filter { !$0.hasPrefix("GGUF.") }) == entries.map(\.0))
        #expect(try f.tensor(named: "tensor.f32") == Tensor(rows: [[0, 1, 2], [3, 4, 5]]))
    }

    /// Dequantized values equal gguf-py's `dequantize` output bit for bit (both compute in
    /// float32 with the same operation order), for every type steertool decodes; types it does
    /// not decode fail with an error naming the type.
    @Test func dequantizationMatchesGGUFPy() throws {
        let index = try #require(try fixtureJSON("quant/index.json").objectValue)
        for (typeName, e) in index {
            let f = try GGUFFile(path: Fixtures.path("quant/" + (e["gguf"]?.stringValue ?? "")))
            let ref = try SafetensorsFile(path: Fixtures.path("quant/" + (e["dequant"]?.stringValue ?? "")))
            let type = try #require(GGMLType(name: typeName))
            #expect(Int(type.rawValue) == e["type_id"]?.intValue)
            #expect(type.blockSize == e["block_size"]?.intValue && type.typeSize == e["type_size"]?.intValue, "\(typeName)")
            for name in (e["tensors"]?.arrayValue ?? []).compactMap(\.stringValue) {
                guard GGMLDequantizer.supports(type) else {
                    #expect(throws: GGUFError.unsupportedTensorType(file: f.path, tensor: name, type: typeName)) { try f.tensor(named: name) }
                    continue
                }
                let got = try f.tensor(named: name)
                let want = try ref.tensor(named: name)
                #expect(got.shape == want.shape, "\(typeName) \(name)")
                #expect(got.scalars.map(\.bitPattern) == want.scalars.map(\.bitPattern), "\(typeName) \(name)")
            }
        }
    }

    /// Quantizing the recorded source values reproduces the bytes gguf-py wrote.
    @Test func quantizersMatchGGUFPyBytes() throws {
        let source = try SafetensorsFile(path: Fixtures.path("quant/source.safetensors"))
        for (type, file) in [(GGMLType.f16, "f16.gguf"), (.bf16, "bf16.gguf"), (.q8_0, "q8_0.gguf"), (.q4_0, "q4_0.gguf")] {
            let f = try GGUFFile(path: Fixtures.path("quant/" + file))
            for name in f.tensorNames {
                let x = try source.tensor(named: name)
                let mine = x.withUnsafeBufferPointer { GGMLQuantizer.quantize($0, as: type) }
                #expect(mine == Array(try f.rawBytes(named: name)), "\(type) \(name)")
            }
        }
    }
}
