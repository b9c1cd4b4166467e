import Testing
import Runtime
import Tensors

@Suite("Sampler and generation")
struct SamplerTests {
    let logits: [Float] = [0.1, 2.5, -1, 2.4, 0.3, 2.5]

    @Test func greedyPicksFirstMaximum() {
        var s = Sampler(.greedy)
        #expect(logits.withUnsafeBufferPointer { s.sample($0) } == 1)
    }

    @Test func topKOneIsGreedy() {
        var s = Sampler(SamplingParameters(temperature: 5, topK: 1, seed: 42))
        for _ in 0..<20 { #expect(logits.withUnsafeBufferPointer { s.sample($0) } == 1) }
    }

    @Test func topKLimitsSupport() {
        var s = Sampler(SamplingParameters(temperature: 10, topK: 3, seed: 7))
        var seen = Set<Int>()
        for _ in 0..<400 { seen.insert(logits.withUnsafeBufferPointer { s.sample($0) }) }
        #expect(seen == [1, 3, 5])
    }

    /// Probabilities at T=1: tokens 1 and 5 ≈ 0.32 each, token 3 ≈ 0.29; top-p 0.5 keeps
    /// the two tied leaders only (cumulative ≥ 0.5 after the second).
    @Test func topPKeepsTheNucleus() {
        var s = Sampler(SamplingParameters(temperature: 1, topP: 0.5, seed: 3))
        var seen = Set<Int>()
        for _ in 0..<400 { seen.insert(logits.withUnsafeBufferPointer { s.sample($0) }) }
        #expect(seen == [1, 5])
    }

    @Test func seedRepeats() {
        func draw(_ seed: UInt64) -> [Int] {
            var s = Sampler(SamplingParameters(temperature: 1.5, seed: seed))
            return (0..<50).map { _ in logits.withUnsafeBufferPointer { s.sample($0) } }
        }
        #expect(draw(9) == draw(9))
        #expect(draw(9) != draw(10))
    }

    @Test func invalidParametersAreRejected() {
        #expect(throws: RuntimeError.self) { try SamplingParameters(temperature: -1).validate() }
        #expect(throws: RuntimeError.self) { try SamplingParameters(topP: 0).validate() }
        #expect(throws: RuntimeError.self) { try SamplingParameters(topK: -2).validate() }
    }

    /// Greedy generation through the KV cache picks, at each step, the argmax of a full
    /// prefill over prompt + tokens so far; stops at max tokens or a stop token.
    @Test func greedyGenerationMatchesRepeatedPrefill() throws {
        let model = try SyntheticModel.model()
        let prompt = [1, 4, 9]
        var streamed: [Int] = []
        let r = try model.generate(prompt: prompt, parameters: GenerationParameters(maxTokens: 6)) {
            streamed.append($0); return true
        }
        #expect(streamed == r.tokens)
        var seq = prompt
        for t in r.tokens {
            let logits = try model.forward(tokens: seq, options: .init(logits: .lastPosition)).logits
            #expect(logits.withUnsafeBufferPointer { Sampler.argmax($0) } == t)
            seq.append(t)
        }
        if r.stopReason == .maxTokens { #expect(r.tokens.count == 6) }
        let stopAt = r.tokens[1]
        let stopped = try model.generate(prompt: prompt, parameters: GenerationParameters(maxTokens: 6, stopTokens: [stopAt]))
        #expect(stopped.stopReason == .stopToken)
        #expect(stopped.tokens.last == stopAt)
        #expect(stopped.tokens.count <= 2)
    }
}
