import Foundation
import Testing
import Formats
import Runtime
import Tensors
import TestSupport

/// The real Gemma-3 270M (Q4_K_M GGUF from `make gemma3`, matrices read in place) against
/// transformers loading the same file (dequantized to f32, eager attention):
/// fixtures/gemma3/real-reference.safetensors, recorded by fixtures/generate/extra/gemma3_real.py.
@Suite("Gemma-3 270M (real model)")
struct Gemma3RealModelTests {
    static let model: Result<LlamaModel, any Error> = Result { try LlamaModel.load(path: Fixtures.gemma3GGUF, storage: .native) }

    static func load() throws -> LlamaModel {
        try #require(FileManager.default.fileExists(atPath: Fixtures.gemma3GGUF), Comment(rawValue: Fixtures.gemma3Missing))
        return try model.get()
    }

    static func reference() throws -> SafetensorsFile { try SafetensorsFile(path: Fixtures.path("gemma3/real-reference.safetensors")) }

    /// The GGUF's config: 18 layers, every sixth full-attention, window 512, 4 heads over 1 KV
    /// head of width 256, the file's own block types held in place.
    @Test func loadsAsGemma3() throws {
        let model = try Self.load()
        #expect(model.architecture.name == "Gemma3ForCausalLM")
        #expect(model.config.numHiddenLayers == 18 && model.config.hiddenSize == 640 && model.config.headDim == 256)
        #expect(model.blocks.map(\.slidingWindow) == (0..<18).map { ($0 + 1) % 6 == 0 ? nil : 512 })
        #expect(model.weightStorage == .native)
        let types = Set(model.weights.matrices.compactMap { m -> String? in if case .quantized(let g) = m { g.type.rawValue } else { nil } })
        #expect(types == ["Q5_0", "Q8_0", "Q4_K", "Q6_K"], "\(types)")
    }

    /// The tokenizer read from the GGUF (SentencePiece, byte fallback, BOS added) encodes the text
    /// as transformers' tokenizer does.
    @Test func tokenizerMatchesTransformers() throws {
        _ = try Self.load()
        let tokenizer = try Tokenizer.load(modelPath: Fixtures.gemma3GGUF)
        let text = try String(contentsOfFile: Fixtures.path("gemma3/real-text.txt"), encoding: .utf8)
        let want = try Self.reference().tensor(named: "text.tokens").scalars.map { Int($0) }
        #expect(tokenizer.encode(text) == want)
    }

    /// Calibration text is cut as Gemma is run: every sequence starts with BOS, then the text's
    /// tokens in order, each exactly once, `sequenceLength` tokens in all (the last shorter).
    @Test func calibrationSequencesStartWithBOS() throws {
        _ = try Self.load()
        let tokenizer = try Tokenizer.load(modelPath: Fixtures.gemma3GGUF)
        let text = try String(contentsOfFile: Fixtures.path("gemma3/real-text.txt"), encoding: .utf8)
        let sequences = try CalibrationSequences.cut(text, source: "real-text.txt", tokenizer: tokenizer, sequenceLength: 128)
        let bos = try #require(tokenizer.bosTokenID)
        #expect(tokenizer.prefixTokenIDs == [bos])
        #expect(sequences.allSatisfy { $0.first == bos && $0.count <= 128 })
        #expect(sequences.dropLast().allSatisfy { $0.count == 128 })
        #expect(Array(sequences.map { $0.dropFirst() }.joined()) == tokenizer.encode(text, addSpecialTokens: false))
        #expect(throws: RuntimeError.self) { try CalibrationSequences.cut(text, source: "t", tokenizer: tokenizer, sequenceLength: 2) }
    }

    /// 560 tokens (longer than the 512-token window): the argmax at every position agrees at ≥
    /// 99.5% of positions (the acceptance; any flip is a near tie between the dequantized-f32
    /// reference and the in-place blocks summed in another order), and the last two positions'
    /// logits are within 1e-4 relative (max|a − b| / max|b|).
    @Test func longTextMatchesTransformers() throws {
        let model = try Self.load()
        BLAS.setThreadCount(2)
        defer { BLAS.setThreadCount(1) }
        let ref = try Self.reference()
        let tokens = try ref.tensor(named: "text.tokens").scalars.map { Int($0) }
        let argmax = try ref.tensor(named: "text.argmax").scalars.map { Int($0) }
        let logits = try model.forward(tokens: tokens).logits
        let ours = (0..<tokens.count).map { t in logits.row(t).withUnsafeBufferPointer { Sampler.argmax($0) } }
        let agree = zip(ours, argmax).filter { $0 == $1 }.count
        #expect(Double(agree) >= 0.995 * Double(tokens.count), "argmax agrees at \(agree) of \(tokens.count)")
        let last = try ref.tensor(named: "text.logits")
        let e = maxAbsoluteDifferenceScaled(Array(logits.rows((tokens.count - 2)..<tokens.count).scalars), last.scalars)
        #expect(e <= 1e-4, "last positions' logits: \(e)")
        print("Gemma-3 270M, 560 tokens: argmax agrees at \(agree) of \(tokens.count), last logits relative error \(e)")
    }

    /// The GGUF ships no chat template: Gemma-3's is the fallback, and one user turn renders and
    /// encodes as transformers' tokenizer encodes the same text (BOS first, turn markers special).
    @Test func chatTemplateFallbackEncodesTheReferencePrompt() throws {
        _ = try Self.load()
        let tokenizer = try Tokenizer.load(modelPath: Fixtures.gemma3GGUF)
        #expect(tokenizer.chatTemplateSource == nil)
        #expect(throws: TokenizerError.self) { try tokenizer.chatTemplate() }
        let (template, fallback) = try tokenizer.chatTemplate(architecture: "Gemma3ForCausalLM")
        #expect(fallback && template.style == .gemma)
        let ids = tokenizer.encodeChat([ChatMessage(role: "user", content: "What is the capital of France?")],
                                       addGenerationPrompt: true, template: template)
        #expect(ids == (try Self.reference().tensor(named: "chat.prompt").scalars.map { Int($0) }))
        #expect(tokenizer.endOfTurnID(template) == 106)
        // A system message becomes the first paragraph of the first user turn; the assistant is "model".
        #expect(template.render([ChatMessage(role: "system", content: " Be brief. "), ChatMessage(role: "user", content: "Hi"),
                                 ChatMessage(role: "assistant", content: "Hello")], addGenerationPrompt: false)
                == "<start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n")
    }

    /// Greedy decoding of the chat prompt through the KV cache gives transformers' 32 tokens.
    @Test func greedyChatContinuationMatchesTransformers() throws {
        let model = try Self.load()
        let ref = try Self.reference()
        let prompt = try ref.tensor(named: "chat.prompt").scalars.map { Int($0) }
        let want = try ref.tensor(named: "chat.greedy").scalars.map { Int($0) }
        let cache = KVCache(config: model.config)
        var logits = try model.forward(tokens: prompt, cache: cache, options: ForwardOptions(logits: .lastPosition)).logits
        var got: [Int] = []
        for _ in 0..<want.count {
            let next = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
            got.append(next)
            logits = try model.forward(tokens: [next], cache: cache, options: ForwardOptions(logits: .lastPosition)).logits
        }
        #expect(got == want)
    }
}
