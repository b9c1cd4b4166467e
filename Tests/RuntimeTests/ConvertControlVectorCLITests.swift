import Foundation
import Testing
import Runtime
import TestSupport

/// `steertool convert` between a llama.cpp control vector and a steering adapter: the fixture
/// control vector (written by steertool and read by llama.cpp and gguf-py in the merge fixtures)
/// survives GGUF → steering file → GGUF byte for byte, and the steering file applies the same
/// directions (post-block, direction.k on block k).
@Suite("CLI convert control vector")
struct ConvertControlVectorCLITests {
    @Test func roundTripIsExact() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-cv-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let source = Fixtures.path("merge/llamacpp/cv.gguf")
        let steering = dir + "/cv.safetensors", back = dir + "/cv.gguf"
        let a = try SteerToolBinary.run(["convert", source, steering])
        #expect(a.status == 0, "\(a.err)")
        let b = try SteerToolBinary.run(["convert", steering, back])
        #expect(b.status == 0, "\(b.err)")
        #expect(FileManager.default.contents(atPath: back) == FileManager.default.contents(atPath: source))
        let fromFile = try SteeringAdapter.load(path: steering)
        #expect(fromFile.site == .blockOutput && !fromFile.layers.isEmpty)
        // Existing outputs are kept without --force.
        #expect(try SteerToolBinary.run(["convert", source, steering]).status != 0)
    }

    /// `extract-lora` is `merge extract` under the name: the same adapter, byte for byte.
    @Test func extractLoRAIsMergeExtract() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-ex-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let common = ["--base", Fixtures.path("tiny/base"), "--finetuned", Fixtures.path("tiny/finetuned"), "--rank", "4"]
        let a = try SteerToolBinary.run(["extract-lora"] + common + ["--output", dir + "/a"])
        let b = try SteerToolBinary.run(["merge", "extract"] + common + ["--output", dir + "/b"])
        #expect(a.status == 0 && b.status == 0, "\(a.err) \(b.err)")
        let fa = FileManager.default.contents(atPath: dir + "/a/adapter_model.safetensors")
        #expect(fa != nil && fa == FileManager.default.contents(atPath: dir + "/b/adapter_model.safetensors"))
    }
}
