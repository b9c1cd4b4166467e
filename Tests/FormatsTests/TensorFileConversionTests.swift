import Foundation
import Testing
import TestSupport
import Tensors
import Formats

/// GGUF files of arbitrary tensors (no `llama.*` keys) ⇄ safetensors, against gguf-py: the
/// fixture `convert/tensors.gguf` (written by gguf-py, K-quant rows by llama.cpp's quantizer)
/// and gguf-py's dequantization of it (`convert/tensors.dequant.safetensors`).
@Suite("Tensor file conversion vs gguf-py")
struct TensorFileConversionTests {
    static let gguf = Fixtures.path("convert/tensors.gguf")
    static let expected = Fixtures.path("convert/tensors.dequant.safetensors")

    /// The fixture holds every type the acceptance names; the conversion is only as good as this list.
    @Test func fixtureCoversEveryReadableType() throws {
        let g = try GGUFFile(path: Self.gguf)
        let types = Set(g.tensorInfos.compactMap { info -> GGMLType? in if case .ggml(let t) = info.storage { t } else { nil } })
        let wanted: Set<GGMLType> = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K,
                                     .i8, .i16, .i32, .i64, .f64]
        #expect(wanted.isSubset(of: types), "missing \(wanted.subtracting(types))")
        #expect(GGUFContent(metadata: g.metadata) == .tensors)
    }

    /// F32 output: every tensor bit for bit equal to gguf-py's `quants.dequantize` (steertool's
    /// dequantizers replay gguf-py's float32 operations in order, so no tolerance); integer
    /// tensors keep their dtype and values; names, order and shapes (GGUF `ne` reversed) kept.
    @Test func f32OutputEqualsGGUFPyDequantization() throws {
        let dir = TestFiles.temporaryFolder()
        let report = try TensorFileConverter.ggufToSafetensors(input: Self.gguf, output: dir + "/t.safetensors")
        let out = try SafetensorsFile(path: dir + "/t.safetensors"), ref = try SafetensorsFile(path: Self.expected)
        let g = try GGUFFile(path: Self.gguf)
        #expect(out.tensorNames == g.tensorNames)
        #expect(report.tensors == ref.tensorNames.count)
        let md = try fixtureJSON("convert/tensors.metadata.json")
        for t in md["tensors"]?.arrayValue ?? [] {
            guard let name = t["name"]?.stringValue, let ne = t["ne"]?.arrayValue?.compactMap(\.intValue) else { continue }
            #expect(out.info(name)?.shape.dims == Array(ne.reversed()), "\(name): ne \(ne)")
        }
        for name in ref.tensorNames {
            let o = try #require(out.info(name)), r = try #require(ref.info(name))
            #expect(o.storage == r.storage, "\(name)")
            #expect(o.shape == r.shape, "\(name)")
            #expect(Array(try out.rawBytes(named: name)) == Array(try ref.rawBytes(named: name)), "\(name): bytes differ from gguf-py")
        }
    }

    /// F16 / BF16 output: within the rounding of the requested type of gguf-py's float32 values:
    /// half an ulp, i.e. relative 2⁻¹¹ (F16) or 2⁻⁸ (BF16), or 2⁻²⁵ absolute in F16's subnormal
    /// range (below 2⁻¹⁴).
    @Test(arguments: [DType.f16, .bf16])
    func halfOutputsAreRoundedReferenceValues(dtype: DType) throws {
        let dir = TestFiles.temporaryFolder()
        try TensorFileConverter.ggufToSafetensors(input: Self.gguf, output: dir + "/t.safetensors", dtype: dtype)
        let out = try SafetensorsFile(path: dir + "/t.safetensors"), ref = try SafetensorsFile(path: Self.expected)
        var checked = 0
        for name in ref.tensorNames {
            guard case .safetensors(let rt) = try #require(ref.info(name)).storage, rt == .f32 else {
                #expect(out.info(name)?.storage == ref.info(name)?.storage, "\(name): integer tensors keep their type")
                continue
            }
            #expect(out.info(name)?.storage == .safetensors(dtype), "\(name)")
            let a = try out.tensor(named: name).scalars, b = try ref.tensor(named: name).scalars
            for (x, y) in zip(a, b) {
                let bound: Float = dtype == .f16 ? (abs(y) < 0x1p-14 ? 0x1p-25 : abs(y) * 0x1p-11) : abs(y) * 0x1p-8
                #expect(abs(x - y) <= bound, "\(name): \(x) vs gguf-py \(y)")
                if abs(x - y) > bound { break }
            }
            checked += 1
        }
        #expect(checked >= 40)
    }

    /// Metadata: each value as a string (the documented rendering), and back to GGUF with the
    /// types and values gguf-py's reader saw in the original file.
    @Test func metadataRoundTripsWithItsTypes() throws {
        let dir = TestFiles.temporaryFolder()
        try TensorFileConverter.ggufToSafetensors(input: Self.gguf, output: dir + "/t.safetensors")
        let st = try SafetensorsFile(path: dir + "/t.safetensors")
        #expect(st.metadata["test.u64"] == "18000000000000000000")
        #expect(st.metadata["test.f32"] == "1e-05")
        #expect(st.metadata["test.bool"] == "true")
        #expect(st.metadata["test.strings"] == #"["a","b c",""]"#)
        #expect(st.metadata["test.nested"] == "[[1,2],[3]]")
        #expect(st.metadata["test.string"] == "quote \" backslash \\ newline \n unicode é")

        try TensorFileConverter.safetensorsToGGUF(input: dir + "/t.safetensors", output: dir + "/back.gguf")
        let back = try GGUFFile(path: dir + "/back.gguf")
        let md = try fixtureJSON("convert/tensors.metadata.json")
        let entries = md["metadata"]?.arrayValue ?? []
        #expect(entries.count == back.metadata.count)
        for e in entries {
            let key = try #require(e["key"]?.stringValue)
            let value = try #require(back.metadata[key], "\(key) lost")
            let types = e["types"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(Self.typeChain(value) == types, "\(key)")
            #expect(Self.flattened(value) == Self.flattenedJSON(e["value"]), "\(key)")
        }
    }

    /// Safetensors → GGUF keeps every dtype and byte (gguf-py's values as F32 and the integer types).
    @Test func safetensorsToGGUFKeepsTypesAndBytes() throws {
        let dir = TestFiles.temporaryFolder()
        try TensorFileConverter.safetensorsToGGUF(input: Self.expected, output: dir + "/t.gguf")
        let g = try GGUFFile(path: dir + "/t.gguf"), ref = try SafetensorsFile(path: Self.expected)
        #expect(g.tensorNames == ref.tensorNames)
        for name in ref.tensorNames {
            let r = try #require(ref.info(name)), o = try #require(g.info(name))
            guard case .safetensors(let d) = r.storage else { continue }
            #expect(o.storage == .ggml(try #require(TensorFileConverter.ggmlType(storing: d))), "\(name)")
            #expect(o.shape == r.shape)
            #expect(Array(try g.rawBytes(named: name)) == Array(try ref.rawBytes(named: name)), "\(name)")
        }
    }

    /// A file cut inside its tensor data: the error names the file and the tensor, nothing is written.
    @Test func truncatedFileNamesFileAndTensorAndWritesNothing() throws {
        let dir = TestFiles.temporaryFolder()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Self.gguf)))
        let cut = dir + "/cut.gguf"
        TestFiles.write(Array(bytes.prefix(bytes.count - 100)), to: cut)
        let last = try #require(try GGUFFile(path: Self.gguf).tensorNames.last)
        do {
            try TensorFileConverter.ggufToSafetensors(input: cut, output: dir + "/t.safetensors")
            Issue.record("truncated file accepted")
        } catch {
            #expect("\(error)".contains(cut))
            #expect("\(error)".contains("'\(last)'"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/t.safetensors"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["cut.gguf"], "no temporary file left")
    }

    /// An unknown GGML type number, and a known type without a dequantizer (gguf-py's MXFP4
    /// fixture): errors name the file and tensor; nothing is written.
    @Test func unknownAndUnreadableTypesAreRefused() throws {
        let dir = TestFiles.temporaryFolder()
        var b = GGUFBuilder()
        b.header(tensors: 1, kvs: 0)
        b.tensorInfo("weird", ne: [32], type: 99, offset: 0)
        b.align()
        b.bytes += [UInt8](repeating: 0, count: 128)
        TestFiles.write(b.bytes, to: dir + "/unknown.gguf")
        #expect(throws: GGUFError.unknownTensorType(file: dir + "/unknown.gguf", tensor: "weird", type: 99)) {
            try TensorFileConverter.ggufToSafetensors(input: dir + "/unknown.gguf", output: dir + "/a.safetensors")
        }
        let mx = Fixtures.path("quant/mxfp4.gguf")
        let first = try #require(try GGUFFile(path: mx).tensorNames.first)
        #expect(throws: GGUFError.unsupportedTensorType(file: mx, tensor: first, type: "MXFP4")) {
            try TensorFileConverter.ggufToSafetensors(input: mx, output: dir + "/b.safetensors")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["unknown.gguf"])
    }

    /// A safetensors dtype GGUF has no type for (U8) is refused naming the tensor.
    @Test func unsignedSafetensorsTensorIsRefused() throws {
        let dir = TestFiles.temporaryFolder()
        try SafetensorsWriter.write([SafetensorsWriter.record("mask", dtype: .u8, shape: [4], rawBytes: [0, 1, 2, 3])], to: dir + "/u.safetensors")
        #expect(throws: FormatsError.unsupportedConversion(file: dir + "/u.safetensors", tensor: "mask", type: "U8", reason: "GGUF has no U8 tensor type")) {
            try TensorFileConverter.safetensorsToGGUF(input: dir + "/u.safetensors", output: dir + "/u.gguf")
        }
        #expect(!FileManager.default.fileExists(atPath: dir + "/u.gguf"))
    }

    /// An existing output is kept without `force` and replaced with it.
    @Test func existingOutputNeedsForce() throws {
        let dir = TestFiles.temporaryFolder()
        let out = dir + "/t.safetensors"
        TestFiles.write([1, 2, 3], to: out)
        #expect(throws: FormatsError.outputExists(path: out)) {
            try TensorFileConverter.ggufToSafetensors(input: Self.gguf, output: out)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: out)) == Data([1, 2, 3]))
        try TensorFileConverter.ggufToSafetensors(input: Self.gguf, output: out, force: true)
        #expect(try SafetensorsFile(path: out).tensorNames.count == 50)
    }

    /// Models, adapters, control vectors and tensor files are told apart by their metadata.
    @Test func contentIsDecidedByMetadata() throws {
        #expect(GGUFContent(metadata: try GGUFFile(path: Fixtures.path("tiny/gguf/base.f32.gguf")).metadata) == .llamaModel)
        #expect(GGUFContent(metadata: try GGUFFile(path: Fixtures.path("convert/tiny-lora.f32.gguf")).metadata) == .loraAdapter)
        #expect(GGUFContent(metadata: try GGUFFile(path: Fixtures.path("quant/q8_0.gguf")).metadata) == .tensors)
        #expect(GGUFContent(metadata: ["general.architecture": .string("llama")]) == .tensors, "llama without hyperparameters")
        #expect(GGUFContent(metadata: ["general.architecture": .string("controlvector")]) == .controlVector)
    }

    // gguf-py's `types` for a field: ["ARRAY", "ARRAY", "INT32"] for nested arrays.
    static func typeChain(_ v: GGUFValue) -> [String] {
        guard case let .array(t, items) = v else { return [v.type.description] }
        if t == .array, let first = items.first { return ["ARRAY"] + typeChain(first) }
        return ["ARRAY", t.description]
    }

    // Leaves as strings (gguf-py's contents() flattens nested arrays); floats as Double text.
    static func flattened(_ v: GGUFValue) -> [String] {
        switch v {
        case .array(_, let items): return items.flatMap(flattened)
        case .float32(let f): return [String(Double(f))]
        case .float64(let d): return [String(d)]
        case .string(let s): return [s]
        default: return [v.description]
        }
    }

    static func flattenedJSON(_ j: JSONValue?) -> [String] {
        switch j {
        case .array(let items)?: return items.flatMap(flattenedJSON)
        case .number(let s)?: return [s.contains(".") || s.contains("e") ? String(Double(s) ?? .nan) : s]
        case .string(let s)?: return [s]
        case .bool(let b)?: return [b ? "true" : "false"]
        default: return []
        }
    }
}

/// The text form of GGUF values (`GGUFMetadataText`'s documented rendering) and its way back,
/// for values the gguf-py fixture does not hold: non-finite floats, empty and nested arrays.
@Suite("GGUF metadata as text")
struct GGUFMetadataTextTests {
    @Test func nonFiniteAndEmptyValuesRoundTrip() throws {
        let md: [String: GGUFValue] = [
            "nan": .float32(.nan), "inf": .float64(-.infinity), "floats": .float32s([.infinity, 0.1, -0.0]),
            "empty": .array(elementType: .uint64, []), "nested": .array(elementType: .array, [.strings(["x"]), .strings([])]),
        ]
        let (text, omitted) = GGUFMetadataText.strings(from: .init(uniqueKeysWithValues: md.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }))
        #expect(omitted.isEmpty)
        #expect(text["nan"] == "nan" && text["inf"] == "-inf")
        #expect(text["floats"] == #"["inf",0.1,-0.0]"#)
        #expect(text["empty"] == "[]" && text["nested"] == #"[["x"],[]]"#)
        let back = try GGUFMetadataText.metadata(from: text, source: "t")
        #expect(back["nan"]?.doubleValue?.isNaN == true)
        #expect(back["inf"] == .float64(-.infinity))
        #expect(back["floats"] == md["floats"] && back["empty"] == md["empty"] && back["nested"] == md["nested"])
    }

    @Test func badTypedValueNamesTheKey() {
        #expect(throws: FormatsError.invalidModel(file: "t", reason: "metadata 'n': 'x' is not a UINT32")) {
            try GGUFMetadataText.metadata(from: ["n": "x", GGUFMetadataText.typesKey: #"{"n":"UINT32"}"#], source: "t")
        }
        // Without a type the value is a string (safetensors files written by other tools).
        #expect((try? GGUFMetadataText.metadata(from: ["format": "pt"], source: "t"))?["format"] == .string("pt"))
    }
}
