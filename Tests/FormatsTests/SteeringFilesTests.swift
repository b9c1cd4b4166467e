import Foundation
import Testing
import Tensors
import Formats

@Suite struct SteeringFilesTests {
    @Test func steeringAdapterRoundTrip() throws {
        let d = 6, r = 2
        var rng = SplitMix64(seed: 1)
        func rand(_ s: Shape) -> Tensor { Tensor(shape: s, scalars: (0..<s.count).map { _ in rng.nextNormal() }) }
        let file = SteeringAdapterFile(kind: "linear", activation: "silu", rank: r, baseModel: "sha256:abc", source: "tiny/finetuned",
                                       report: .object([("relative_error", .double(0.125))]),
                                       layers: [.init(index: 3, down: rand([d, r]), up: rand([d, r]), bias: rand([d])),
                                                .init(index: 0, down: rand([d, r]), up: rand([d, r]), bias: rand([d]))])
        let dir = TestFiles.temporaryFolder()
        try file.write(to: dir + "/s.safetensors")
        let back = try SteeringAdapterFile.load(path: dir + "/s.safetensors")
        #expect(back.layers == file.layers)
        #expect(back.layers.map(\.index) == [0, 3])
        #expect(back.activation == "silu" && back.rank == 2 && back.baseModel == "sha256:abc" && back.source == "tiny/finetuned")
        #expect(back.report["relative_error"]?.doubleValue == 0.125)
        #expect(try SafetensorsFile(path: dir + "/s.safetensors").metadata["layers"] == "[0,3]")
        #expect(throws: FormatsError.outputExists(path: dir + "/s.safetensors")) { try file.write(to: dir + "/s.safetensors") }
    }

    @Test func steeringFileRejectsMismatchedShapes() throws {
        let dir = TestFiles.temporaryFolder()
        try SafetensorsWriter.write([
            SafetensorsWriter.record("layers.0.down", Tensor(shape: [4, 2])),
            SafetensorsWriter.record("layers.0.up", Tensor(shape: [5, 2])),
        ], metadata: ["format": SteeringAdapterFile.formatName, "format_version": "1"], to: dir + "/bad.safetensors")
        #expect(throws: FormatsError.self) { try SteeringAdapterFile.load(path: dir + "/bad.safetensors") }
        try SafetensorsWriter.write([SafetensorsWriter.record("x", Tensor(shape: [1]))], to: dir + "/plain.safetensors")
        #expect(throws: FormatsError.self) { try SteeringAdapterFile.load(path: dir + "/plain.safetensors") }
    }

    @Test func controlVectorRoundTrip() throws {
        let cv = ControlVectorFile(modelHint: "llama", directions: [1: [1, 2, 3], 2: [-1, 0, 0.5]])
        let dir = TestFiles.temporaryFolder()
        try cv.write(to: dir + "/cv.gguf")
        let g = try GGUFFile(path: dir + "/cv.gguf")
        #expect(g.architecture == "controlvector")
        #expect(g.tensorNames == ["direction.1", "direction.2"])
        #expect(g.metadata["controlvector.layer_count"] == .int32(2))
        let back = try ControlVectorFile.load(path: dir + "/cv.gguf")
        #expect(back.directions == cv.directions && back.modelHint == "llama")
        #expect(throws: FormatsError.self) { try ControlVectorFile(directions: [0: [1]]).write(to: dir + "/zero.gguf") }
    }
}
