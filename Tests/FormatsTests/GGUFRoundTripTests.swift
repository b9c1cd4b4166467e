import Testing
import Tensors
import Formats

@Suite struct GGUFRoundTripTests {
    @Test func everyValueTypeAndPlainTensors() throws {
        let metadata: [(String, GGUFValue)] = [
            ("general.architecture", .string("llama")),
            ("u8", .uint8(200)), ("i8", .int8(-5)), ("u16", .uint16(60000)), ("i16", .int16(-300)),
            ("u32", .uint32(4_000_000_000)), ("i32", .int32(-7)), ("f32", .float32(1.5)), ("bool", .bool(true)),
            ("str", .string("héllo")), ("u64", .uint64(.max)), ("i64", .int64(.min)), ("f64", .float64(-2.25)),
            ("arr", .int32s([1, 2, 3])),
            ("nested", .array(elementType: .array, [.strings(["a", "b"]), .strings(["c"])])),
            ("empty", .array(elementType: .float32, [])),
        ]
        var md = OrderedDictionaryBox.make(metadata)
        md["general.alignment"] = .uint32(64)
        let dir = TestFiles.temporaryFolder()
        let path = dir + "/t.gguf"
        let w = Tensor(shape: [3, 64], scalars: (0..<192).map { Float($0) * 0.5 - 40 })
        let v = Tensor(vector: [1, -1, 0.5])
        try GGUFWriter.write(metadata: md, tensors: [
            GGUFWriter.record("w.f32", w, as: .f32),
            GGUFWriter.record("w.f16", w, as: .f16),
            GGUFWriter.record("w.bf16", w, as: .bf16),
            GGUFWriter.record("v", v, as: .f32),
        ], to: path)
        let f = try GGUFFile(path: path)
        #expect(f.version == 3)
        #expect(f.alignment == 64)
        #expect(Array(f.metadata.keys) == Array(md.keys))
        for (k, value) in md { #expect(f.metadata[k] == value, "\(k)") }
        #expect(f.tensorNames == ["w.f32", "w.f16", "w.bf16", "v"])
        #expect(f.info("w.f16")?.shape == [3, 64])
        for i in f.tensorInfos { #expect((i.byteRange.lowerBound - f.dataOffset) % 64 == 0) }
        // Exact: every value (multiples of 0.5 below 64) is representable in f16 and bf16.
        #expect(try f.tensor(named: "w.f32") == w)
        #expect(try f.tensor(named: "w.f16") == w)
        #expect(try f.tensor(named: "w.bf16") == w)
        #expect(try f.tensor(named: "v") == v)
    }

    @Test func mixedArrayIsRefused() {
        let dir = TestFiles.temporaryFolder()
        let md = OrderedDictionaryBox.make([("bad", .array(elementType: .int32, [.int32(1), .float32(2)]))])
        #expect(throws: FormatsError.self) { try GGUFWriter.write(metadata: md, tensors: [], to: dir + "/x.gguf") }
    }

    /// Q8_0 and Q4_0 of values that sit exactly on the quantization grid decode exactly
    /// (scale 1/127·127 = 1 for Q8_0 via the f16 scale 1.0; Q4_0 scale −8/−8 = 1).
    @Test func quantizedGridValuesRoundTrip() throws {
        var q8 = [Float](repeating: 0, count: 64)
        for j in 0..<64 { q8[j] = Float(j % 32 - 16) }
        q8[5] = 127; q8[40] = -127
        var q4 = [Float](repeating: 0, count: 32)
        for j in 0..<32 { q4[j] = Float(j % 16 - 8) }
        let dir = TestFiles.temporaryFolder()
        try GGUFWriter.write(metadata: [:], tensors: [
            GGUFWriter.record("q8", Tensor(shape: [2, 32], scalars: q8), as: .q8_0),
            GGUFWriter.record("q4", Tensor(shape: [1, 32], scalars: q4), as: .q4_0),
        ], to: dir + "/q.gguf")
        let f = try GGUFFile(path: dir + "/q.gguf")
        #expect(try f.tensor(named: "q8").scalars == q8)
        #expect(try f.tensor(named: "q4").scalars == q4)
        #expect(f.info("q8")?.byteCount == 68)
    }
}

enum OrderedDictionaryBox {
    static func make(_ pairs: [(String, GGUFValue)]) -> OrderedDictionary<String, GGUFValue> {
        OrderedDictionary(uniqueKeysWithValues: pairs)
    }
}
