import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// `LlamaModel.streamsLayerPages` (each layer's mapped pages released once a pass is done with
/// it, for models larger than memory) changes no result: on the real SmolLM2 GGUF (Q4_1 matrices
/// read in place from the mapped file) the logits are bit for bit those of the unstreamed model,
/// and the steering gradients equal them (see the test for why not bit for bit under parallel suites).
@Suite("Streaming layer pages")
struct StreamingLayerPagesTests {
    static func smolLM2() throws -> LlamaModel {
        try #require(FileManager.default.fileExists(atPath: Fixtures.smolLM2GGUF), Comment(rawValue: Fixtures.smolLM2Missing))
        return try LlamaModel.load(path: Fixtures.smolLM2GGUF, storage: .native)
    }

    static let tokens = [1, 504, 3458, 282, 4649, 314, 2114, 30, 216, 1064, 5248, 28, 2114, 5493, 30, 198]

    @Test func forwardAndGradientsAreUnchanged() throws {
        BLAS.setThreadCount(1)
        let plain = try Self.smolLM2()
        var streamed = plain
        streamed.streamsLayerPages = true
        #expect(!plain.streamsLayerPages)
        let want = try plain.forward(tokens: Self.tokens).logits
        let got = try streamed.forward(tokens: Self.tokens).logits
        #expect(got.scalars == want.scalars)
        // Run twice: the second pass reads the released layers back.
        #expect(try streamed.forward(tokens: Self.tokens).logits.scalars == want.scalars)

        let d = plain.config.hiddenSize
        let adapter = SteeringAdapter(site: .blockOutput, activation: .silu, layers: [
            3: SteeringLayer(down: .randomNormal([d, 2], std: 0.05, seed: 1), up: .randomNormal([d, 2], std: 0.05, seed: 2),
                             bias: .randomNormal([d], std: 0.01, seed: 3)),
        ])
        func gradients(_ m: LlamaModel) throws -> SteeringGradients {
            try SteeringBackprop(model: m).lossAndGradients(sequences: [Self.tokens], objectives: [.crossEntropy], adapter: adapter)
        }
        let g0 = try gradients(plain), g1 = try gradients(streamed)
        // The backward's sgemm calls follow the process-wide BLAS thread count, which suites
        // running in parallel set (1 to 3): between the two runs it can change the summation
        // order, so the gradients are compared to 1e-6 relative (max|a − b| / max|b|), not bit
        // for bit; the streaming itself changes no value (alone, the two are identical).
        #expect(abs(g0.loss - g1.loss) <= 1e-6 * abs(g0.loss))
        let a = try #require(g0.layers[3]), b = try #require(g1.layers[3])
        for (x, y) in [(a.down, b.down), (a.up, b.up), (a.bias, b.bias)] {
            let x = try #require(x), y = try #require(y)
            #expect(maxAbsoluteDifferenceScaled(x.scalars, y.scalars) <= 1e-6)
        }
    }
}
