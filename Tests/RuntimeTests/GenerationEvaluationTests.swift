import Foundation
import Testing
import Runtime
import Tensors
import TestSupport

/// Generation-scored tasks against transformers (fixtures/generate/extra/eval_generation.py:
/// greedy `generate` in float32, the text cut at its first newline, and the same normalisation
/// written independently in Python): per item the generated ids, the text and whether it
/// matches; per model the accuracy. Greedy ids must be equal (the tiny and SmolLM2 forward passes
/// agree with transformers to ~1e-5 relative, far below these continuations' top-2 margins).
@Suite("Generation-scored evaluation vs transformers")
struct GenerationEvaluationTests {
    struct Reference: Decodable {
        struct Output: Decodable { let ids: [Int], text: String, normalised: String, correct: Bool }
        struct Model: Decodable { let outputs: [Output], correct: Int, items: Int, accuracy: Double }
        struct Case: Decodable { let output: String, answer: String, match: Bool }
        let default_max_tokens: Int
        let models: [String: Model]
        let normalisation_cases: [Case]
    }

    static func reference() throws -> Reference {
        let data = try #require(FileManager.default.contents(atPath: Fixtures.path("eval-generation/reference.json")),
                                "missing eval-generation/reference.json")
        return try JSONDecoder().decode(Reference.self, from: data)
    }

    static func generationItems(_ relative: String) throws -> [GenerationItem] {
        guard case .generation(let items) = try TaskFile.loadTasks(path: Fixtures.path(relative)) else {
            Issue.record("\(relative) is not generation-scored"); return []
        }
        return items
    }

    static func check(_ got: (score: GenerationScore, outcomes: [GenerationOutcome]), _ want: Reference.Model, _ name: String) {
        #expect(got.outcomes.count == want.outputs.count)
        for (i, (g, w)) in zip(got.outcomes, want.outputs).enumerated() {
            #expect(g.tokens == w.ids, "\(name) item \(i): ids")
            #expect(g.text == w.text, "\(name) item \(i): text")
            #expect(AnswerNormalization.normalize(g.text) == w.normalised, "\(name) item \(i): normalised")
            #expect(g.correct == w.correct, "\(name) item \(i): correct")
        }
        #expect(got.score.correct == want.correct && got.score.items == want.items, "\(name)")
        #expect(got.score.accuracy == want.accuracy, "\(name) accuracy")
    }

    /// tiny/base and tiny/finetuned on the corpus-B items (plain prompts with BOS, EOS id 0).
    @Test func tinyModelsMatchTransformers() throws {
        BLAS.setThreadCount(1)
        let ref = try Self.reference()
        let items = try Self.generationItems("eval-generation/tiny.jsonl")
        #expect(items.contains { $0.maxTokens == 6 } && items.contains { $0.maxTokens == nil })
        for (name, path) in [("base", "tiny/base"), ("finetuned", "tiny/finetuned")] {
            let model = try LlamaModel.load(path: Fixtures.path(path))
            let tokenizer = try Tokenizer.load(modelPath: Fixtures.path(path))
            let got = try GenerationEvaluator(defaultMaxTokens: ref.default_max_tokens).evaluate(
                model: model, items: items, tokenizer: tokenizer, stopTokens: Set(model.config.eosTokenIds),
                encodePrompt: { tokenizer.encode($0, addSpecialTokens: true) })
            Self.check(got, try #require(ref.models[name]), name)
        }
        // The fixture separates the variants (else equal accuracies would prove little).
        #expect(try #require(ref.models["base"]).accuracy != (try #require(ref.models["finetuned"])).accuracy)
    }

    /// SmolLM2-135M-Instruct (Q4_1 dequantized to f32, as the generator's weights) with each
    /// prompt as one user turn of its chat template; stops at its EOS `<|im_end|>`.
    @Test func smolLM2ChatMatchesTransformers() throws {
        try #require(FileManager.default.fileExists(atPath: Fixtures.smolLM2GGUF), Comment(rawValue: Fixtures.smolLM2Missing))
        BLAS.setThreadCount(1)
        let ref = try Self.reference()
        let items = try Self.generationItems("eval-generation/smollm2.jsonl")
        let model = try LlamaModel.load(path: Fixtures.smolLM2GGUF)
        let tokenizer = try Tokenizer.load(modelPath: Fixtures.smolLM2GGUF)
        let got = try GenerationEvaluator(defaultMaxTokens: ref.default_max_tokens).evaluate(
            model: model, items: items, tokenizer: tokenizer, stopTokens: Set(model.config.eosTokenIds),
            encodePrompt: { try tokenizer.encodeChat([ChatMessage(role: "user", content: $0)], addGenerationPrompt: true) })
        Self.check(got, try #require(ref.models["smollm2"]), "smollm2")
    }

    /// The normalisation agrees with the generator's independent Python version on hand-picked
    /// strings (numbers, case, trailing periods, whitespace, newlines, non-ASCII letters).
    @Test func normalisationMatchesTheGenerator() throws {
        let ref = try Self.reference()
        #expect(ref.normalisation_cases.count >= 10)
        for c in ref.normalisation_cases {
            #expect(AnswerNormalization.matches(output: c.output, answer: c.answer) == c.match, "\(c.output) vs \(c.answer)")
        }
        #expect(ref.normalisation_cases.contains { $0.match } && ref.normalisation_cases.contains { !$0.match })
    }

    /// Hostile lines are refused with the file and 1-based line number.
    @Test func malformedGenerationLinesAreNamed() throws {
        let good = #"{"prompt": "2+2=", "answer": "4"}"#
        let mc = #"{"context": "a", "choices": ["b", "c"], "label": 1}"#
        let cases: [(String, String)] = [
            (good + "\n" + mc, "t.jsonl:2: a multiple-choice item, but line 1 is generation"),
            (mc + "\n\n" + good, "t.jsonl:3: a generation item, but line 1 is multiple-choice"),
            (#"{"prompt": "a", "answer": "b", "label": 0}"#, "t.jsonl:1: mixes multiple-choice keys"),
            (#"{"prompt": "a"}"#, "t.jsonl:1: not a generation task item {\"prompt\", \"answer\"}: missing key 'answer'"),
            (#"{"answer": "a"}"#, "t.jsonl:1: not a generation task item"),
            (good + "\n" + #"{"prompt": 3, "answer": "b"}"#, "t.jsonl:2: not a generation task item {\"prompt\", \"answer\"}: wrong type at 'prompt'"),
            (#"{"prompt": "a", "answer": 4}"#, "t.jsonl:1: not a generation task item"),
            (#"{"prompt": "a", "answer": null}"#, "t.jsonl:1: not a generation task item"),
            (#"{"prompt": "a", "answer": "b", "max_tokens": 0}"#, "t.jsonl:1: max_tokens 0 outside 1...4096"),
            (#"{"prompt": "a", "answer": "b", "max_tokens": -5}"#, "t.jsonl:1: max_tokens -5 outside"),
            (#"{"prompt": "a", "answer": "b", "max_tokens": 100000}"#, "t.jsonl:1: max_tokens 100000 outside"),
            (#"{"prompt": "a", "answer": "b", "max_tokens": 2.5}"#, "t.jsonl:1: not a generation task item"),
            (#"{"prompt": "a", "completion": " b"}"#, "t.jsonl:1: a training line"),
            (#"{"text": "a"}"#, "t.jsonl:1: not a task item: expected"),
            (good + "\n[1, 2]", "t.jsonl:2: not a task item (a JSON object per line)"),
            (good + "\n\"prompt\"", "t.jsonl:2: not a task item (a JSON object per line)"),
            (good + "\n{\"prompt\": \"a\", \"answer\": \"b\"", "t.jsonl:2: not a task item (a JSON object per line): invalid JSON"),
            (" \n\t\n", "t.jsonl: no task items"),
        ]
        for (text, expected) in cases {
            do {
                _ = try TaskFile.parseTasks(text, source: "t.jsonl")
                Issue.record("accepted malformed tasks: \(text)")
            } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
        // A multiple-choice reader refuses a generation file by name.
        #expect(throws: RuntimeError.self) { _ = try TaskFile.parse(good, source: "t.jsonl") }
        let tasks = try TaskFile.parseTasks(good + "\n" + #"{"answer": "x", "prompt": "y", "max_tokens": 3, "note": "extra keys are ignored"}"#, source: "t.jsonl")
        #expect(tasks == .generation([GenerationItem(prompt: "2+2=", answer: "4"), GenerationItem(prompt: "y", answer: "x", maxTokens: 3)]))
    }

    /// The committed ListOps splits (fixtures/generate/listops.py): val and test parse as
    /// generation-scored tasks with one-digit answers and the stated prompt template; train lines
    /// are {"prompt", "completion": " <digit>"} (refused as eval tasks, by name).
    @Test func committedListOpsSplitsParse() throws {
        for (split, size) in [("val", 200), ("test", 500)] {
            let items = try Self.generationItems("listops/\(split).jsonl")
            #expect(items.count == size, "\(split)")
            for item in items {
                #expect(item.answer.count == 1 && item.answer.first?.isASCII == true && item.answer.first?.isNumber == true)
                #expect(item.prompt.hasPrefix("Evaluate: [") && item.prompt.hasSuffix(" ]\nAnswer:"))
                #expect(item.maxTokens == nil)
                let expression = item.prompt.dropFirst("Evaluate: ".count).dropLast("\nAnswer:".count)
                #expect(expression.count <= 100)
            }
            #expect(Set(items.map(\.answer)).count == 10, "\(split): every digit occurs")
        }
        struct TrainLine: Decodable { let prompt: String, completion: String }
        let text = try String(contentsOfFile: Fixtures.path("listops/train.jsonl"), encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 4000)
        for line in lines {
            let row = try JSONDecoder().decode(TrainLine.self, from: Data(line.utf8))
            #expect(row.completion.count == 2 && row.completion.hasPrefix(" ") && row.completion.last?.isNumber == true)
            #expect(row.prompt.hasPrefix("Evaluate: [") && row.prompt.hasSuffix(" ]\nAnswer:"))
        }
        #expect(throws: RuntimeError.self) { _ = try TaskFile.loadTasks(path: Fixtures.path("listops/train.jsonl")) }
    }
}

/// `steertool eval --tasks` with generation-scored items, end to end.
@Suite("CLI eval generation-scored tasks")
struct EvalGenerationCLITests {
    /// Per-variant accuracy in `--json` equals transformers' (base and base + PEFT LoRA
    /// unmerged), with each item's correctness; the stated normalisation is in the report.
    @Test func accuraciesPerVariantMatchTransformers() throws {
        let ref = try GenerationEvaluationTests.reference()
        let r = try SteerToolBinary.run(["eval", "--model", Fixtures.path("tiny/base"), "--adapter", Fixtures.path("tiny/lora"),
                                         "--tasks", Fixtures.path("eval-generation/tiny.jsonl"),
                                         "--max-tokens", "\(ref.default_max_tokens)", "--json"])
        #expect(r.status == 0, "\(r.err)")
        struct Report: Decodable {
            struct Output: Decodable { let correct: Bool, text: String }
            struct Variant: Decodable { let name: String, accuracy: Double, items: Int, outputs: [Output] }
            struct Tasks: Decodable { let kind: String, normalization: String }
            let variants: [Variant], tasks: Tasks
        }
        let report = try JSONDecoder().decode(Report.self, from: Data(r.out.utf8))
        #expect(report.tasks.kind == "generation" && report.tasks.normalization == AnswerNormalization.description)
        #expect(report.variants.count == 2)
        for (variant, name) in zip(report.variants, ["base", "base+lora"]) {
            let want = try #require(ref.models[name])
            #expect(variant.accuracy == want.accuracy, "\(name)")
            #expect(variant.outputs.map(\.correct) == want.outputs.map(\.correct), "\(name)")
            #expect(variant.outputs.map(\.text) == want.outputs.map(\.text), "\(name)")
        }
    }

    /// A mixed file fails naming the line; --chat on a model without a template, and --chat on
    /// multiple-choice tasks, fail with a one-line reason.
    @Test func refusals() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("gen-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let mixed = dir.appendingPathComponent("mixed.jsonl").path
        try (#"{"prompt": "a", "answer": "b"}"# + "\n" + #"{"context": "a", "choices": ["b", "c"], "label": 0}"# + "\n")
            .write(toFile: mixed, atomically: true, encoding: .utf8)
        let m = try SteerToolBinary.run(["eval", "--model", Fixtures.path("tiny/base"), "--tasks", mixed])
        #expect(m.status != 0 && m.err.contains("mixed.jsonl:2: a multiple-choice item, but line 1 is generation"), "\(m.err)")
        let c = try SteerToolBinary.run(["eval", "--model", Fixtures.path("tiny/base"), "--tasks", Fixtures.path("eval-generation/tiny.jsonl"), "--chat"])
        #expect(c.status != 0 && c.err.contains("chat template"), "\(c.err)")
        let mc = try SteerToolBinary.run(["eval", "--model", Fixtures.path("tiny/base"), "--tasks", Fixtures.path("eval/tasks.jsonl"), "--chat"])
        #expect(mc.status != 0 && mc.err.contains("apply to generation-scored tasks"), "\(mc.err)")
        let t = try SteerToolBinary.run(["eval", "--model", Fixtures.path("tiny/base"), "--tokens", Fixtures.path("eval/tokens.json"), "--max-tokens", "4"])
        #expect(t.status != 0 && t.err.contains("apply to generation-scored --tasks"), "\(t.err)")
    }
}
