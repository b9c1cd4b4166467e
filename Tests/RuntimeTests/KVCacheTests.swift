import Testing
import Runtime
import Tensors
import TestSupport

@Suite("KV cache")
struct KVCacheTests {
    let tokens = [1, 7, 3, 44, 12, 9, 30, 5, 17, 2, 28]

    /// Incremental decoding recomputes nothing it did not cache, so its logits equal a full
    /// prefill's up to the summation order inside gemm (different m): 1e-5 relative.
    @Test func tokenByTokenEqualsPrefill() throws {
        BLAS.setThreadCount(1)
        let model = try SyntheticModel.model()
        let full = try model.forward(tokens: tokens)
        let cache = KVCache(config: model.config, capacity: 2)   // forces growth
        for (i, t) in tokens.enumerated() {
            let step = try model.forward(tokens: [t], cache: cache)
            let ref = full.logits.row(i)
            #expect(relativeError(step.logits.scalars, ref) <= 1e-5, "position \(i)")
        }
        #expect(cache.count == tokens.count)
    }

    /// A prompt chunk then single tokens (the generation pattern), with GQA and biases.
    @Test func chunkThenTokensEqualsPrefill() throws {
        BLAS.setThreadCount(1)
        let model = try SyntheticModel.model(SyntheticModel.config(bias: true))
        let full = try model.forward(tokens: tokens, options: ForwardOptions(blockOutputs: true))
        let cache = KVCache(config: model.config)
        let head = try model.forward(tokens: Array(tokens[0..<6]), cache: cache, options: ForwardOptions(blockOutputs: true))
        #expect(relativeError(head.logits.scalars, full.logits.rows(0..<6).scalars) <= 1e-5)
        let tail = try model.forward(tokens: Array(tokens[6...]), cache: cache, options: ForwardOptions(blockOutputs: true))
        #expect(relativeError(tail.logits.scalars, full.logits.rows(6..<tokens.count).scalars) <= 1e-5)
        for l in 0..<model.config.numHiddenLayers {
            #expect(relativeError(tail.blockOutputs[l].scalars, full.blockOutputs[l].rows(6..<tokens.count).scalars) <= 1e-5)
        }
    }

    @Test func lastPositionLogitsEqualLastRow() throws {
        let model = try SyntheticModel.model()
        let all = try model.forward(tokens: tokens)
        let last = try model.forward(tokens: tokens, options: ForwardOptions(logits: .lastPosition))
        #expect(last.logits.shape == [1, model.config.vocabSize])
        // sgemv vs sgemm row: same products, possibly different summation order.
        #expect(relativeError(last.logits.scalars, all.logits.row(tokens.count - 1)) <= 1e-6)
    }

    @Test func truncateRewindsPositions() throws {
        let model = try SyntheticModel.model()
        let cache = KVCache(config: model.config)
        _ = try model.forward(tokens: [1, 2, 3, 4], cache: cache)
        cache.truncate(to: 2)
        let again = try model.forward(tokens: [9, 10], cache: cache)
        let ref = try model.forward(tokens: [1, 2, 9, 10])
        #expect(relativeError(again.logits.scalars, ref.logits.rows(2..<4).scalars) <= 1e-5)
    }

    @Test func cacheOfAnotherModelIsRejected() throws {
        let model = try SyntheticModel.model()
        let other = KVCache(config: SyntheticModel.config(layers: 2))
        #expect(throws: RuntimeError.self) { try model.forward(tokens: [1], cache: other) }
    }
}
