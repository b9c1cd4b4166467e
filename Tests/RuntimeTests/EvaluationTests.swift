import Foundation
import Testing
import Runtime
import Tensors
import TestSupport

/// `TextEvaluator` and friends against references recorded by transformers
/// (fixtures/generate/extra/eval.py: the perplexity guide's sliding-window loop, and KL / top-1
/// agreement to the fine-tune computed in torch float64 on the same scored tokens).
@Suite("Evaluation vs transformers")
struct EvaluationTests {
    struct Reference: Decodable {
        struct Figures: Decodable {
            let nll: Double, perplexity: Double, tokens: Int, windows: [[Int]]
            let kl_to_reference: Double?, top1_agreement: Double?
        }
        struct Tasks: Decodable { let loglikelihoods: [[Double]], accuracy: Double, accuracy_norm: Double }
        struct Prefixed: Decodable { let prefix: [Int], base: [Figures] }
        let context: Int, stride: Int
        let models: [String: [Figures]]
        let tasks: [String: Tasks]
        let prefixed: Prefixed
    }

    static func reference() throws -> Reference {
        let data = try #require(FileManager.default.contents(atPath: Fixtures.path("eval/reference.json")), "missing eval/reference.json")
        return try JSONDecoder().decode(Reference.self, from: data)
    }

    static func sequences() throws -> [[Int]] { try TokenListFile.load(path: Fixtures.path("eval/tokens.json")) }

    /// The window plan is the guide's: same (begin, end, number of target tokens) per window.
    @Test func windowsMatchTheGuide() throws {
        let ref = try Self.reference()
        for (i, seq) in try Self.sequences().enumerated() {
            let plan = SlidingWindowPlan(count: seq.count, context: ref.context, stride: ref.stride)
            let expected = try #require(ref.models["base"])[i].windows
            #expect(plan.windows.count == expected.count)
            for (w, e) in zip(plan.windows, expected) {
                #expect(w.begin == e[0] && w.end == e[1])
                // The guide's trg_len counts the window's first token in the first window, which is
                // never a target after the label shift.
                #expect(w.end - w.scoredFrom == (w.begin == 0 ? e[2] - 1 : e[2]))
            }
            #expect(plan.scoredTokenCount == seq.count - 1)
            #expect(plan.scoredTokenCount == (try #require(ref.models["base"]))[i].tokens)
        }
    }

    /// Perplexity within 1e-4 relative of transformers (both f32 forward passes; NLL summed in
    /// double on both sides, so what remains is the forward pass's ~1e-6 relative logit error).
    /// KL to the fine-tune within 1e-3 relative (a difference of two close log-probabilities, so
    /// more sensitive to logit rounding); top-1 agreement within one token of the reference
    /// (a near-tie argmax may flip).
    @Test func perplexityKLAndAgreement() throws {
        BLAS.setThreadCount(1)
        let ref = try Self.reference()
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let finetuned = try LlamaModel.load(path: Fixtures.path("tiny/finetuned"))
        let evaluator = TextEvaluator(context: ref.context, stride: ref.stride)
        let seqs = try Self.sequences()
        for (i, seq) in seqs.enumerated() {
            let (m, r) = try evaluator.evaluate(variants: [base, finetuned], reference: finetuned, sequences: [seq])
            let expectedBase = try #require(ref.models["base"])[i]
            let expectedFT = try #require(ref.models["finetuned"])[i]
            #expect(abs(m[0].perplexity - expectedBase.perplexity) / expectedBase.perplexity <= 1e-4)
            #expect(abs(m[1].perplexity - expectedFT.perplexity) / expectedFT.perplexity <= 1e-4)
            #expect(m[0].tokens == expectedBase.tokens)
            let kl = try #require(m[0].klToReference), expectedKL = try #require(expectedBase.kl_to_reference)
            #expect(abs(kl - expectedKL) / expectedKL <= 1e-3, "KL \(kl) vs \(expectedKL)")
            let agree = try #require(m[0].top1Agreement), expectedAgree = try #require(expectedBase.top1_agreement)
            #expect(abs(agree - expectedAgree) * Double(m[0].tokens) <= 1.0 + 1e-9, "agreement \(agree) vs \(expectedAgree)")
            // A model against itself: KL 0 (up to rounding of identical inputs: exactly 0) and agreement 1.
            #expect(try #require(m[1].klToReference) == 0)
            #expect(try #require(m[1].top1Agreement) == 1)
            let reference = try #require(r)
            #expect(reference.nll == m[1].nll)
            // Recovered fraction: the fine-tune recovers all of its own gain, the base none.
            #expect(recoveredFraction(plainNLL: m[0].nll, modelNLL: m[1].nll, referenceNLL: reference.nll) == 1)
            #expect(recoveredFraction(plainNLL: m[0].nll, modelNLL: m[0].nll, referenceNLL: reference.nll) == 0)
        }
    }

    /// Windows behind a start token (what `eval --text` does for a tokenizer that adds BOS, as
    /// llama.cpp's perplexity tool does): perplexity within 1e-4 and KL within 1e-3 relative of
    /// transformers fed the same prefixed windows, the same tokens scored; and a measurably
    /// different figure from the plain windows, so the prefix is really fed.
    @Test func windowsBehindAPrefixMatchTransformers() throws {
        BLAS.setThreadCount(1)
        let ref = try Self.reference()
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let finetuned = try LlamaModel.load(path: Fixtures.path("tiny/finetuned"))
        let evaluator = TextEvaluator(context: ref.context, stride: ref.stride, windowPrefix: ref.prefixed.prefix)
        for (i, seq) in try Self.sequences().enumerated() {
            let (m, _) = try evaluator.evaluate(variants: [base], reference: finetuned, sequences: [seq])
            let expected = ref.prefixed.base[i], plain = try #require(ref.models["base"])[i]
            #expect(m[0].tokens == expected.tokens)
            #expect(abs(m[0].perplexity - expected.perplexity) / expected.perplexity <= 1e-4, "\(m[0].perplexity) vs \(expected.perplexity)")
            let kl = try #require(m[0].klToReference), expectedKL = try #require(expected.kl_to_reference)
            #expect(abs(kl - expectedKL) / expectedKL <= 1e-3, "KL \(kl) vs \(expectedKL)")
            #expect(abs(expected.perplexity - plain.perplexity) / plain.perplexity > 1e-4, "the prefix changes the reference figure")
        }
    }

    /// Multiple-choice log-likelihoods (harness procedure, tokenized by our tokenizer from the
    /// model's tokenizer.json) within 1e-4 relative of transformers' per choice (sums of ~10
    /// f32 log-probabilities), and accuracy / normalized accuracy equal to the reference's.
    @Test func multipleChoiceMatchesTransformers() throws {
        BLAS.setThreadCount(1)
        let ref = try Self.reference()
        let items = try TaskFile.load(path: Fixtures.path("eval/tasks.jsonl"))
        for (name, path) in [("base", "tiny/base"), ("finetuned", "tiny/finetuned")] {
            let model = try LlamaModel.load(path: Fixtures.path(path))
            let tokenizer = try Tokenizer.load(modelPath: Fixtures.path(path))
            let (score, lls) = try MultipleChoiceEvaluator().evaluate(
                model: model, items: items, emptyContextToken: model.config.eosTokenIds.first ?? 0,
                encode: { tokenizer.encode($0, addSpecialTokens: false) })
            let expected = try #require(ref.tasks[name])
            #expect(lls.count == expected.loglikelihoods.count)
            for (got, want) in zip(lls.joined(), expected.loglikelihoods.joined()) {
                #expect(abs(got - want) <= 1e-4 * max(1, abs(want)), "\(name): \(got) vs \(want)")
            }
            #expect(score.accuracy == expected.accuracy, "\(name) accuracy")
            #expect(score.accuracyNormalized == expected.accuracy_norm, "\(name) accuracy_norm")
        }
    }

    /// A reference with another vocabulary is refused before any forward pass.
    @Test func referenceWithAnotherVocabularyIsRefused() throws {
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let other = try SyntheticModel.model()
        #expect(other.config.vocabSize != base.config.vocabSize)
        #expect(throws: RuntimeError.self) {
            _ = try TextEvaluator(context: 8, stride: 4).evaluate(variants: [base], reference: other, sequences: [[1, 2, 3]])
        }
    }

    /// Malformed JSONL lines are named by their 1-based line number.
    @Test func malformedTaskLinesAreNamed() throws {
        let good = #"{"context": "a", "choices": ["b", "c"], "label": 1}"#
        let cases: [(String, String)] = [
            (good + "\n{not json}\n", "t.jsonl:2:"),
            (good + "\n\n" + #"{"context": "a", "choices": ["b"], "label": 0}"#, "t.jsonl:3:"),
            (#"{"context": "a", "choices": ["b", "c"], "label": 2}"#, "t.jsonl:1:"),
            (#"{"context": "a", "label": 0}"#, "t.jsonl:1: not a task item"),
            ("\n\n", "no task items"),
        ]
        for (text, expected) in cases {
            do {
                _ = try TaskFile.parse(text, source: "t.jsonl")
                Issue.record("accepted malformed tasks: \(text)")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
        let items = try TaskFile.parse(good + "\n" + good + "\n", source: "t.jsonl")
        #expect(items.count == 2 && items[0].label == 1)
    }

    /// Harness splitting: trailing context spaces move to the continuation, the continuation's
    /// ids are the whole string's ids after the context's.
    @Test func continuationSplit() throws {
        // A character-level "tokenizer" makes the split visible.
        let encode = { (s: String) -> [Int] in s.unicodeScalars.map { Int($0.value) } }
        let split = ContinuationSplit(context: "ab ", continuation: "cd", encode: encode)
        #expect(split.whole == encode("ab cd"))
        #expect(split.contextCount == 2)
        let prefixed = ContinuationSplit(context: "", continuation: "x", prefix: [0], encode: encode)
        #expect(prefixed.whole == [0, 120] && prefixed.contextCount == 1)
    }
}
