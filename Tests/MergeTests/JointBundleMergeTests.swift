import Foundation
import Testing
import Formats
import Merge
import Runtime
import Tensors
import TestSupport

/// `MergeFiles.mergeJointBundle`: the LoRA part folded into the weights (PEFT semantics, tested
/// against PEFT elsewhere) plus the kept steering file reproduce the bundle applied unmerged.
/// Tolerance 1e-4 of the logits' range: merged f32 weights vs the unmerged low-rank path differ
/// by summation order only.
@Suite("Joint bundle merge")
struct JointBundleMergeTests {
    @Test func foldedLoRAPlusKeptSteeringEqualsTheBundle() throws {
        BLAS.setThreadCount(1)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-jointmerge-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let d = base.config.hiddenSize
        let steering = SteeringAdapterFile(kind: "linear", rank: 3, baseModel: "tiny/base", source: "test", layers: [1, 3].map { l in
            .init(index: l, down: Tensor.randomNormal([d, 3], std: 0.2, seed: UInt64(l + 11)),
                  up: Tensor.randomNormal([d, 3], std: 0.2, seed: UInt64(l + 21)))
        })
        let bundle = dir + "/joint", output = dir + "/merged"
        try JointAdapterBundle.write(to: bundle, steering: steering) {
            try FileManager.default.copyItem(atPath: Fixtures.path("tiny/lora"), toPath: $0)
        }
        let (_, kept) = try MergeFiles.mergeJointBundle(base: Fixtures.path("tiny/base"), bundle: bundle, output: output)
        #expect(kept == output + "/steering.safetensors")
        let merged = try LlamaModel.load(path: output).adding(SteeringAdapter.load(path: kept), name: "kept")
        var unmerged = base
        try unmerged.addJointBundle(path: bundle)
        let tokens = [0, 5, 600, 42, 42, 901, 13, 2, 77, 300]
        let want = try unmerged.forward(tokens: tokens).logits, got = try merged.forward(tokens: tokens).logits
        #expect(maxAbsoluteDifferenceScaled(got.scalars, want.scalars) <= 1e-4)
        #expect(maxAbsoluteDifferenceScaled(try base.forward(tokens: tokens).logits.scalars, want.scalars) > 1e-2)
        // Nothing is overwritten without force.
        #expect(throws: (any Error).self) {
            _ = try MergeFiles.mergeJointBundle(base: Fixtures.path("tiny/base"), bundle: bundle, output: output)
        }
    }
}
