import Testing
import TestSupport
import Formats

/// `fixtures/formats/dtypes.safetensors` was written by the Python `safetensors` library with one
/// tensor per dtype; `dtypes.json` lists the values as numpy read them back. Expected equality
/// is bit-exact (sign of zero included): every conversion to Float32 is a single rounding.
@Suite struct SafetensorsFixtureTests {
    @Test func everyDTypeDecodesToTheRecordedValues() throws {
        let expected = try fixtureJSON("formats/dtypes.json")
        let f = try SafetensorsFile(path: Fixtures.path("formats/dtypes.safetensors"))
        let entries = try #require(expected.objectValue)
        #expect(Set(f.tensorNames) == Set(entries.map(\.0)))
        for (name, e) in entries {
            let info = try #require(f.info(name))
            #expect(info.storage.description == e["dtype"]?.stringValue, "\(name)")
            #expect(info.shape.dims == e["shape"]?.arrayValue?.compactMap(\.intValue), "\(name)")
            let want = try #require(e["values"]?.arrayValue).compactMap(referenceFloat)
            let got = try f.tensor(named: name).scalars
            #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "\(name): \(got) vs \(want)")
        }
    }

    @Test func tinyModelsOpen() throws {
        for model in ["tiny/base", "tiny/finetuned", "tiny/tied-llama3"] {
            let ck = try Checkpoint(path: Fixtures.path(model))
            #expect(!ck.tensorNames.isEmpty, "\(model)")
            #expect(ck.configJSON != nil, "\(model)")
            for name in ck.tensorNames { _ = try ck.tensor(named: name) }
        }
    }

    @Test func rewriteReproducesTensors() throws {
        let ck = try Checkpoint(path: Fixtures.path("tiny/base"))
        let dir = TestFiles.temporaryFolder()
        var records: [TensorRecord] = []
        for name in ck.tensorNames {
            let info = try #require(ck.info(name))
            guard case .safetensors(let dtype) = info.storage else { Issue.record("not a safetensors dtype"); return }
            records.append(SafetensorsWriter.record(name, dtype: dtype, shape: info.shape, rawBytes: Array(try ck.rawBytes(named: name))))
        }
        try SafetensorsWriter.write(records, metadata: ck.metadata, to: dir + "/model.safetensors")
        let back = try Checkpoint(path: dir)
        #expect(back.tensorNames.sorted() == ck.tensorNames.sorted())
        for name in ck.tensorNames { #expect(Array(try back.rawBytes(named: name)) == Array(try ck.rawBytes(named: name))) }
    }
}
