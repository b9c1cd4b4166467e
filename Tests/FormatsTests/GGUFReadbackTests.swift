import Foundation
import Testing
import Tensors
import TestSupport
import Formats

/// A GGUF written by steertool's `GGUFWriter` (every metadata value type; F32/F16/BF16/Q8_0/Q4_0
/// tensors of `quant/source.safetensors`), committed as
/// `fixtures/formats-extra/steertool-written.gguf` and read back by gguf-py's `GGUFReader` in
/// `fixtures/generate/extra/formats-extra.py`: gguf-py must see our metadata and dequantize the
/// same values steertool does (bit-exact), and the writer must still produce the committed bytes.
@Suite struct GGUFReadbackTests {
    static let folder = Fixtures.packageRoot + "/fixtures/formats-extra"

    /// The file's contents, defined here once.
    static func write(to path: String, force: Bool = false) throws {
        let source = try SafetensorsFile(path: Fixtures.path("quant/source.safetensors"))
        let small = try source.tensor(named: "small"), cube = try source.tensor(named: "cube")
        let md: OrderedDictionary<String, GGUFValue> = [
            "general.architecture": .string("steertool-readback"),
            "general.alignment": .uint32(64),
            "t.u8": .uint8(250), "t.i8": .int8(-7), "t.u16": .uint16(65000), "t.i16": .int16(-32000),
            "t.u32": .uint32(4_000_000_000), "t.i32": .int32(-2_000_000_000), "t.f32": .float32(0.1),
            "t.bool": .bool(true), "t.str": .string("héllo ✓"), "t.u64": .uint64(18_000_000_000_000_000_000),
            "t.i64": .int64(-9_000_000_000_000_000_000), "t.f64": .float64(-0.3),
            "t.arr.i32": .int32s([1, -2, 3]), "t.arr.str": .strings(["a", "", "γ"]),
            "t.arr.nested": .array(elementType: .array, [.int32s([1, 2]), .int32s([3])]),
        ]
        try GGUFWriter.write(metadata: md, tensors: [
            GGUFWriter.record("small.f32", small, as: .f32), GGUFWriter.record("small.f16", small, as: .f16),
            GGUFWriter.record("small.bf16", small, as: .bf16), GGUFWriter.record("small.q8_0", small, as: .q8_0),
            GGUFWriter.record("small.q4_0", small, as: .q4_0), GGUFWriter.record("cube.q8_0", cube, as: .q8_0),
        ], to: path, force: force)
    }

    @Test func writerStillWritesTheCommittedFile() throws {
        if ProcessInfo.processInfo.environment["STEERTOOL_REGENERATE_READBACK"] == "1" {
            try Self.write(to: Self.folder + "/steertool-written.gguf", force: true)
        }
        let dir = TestFiles.temporaryFolder()
        try Self.write(to: dir + "/w.gguf")
        #expect(FileManager.default.contents(atPath: dir + "/w.gguf") == FileManager.default.contents(atPath: Self.folder + "/steertool-written.gguf"),
                "writer output changed: rerun with STEERTOOL_REGENERATE_READBACK=1, then fixtures/generate/extra/formats-extra.py")
    }

    @Test func ggufPyReadsWhatWeWrote() throws {
        let ours = try GGUFFile(path: Self.folder + "/steertool-written.gguf")
        let theirs = try SafetensorsFile(path: Self.folder + "/readback.safetensors")
        #expect(theirs.tensorNames.sorted() == ours.tensorNames.sorted())
        for name in theirs.tensorNames {
            let a = try ours.tensor(named: name), b = try theirs.tensor(named: name)
            #expect(a.shape == b.shape, "\(name)")
            #expect(a.scalars.map(\.bitPattern) == b.scalars.map(\.bitPattern), "\(name)")
        }
        let meta = try #require(try JSONParser.parse([UInt8](Data(contentsOf: URL(fileURLWithPath: Self.folder + "/readback.json")))).objectValue)
        #expect(meta.map(\.0) == Array(ours.metadata.keys))
        let decode = GGUFFixtureTests()
        func leaves(_ v: GGUFValue) -> [GGUFValue] {
            if case .array(_, let items) = v { return items.flatMap(leaves) }
            return [v]
        }
        for (key, e) in meta {
            if let inner = e["inner_element_type"]?.stringValue {
                // gguf-py flattens nested arrays in contents(): compare types and leaves.
                guard case .array(.array, let rows)? = ours.metadata[key] else { Issue.record("\(key) is not nested"); continue }
                #expect(rows.allSatisfy { if case .array(let t, _) = $0 { t.description == inner } else { false } }, "\(key)")
                let flat = try decode.expectedValue(.object([("type", .string("ARRAY")), ("element_type", .string(inner)), ("value", e["value"] ?? .null)]))
                #expect(leaves(ours.metadata[key] ?? .bool(false)) == flat.arrayValue, "\(key)")
                continue
            }
            #expect(ours.metadata[key] == (try decode.expectedValue(e)), "\(key)")
        }
    }
}
