import Foundation
import Testing
import Tensors
import TestSupport
import Formats

/// A GGUF written by steertool (`convert fixtures/tiny/base --type q4_0`), read back by gguf-py's
/// `GGUFReader` in `fixtures/generate/extra/formats-extra.py`: gguf-py must see the same metadata
/// and dequantize the same values as steertool (bit-exact), and the committed file must still be
/// exactly what the converter writes today.
@Suite struct GGUFReadbackTests {
    let folder = Fixtures.packageRoot + "/fixtures/formats-extra"

    @Test func converterStillWritesTheCommittedFile() throws {
        let dir = TestFiles.temporaryFolder()
        try LlamaConverter.hfToGGUF(input: Fixtures.path("tiny/base"), output: dir + "/base.q4_0.gguf", type: .q4_0, name: "base")
        #expect(FileManager.default.contents(atPath: dir + "/base.q4_0.gguf") == FileManager.default.contents(atPath: folder + "/steertool-base.q4_0.gguf"))
    }

    @Test func ggufPyReadsWhatWeWrote() throws {
        let ours = try GGUFFile(path: folder + "/steertool-base.q4_0.gguf")
        let theirs = try SafetensorsFile(path: folder + "/readback.safetensors")
        #expect(!theirs.tensorNames.isEmpty)
        for name in theirs.tensorNames {
            let a = try ours.tensor(named: name), b = try theirs.tensor(named: name)
            #expect(a.shape == b.shape, "\(name)")
            #expect(a.scalars.map(\.bitPattern) == b.scalars.map(\.bitPattern), "\(name)")
        }
        let meta = try #require(try JSONParser.parse([UInt8](Data(contentsOf: URL(fileURLWithPath: folder + "/readback.json")))).objectValue)
        #expect(meta.map(\.0) == Array(ours.metadata.keys))
        let decode = GGUFFixtureTests()
        for (key, e) in meta {
            #expect(ours.metadata[key] == (try decode.expectedValue(e)), "\(key)")
        }
    }
}
