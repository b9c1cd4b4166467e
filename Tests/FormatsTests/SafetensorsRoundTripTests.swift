import Foundation
import Testing
import Tensors
import Formats

@Suite struct SafetensorsRoundTripTests {
    @Test func writeThenRead() throws {
        let dir = TestFiles.temporaryFolder()
        let path = dir + "/t.safetensors"
        let a = Tensor(rows: [[1, -2, 3.5], [0.25, 1e-3, -7]])
        let b = Tensor(vector: [1, 2, 3, 4, 5])
        try SafetensorsWriter.write([
            SafetensorsWriter.record("a", a),
            SafetensorsWriter.record("b.f16", b, as: .f16),
            SafetensorsWriter.record("b.bf16", b, as: .bf16),
            SafetensorsWriter.record("b.i32", b, as: .i32),
            SafetensorsWriter.record("scalar", Tensor(shape: [], scalars: [42]), as: .f64),
            SafetensorsWriter.record("empty", Tensor(shape: [0, 3])),
        ], metadata: ["format": "pt", "note": "ü \"quoted\""], to: path)
        let bytes = try #require(FileManager.default.contents(atPath: path))
        let headerLength = bytes.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        #expect(headerLength % 8 == 0, "header padded to 8 bytes like the Python library")

        let f = try SafetensorsFile(path: path)
        #expect(f.tensorNames == ["a", "b.f16", "b.bf16", "b.i32", "scalar", "empty"])
        #expect(f.metadata["note"] == "ü \"quoted\"")
        // Exact: every value is representable in the stored type.
        #expect(try f.tensor(named: "a") == a)
        #expect(try f.tensor(named: "b.f16") == b)
        #expect(try f.tensor(named: "b.bf16") == b)
        #expect(try f.tensor(named: "b.i32") == b)
        #expect(try f.tensor(named: "scalar").scalars == [42])
        #expect(try f.tensor(named: "empty").shape == [0, 3])
        #expect(f.info("b.f16")?.storage == .safetensors(.f16))
        #expect(try f.rawBytes(named: "b.f16").count == 10)
        #expect(throws: SafetensorsError.tensorNotFound(file: path, tensor: "zzz")) { try f.tensor(named: "zzz") }
        #expect(throws: FormatsError.outputExists(path: path)) { try SafetensorsWriter.write([], to: path) }
    }

    @Test func integerWriterRefusesFractions() throws {
        let dir = TestFiles.temporaryFolder()
        #expect(throws: FormatsError.self) {
            try SafetensorsWriter.write([SafetensorsWriter.record("x", Tensor(vector: [1.5]), as: .i32)], to: dir + "/x.safetensors")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty, "failed write leaves no file")
    }

    @Test func shardedCheckpoint() throws {
        let dir = TestFiles.temporaryFolder()
        let tensors = (0..<5).map { i in ("layer.\(i)", Tensor(vector: [Float](repeating: Float(i), count: 10))) }
        let files = try SafetensorsWriter.writeSharded(tensors.map { SafetensorsWriter.record($0.0, $0.1) }, to: dir, maxShardBytes: 100)
        #expect(files.count == 4)  // 40 bytes each: two per shard, 3 shards, plus the index
        try Data("{\"hidden_size\": 8}".utf8).write(to: URL(fileURLWithPath: dir + "/config.json"))
        let ck = try Checkpoint(path: dir)
        #expect(ck.shards.count == 3)
        #expect(ck.tensorNames == tensors.map(\.0))
        for (name, t) in tensors { #expect(try ck.tensor(named: name) == t) }
        #expect(ck.configJSON.map { String(decoding: $0, as: UTF8.self) } == "{\"hidden_size\": 8}")
        #expect(ck.indexMetadata?["total_size"]?.intValue == 200)
    }

    @Test func indexNamingAMissingTensorFails() throws {
        let dir = TestFiles.temporaryFolder()
        try SafetensorsWriter.write([SafetensorsWriter.record("a", Tensor(vector: [1]))], to: dir + "/s1.safetensors")
        try Data(#"{"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}}"#.utf8).write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))
        #expect(throws: SafetensorsError.self) { try Checkpoint(path: dir) }
        try Data(#"{"weight_map":{"a":"../s1.safetensors"}}"#.utf8).write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))
        #expect(throws: SafetensorsError.self) { try Checkpoint(path: dir) }
    }
}
