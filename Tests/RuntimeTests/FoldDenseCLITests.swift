import Foundation
import Testing
import Formats
import Runtime
import Tensors
import TestSupport

/// `steertool fold --as dense` end to end: a post-MLP linear adapter (Δ at mlpOutput = U·Dᵀ·X)
/// folds exactly into ΔW_down = U·Dᵀ·W_down, so the written model must reproduce the base with the
/// adapter applied unmerged. Tolerance 1e-4 of the logits' range: the folded weights are a
/// rank-r product in f32 and the two runs sum in different orders; a wrong fold (other
/// projection, transposed factor, lost scale) shows at 1e-2 or more.
@Suite("CLI fold --as dense")
struct FoldDenseCLITests {
    @Test func postMLPAdapterFoldsIntoAnEquivalentModel() throws {
        BLAS.setThreadCount(1)
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let d = base.config.hiddenSize, r = 2
        let layers = [1, 3].map { l in
            SteeringAdapterFile.Layer(index: l, down: Tensor.randomNormal([d, r], std: 0.3, seed: UInt64(10 + l)),
                                      up: Tensor.randomNormal([d, r], std: 0.3, seed: UInt64(20 + l)))
        }
        let file = SteeringAdapterFile(site: "mlp_output", kind: "linear", rank: r, baseModel: "tiny/base",
                                       source: "test", layers: layers)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-fold-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let adapterPath = dir + "/post-mlp.safetensors", output = dir + "/folded"
        try file.write(to: adapterPath)
        let calib = try #require(try TokenListFile.load(path: Fixtures.path("eval/tokens.json")).first)
        let chunks = stride(from: 0, to: calib.count - 64, by: 64).map { Array(calib[$0..<($0 + 64)]) }
        let calibPath = dir + "/calib.json"
        try JSONEncoder().encode(chunks).write(to: URL(fileURLWithPath: calibPath))

        let run = try SteerToolBinary.run(["fold", "--base", Fixtures.path("tiny/base"), "--adapter", adapterPath,
                                           "--calib", calibPath, "--as", "dense", "--output", output])
        #expect(run.status == 0, "\(run.err)")
        let folded = try LlamaModel.load(path: output)
        let steered = try base.adding(SteeringAdapter.load(path: adapterPath), name: "post-mlp")
        let tokens = Array(calib.prefix(48))
        let want = try steered.forward(tokens: tokens).logits
        let got = try folded.forward(tokens: tokens).logits
        let plain = try base.forward(tokens: tokens).logits
        #expect(maxAbsoluteDifferenceScaled(got.scalars, want.scalars) <= 1e-4)
        // The adapter does change the model (so the comparison above is not vacuous).
        #expect(maxAbsoluteDifferenceScaled(plain.scalars, want.scalars) > 1e-2)
        // An existing output is not overwritten without --force.
        let again = try SteerToolBinary.run(["fold", "--base", Fixtures.path("tiny/base"), "--adapter", adapterPath,
                                             "--calib", calibPath, "--as", "dense", "--output", output])
        #expect(again.status != 0)
    }
}
