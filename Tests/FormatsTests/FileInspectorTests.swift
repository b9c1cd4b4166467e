import Foundation
import Testing
import Tensors
import TestSupport
import Formats

@Suite struct FileInspectorTests {
    @Test func recognizesEveryFormat() throws {
        let dir = TestFiles.temporaryFolder()
        try SteeringAdapterFile(kind: "vector", rank: 0, baseModel: "x", source: "y",
                                layers: [.init(index: 2, bias: Tensor(vector: [1, 2]))]).write(to: dir + "/s.safetensors")
        try ControlVectorFile(directions: [1: [0.5, 1]]).write(to: dir + "/cv.gguf")
        let cases: [(String, Inspection.Format, Int)] = [
            (Fixtures.path("tiny/base"), .huggingFaceModel, 39),
            (Fixtures.path("tiny/tied-llama3/model.safetensors.index.json"), .huggingFaceModel, -1),
            (Fixtures.path("tiny/base/model.safetensors"), .safetensors, 39),
            (Fixtures.path("tiny/gguf/base.f16.gguf"), .gguf, 39),
            (Fixtures.path("tiny/lora"), .peftAdapter, 56),
            (Fixtures.packageRoot + "/fixtures/formats-extra/lora", .peftAdapter, -1),
            (Fixtures.packageRoot + "/fixtures/formats-extra/tensors.bin", .torchPickle, 7),
            (dir + "/s.safetensors", .steeringAdapter, 1),
            (dir + "/cv.gguf", .controlVector, 1),
        ]
        for (path, format, count) in cases {
            let i = try FileInspector.inspect(path: path)
            #expect(i.format == format, "\(path)")
            if count >= 0 { #expect(i.tensors.count == count, "\(path)") }
            #expect(i.parameterCount == i.tensors.reduce(0) { $0 + $1.shape.count })
            #expect(!i.text().isEmpty)
            #expect(try JSONParser.parse(Array(i.json.serialized(indent: 2).utf8))["format"]?.stringValue == format.rawValue)
        }
        // Parameter count of the tiny base model: 1024·64 (embed) ×2 + 4 layers of attention,
        // MLP and norms + final norm, as the safetensors header lists them.
        #expect(try FileInspector.inspect(path: Fixtures.path("tiny/base")).parameterCount == 328_256)
        #expect(throws: FormatsError.self) { try FileInspector.inspect(path: dir + "/missing") }
    }

    /// A zip whose central directory claims a 1 GB deflated entry from 10 bytes must be refused
    /// before anything is allocated.
    @Test func zipClaimedSizeIsCapped() throws {
        func le16(_ v: Int) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff)] }
        func le32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8(v >> (8 * $0) & 0xff) } }
        let name = Array("a/data.pkl".utf8)
        let payload = [UInt8](repeating: 0, count: 10)
        var local = le32(0x0403_4b50) + le16(20) + le16(0) + le16(8) + le16(0) + le16(0) + le32(0)
        local += le32(payload.count) + le32(1 << 30) + le16(name.count) + le16(0) + name + payload
        var central = le32(0x0201_4b50) + le16(20) + le16(20) + le16(0) + le16(8) + le16(0) + le16(0) + le32(0)
        central += le32(payload.count) + le32(1 << 30) + le16(name.count) + le16(0) + le16(0) + le16(0) + le16(0) + le32(0) + le32(0) + name
        let eocd = le32(0x0605_4b50) + le16(0) + le16(0) + le16(1) + le16(1) + le32(central.count) + le32(local.count) + le16(0)
        let dir = TestFiles.temporaryFolder()
        TestFiles.write(local + central + eocd, to: dir + "/z.bin")
        #expect {
            _ = try TorchPickleReader.load(path: dir + "/z.bin")
        } throws: { error in
            guard case PickleError.invalidZip(_, _, let reason) = error else { return false }
            return reason.contains("claimed size")
        }
    }
}
