import Foundation
import Testing
import Formats
import Runtime
import Tensors
import TestSupport

/// The real model: SmolLM2-135M-Instruct, Q4_1 GGUF, dequantized to f32 at load. The references
/// (fixtures/smollm2/) were recorded by transformers in f32 on the same dequantized weights.
@Suite("SmolLM2-135M-Instruct (real model)")
struct SmolLM2Tests {
    /// Loaded once for the suite (the GGUF is ~98 MB; dequantizing takes a moment).
    static let model: Result<LlamaModel, any Error> = Result {
        try LlamaModel.load(path: Fixtures.smolLM2GGUF)
    }

    static func load() throws -> LlamaModel {
        try #require(FileManager.default.fileExists(atPath: Fixtures.smolLM2GGUF), Comment(rawValue: Fixtures.smolLM2Missing))
        return try model.get()
    }

    /// Logits and the recorded block outputs (all 30 for sequence 0) vs transformers within max|Δ| ≤ 1e-4 · max|ref|: same
    /// dequantized weights and formulas in f32, so only summation order differs; measured
    /// ≈ 3e-6 over 30 layers, so 1e-4 keeps ample headroom (the issue asks for 1e-3) while a
    /// dequantization or layout slip shows as O(1).
    @Test func forwardMatchesTransformers() throws {
        BLAS.setThreadCount(1)
        let model = try Self.load()
        let ref = try SafetensorsFile(path: Fixtures.path("smollm2/reference.safetensors"))
        for i in 0..<2 {
            let tokens = try ref.tensor(named: "tokens.\(i)").scalars.map { Int($0) }
            let r = try model.forward(tokens: tokens, options: ForwardOptions(blockOutputs: true))
            let logits: Tensor, mine: Tensor
            if ref.info("logits.\(i)") != nil {
                logits = try ref.tensor(named: "logits.\(i)"); mine = r.logits
            } else {
                logits = try ref.tensor(named: "logits_tail.\(i)")
                mine = r.logits.rows((tokens.count - logits.rows)..<tokens.count)
            }
            let e = maxAbsoluteDifferenceScaled(mine.scalars, logits.scalars)
            #expect(e <= 1e-4, "sequence \(i): logits error \(e)")
            // Sequence 0 has every block output; sequence 1 a spread of layers (size budget).
            let layers = (0..<model.config.numHiddenLayers).filter { ref.info("hidden.\(i).\($0)") != nil }
            #expect(layers.count == (i == 0 ? model.config.numHiddenLayers : 5))
            for l in layers {
                let h = try ref.tensor(named: "hidden.\(i).\(l)")
                let eh = maxAbsoluteDifferenceScaled(r.blockOutputs[l].scalars, h.scalars)
                #expect(eh <= 1e-4, "sequence \(i): hidden \(l) error \(eh)")
            }
        }
    }

    /// Greedy decoding through the KV cache reproduces transformers' `generate` (16 new tokens,
    /// no EOS stop) token for token.
    @Test func greedyContinuationMatchesTransformers() throws {
        let model = try Self.load()
        let data = try #require(FileManager.default.contents(atPath: Fixtures.path("smollm2/greedy.json")))
        let greedy = try JSONDecoder().decode(Greedy.self, from: data)
        let r = try model.generate(prompt: greedy.prompt_ids, parameters: GenerationParameters(maxTokens: greedy.max_new_tokens))
        #expect(r.tokens == greedy.generated_ids)
    }

    /// SmolLM2 + a PEFT LoRA (r 4, alpha 8, all seven projections, stored bf16) applied unmerged
    /// vs PEFT's forward: 1e-4, f32 summation order only as above.
    @Test func loraUnmergedMatchesPEFT() throws {
        let base = try Self.load()
        let model = try base.adding(LoRAWeights.load(directory: Fixtures.path("smollm2/lora")))
        let ref = try SafetensorsFile(path: Fixtures.path("smollm2/lora-reference.safetensors"))
        let tokens = try ref.tensor(named: "tokens.0").scalars.map { Int($0) }
        let want = try ref.tensor(named: "logits_tail.0")   // the last positions (size budget)
        let logits = try model.forward(tokens: tokens).logits.rows((tokens.count - want.rows)..<tokens.count)
        let e = maxAbsoluteDifferenceScaled(logits.scalars, want.scalars)
        #expect(e <= 1e-4, "logits error \(e)")
    }

    /// `steertool generate --chat` with the GGUF's ChatML template and tokenizer answers the
    /// acceptance question greedily, and stops at <|im_end|>.
    /// With `--weights q8_0` the matrices are held in Q8_0 (requantized from Q4_1) and the same
    /// answer comes back.
    @Test(arguments: ["f32", "q8_0"])
    func generateAnswersParis(_ weights: String) throws {
        try #require(FileManager.default.fileExists(atPath: Fixtures.smolLM2GGUF), Comment(rawValue: Fixtures.smolLM2Missing))
        let r = try SteerToolBinary.run([
            "generate", "--model", Fixtures.smolLM2GGUF, "--prompt", "What is the capital of France?", "--chat",
            "--max-tokens", "30", "--weights", weights,
        ])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.contains("Paris"), "answer: \(r.out)")
        #expect(r.err.contains("stop_token"))
    }

    /// `--no-thinking` is Qwen3's switch: refused for SmolLM2's ChatML template and without --chat.
    @Test func noThinkingNeedsQwen3Template() throws {
        try #require(FileManager.default.fileExists(atPath: Fixtures.smolLM2GGUF), Comment(rawValue: Fixtures.smolLM2Missing))
        let base = ["generate", "--model", Fixtures.smolLM2GGUF, "--prompt", "Hi", "--max-tokens", "1", "--no-thinking"]
        let chatML = try SteerToolBinary.run(base + ["--chat"])
        #expect(chatML.status != 0 && chatML.err.contains("(ChatML) has no thinking switch"), "\(chatML.err)")
        let plain = try SteerToolBinary.run(base)
        #expect(plain.status != 0 && plain.err.contains("--no-thinking applies to --chat prompts"), "\(plain.err)")
    }

    private struct Greedy: Decodable {
        var prompt_ids: [Int]
        var generated_ids: [Int]
        var max_new_tokens: Int
    }
}
