import Foundation
import Testing
import Formats
import Runtime
import Tensors
import TestSupport

/// Joint adapter bundles (LoRA + post-block steering in one folder): applying the bundle equals
/// applying its two parts (the same computation, so bit-identical), and malformed bundles are
/// refused by name without touching an existing output.
@Suite("Joint adapter bundle")
struct JointBundleTests {
    static func temporaryFolder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-joint-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func steering(_ d: Int) -> SteeringAdapterFile {
        SteeringAdapterFile(kind: "linear", rank: 2, baseModel: "tiny/base", source: "test", layers: [0, 2].map { l in
            .init(index: l, down: Tensor.randomNormal([d, 2], std: 0.2, seed: UInt64(l + 1)),
                  up: Tensor.randomNormal([d, 2], std: 0.2, seed: UInt64(l + 7)), bias: Tensor.randomNormal([d], std: 0.1, seed: 3))
        })
    }

    @Test func bundleEqualsItsParts() throws {
        let dir = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let bundle = dir + "/joint"
        try JointAdapterBundle.write(to: bundle, steering: Self.steering(base.config.hiddenSize)) {
            try FileManager.default.copyItem(atPath: Fixtures.path("tiny/lora"), toPath: $0)
        }
        #expect(JointAdapterBundle.isBundle(bundle))
        var joint = base
        try joint.addJointBundle(path: bundle)
        let parts = try base.adding(LoRAWeights.load(directory: Fixtures.path("tiny/lora")))
            .adding(SteeringAdapter.load(path: bundle + "/steering.safetensors"), name: "steering")
        let tokens = [0, 17, 250, 3, 99, 512, 7, 8]
        #expect(try joint.forward(tokens: tokens).logits == parts.forward(tokens: tokens).logits)
        #expect(joint.adapterParameterCount == parts.adapterParameterCount)

        // Existing output: refused without force, replaced with it.
        #expect(throws: FormatsError.self) {
            try JointAdapterBundle.write(to: bundle, steering: Self.steering(base.config.hiddenSize)) { _ in }
        }
        #expect(JointAdapterBundle.isBundle(bundle))
    }

    @Test func malformedBundlesAreRefused() throws {
        let dir = try Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func manifest(_ json: String) throws -> String {
            let b = dir + "/b-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: b, withIntermediateDirectories: true)
            try Data(json.utf8).write(to: URL(fileURLWithPath: b + "/joint.json"))
            return b
        }
        let cases = [
            (#"{"format": "other", "version": 1, "lora": "lora", "steering": "s.safetensors"}"#, "format"),
            (#"{"format": "steertool-joint", "version": 99, "lora": "lora", "steering": "s.safetensors"}"#, "version"),
            (#"{"format": "steertool-joint", "version": 1, "lora": "../elsewhere", "steering": "s.safetensors"}"#, "inside the bundle"),
            (#"{"format": "steertool-joint", "version": 1, "lora": "lora", "steering": "s.safetensors"}"#, "LoRA part"),
            ("not json", "JSON"),
        ]
        for (json, expected) in cases {
            let b = try manifest(json)
            do {
                _ = try JointAdapterBundle.read(b)
                Issue.record("accepted: \(json)")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
    }
}
