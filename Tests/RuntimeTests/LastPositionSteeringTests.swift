import Formats
import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// Adapters that shift the last prompt token only (`SteeringPositions.last`) against
/// transformers + torch with a hook masked to that row (fixtures/generate/extra/train_positions.py):
/// gradients, a training run step by step, greedy generation; and the passes that have no prompt
/// refusing them.
@Suite struct LastPositionSteeringTests {
    struct Meta: Decodable { let tokens: [[Int]]; let targets: [[Int]]; let prompt_lengths: [Int]; let rank: Int }
    struct Generation: Decodable {
        let prompt_ids: [Int]; let scale: Float; let last: [Int]; let all: [Int]; let base: [Int]; let last_first_logits: [Float]
    }

    static func reference() throws -> (SafetensorsFile, Meta) {
        let file = try SafetensorsFile(path: Fixtures.path("train/positions.safetensors"))
        return (file, try JSONDecoder().decode(Meta.self, from: Data(try #require(file.metadata["info"]).utf8)))
    }

    static func adapter(_ file: SafetensorsFile, kind: String, layers: Int, positions: SteeringPositions = .last,
                        scale: Float = 1) throws -> SteeringAdapter {
        var out: [Int: SteeringLayer] = [:]
        for l in 0..<layers {
            let bias = try file.tensor(named: "adapter.\(kind).\(l).bias")
            out[l] = kind == "vector" ? SteeringLayer(bias: bias)
                : SteeringLayer(down: try file.tensor(named: "adapter.\(kind).\(l).down"), up: try file.tensor(named: "adapter.\(kind).\(l).up"), bias: bias)
        }
        return SteeringAdapter(site: .blockOutput, activation: kind == "silu" ? .silu : .identity, layers: out, scale: scale, positions: positions)
    }

    static func generation() throws -> Generation {
        try JSONDecoder().decode(Generation.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("train/positions-generate.json"))))
    }

    /// The prompt's last token is the one before the first target, as the generator takes it.
    @Test func promptLengthsAreTheTokensBeforeTheCompletion() throws {
        let (_, meta) = try Self.reference()
        let model = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let data = try TrainingData.load(path: Fixtures.path("train/grad.jsonl"), tokenizer: try Tokenizer.load(modelPath: Fixtures.path("tiny/base")),
                                         options: TrainingDataOptions(maxLength: 512, vocabularySize: model.config.vocabSize,
                                                                      endOfSequence: model.config.eosTokenIds.first))
        #expect(data.examples.map(\.tokens) == meta.tokens)
        #expect(data.examples.map(\.promptLength) == meta.prompt_lengths)
        try data.requireOneCompletionEach()
    }

    @Test(arguments: ["vector", "linear", "silu"]) func gradientsMatchTorchAutograd(kind: String) throws {
        let (file, meta) = try Self.reference()
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let adapter = try Self.adapter(file, kind: kind, layers: base.config.numHiddenLayers)
        let objectives = meta.targets.map { TrainingObjective.targetedCrossEntropy(targets: $0.map { $0 == 1 }) }
        let backprop = try SteeringBackprop(model: base)
        // One pass with the three sequences packed, and one pass per sequence: the same numbers.
        for maxRows in [nil, 1] as [Int?] {
            let g = try backprop.lossAndGradients(sequences: meta.tokens, objectives: objectives, adapter: adapter,
                                                  promptLengths: meta.prompt_lengths, maxPackedRows: maxRows)
            let refLoss = try file.tensor(named: "loss.\(kind)").scalars[0]
            #expect(abs(Float(g.loss) - refLoss) <= 1e-5 * abs(refLoss), "\(kind): loss \(g.loss) vs \(refLoss)")
            for l in 0..<base.config.numHiddenLayers {
                for name in kind == "vector" ? ["bias"] : ["down", "up", "bias"] {
                    let mine = try #require(name == "down" ? g.layers[l]?.down : name == "up" ? g.layers[l]?.up : g.layers[l]?.bias)
                    let err = relativeError(mine.scalars, try file.tensor(named: "grad.\(kind).\(l).\(name)").scalars)
                    #expect(err <= 1e-4, "\(kind) layer \(l) \(name) (rows \(maxRows ?? 0)): relative error \(err)")
                }
            }
        }
        // Steering every position is another loss: the rule is in effect.
        var everywhere = adapter
        everywhere.positions = .all
        let all = try backprop.lossAndGradients(sequences: meta.tokens, objectives: objectives, adapter: everywhere, computeGradients: false)
        #expect(abs(all.loss - Double(try file.tensor(named: "loss.\(kind)").scalars[0])) > 1e-3)
        // Without prompt lengths the last-position adapter is refused.
        #expect(throws: RuntimeError.self) {
            try backprop.lossAndGradients(sequences: meta.tokens, objectives: objectives, adapter: adapter)
        }
    }

    /// `SteeringTrainer` with `positions = .last` follows the PyTorch re-implementation step by
    /// step (fixtures/train/positions-run.json), for each kind.
    @Test(arguments: TrainingKind.steeringKinds) func trainerFollowsPyTorch(kind: TrainingKind) throws {
        let (model, data, _) = try SteeringTrainerTests.setup()
        let run = try JSONDecoder().decode(SteeringTrainerTests.Run.self,
                                           from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("train/positions-run.json"))))
        let reference = try #require(run.runs[kind.rawValue])
        var options = SteeringTrainerTests.options(run, kind: kind)
        options.positions = .last
        let result = try SteeringTrainer.train(model: model, data: data, options: options)
        #expect(result.adapter.positions == .last && result.steps.count == reference.losses.count)
        for (mine, loss) in zip(result.steps, reference.losses) {
            #expect(abs(mine.loss - loss) <= 1e-3, "\(kind) step \(mine.step): loss \(mine.loss) vs PyTorch \(loss)")
        }
    }

    /// Greedy generation steers the prefill's last token and never a generated one: the tokens
    /// transformers gives with the shift masked to that row, not those of steering every
    /// position or none.
    @Test func generationSteersThePromptsLastTokenOnly() throws {
        let (file, _) = try Self.reference()
        let ref = try Self.generation()
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let last = try Self.adapter(file, kind: "linear", layers: base.config.numHiddenLayers, scale: ref.scale)
        var all = last
        all.positions = .all
        let parameters = GenerationParameters(maxTokens: ref.last.count)
        #expect(try base.adding(last, name: "last").generate(prompt: ref.prompt_ids, parameters: parameters).tokens == ref.last)
        #expect(try base.adding(all, name: "all").generate(prompt: ref.prompt_ids, parameters: parameters).tokens == ref.all)
        #expect(try base.generate(prompt: ref.prompt_ids, parameters: parameters).tokens == ref.base)
        #expect(ref.last != ref.all && ref.last != ref.base)
        // The pass of a prompt and a continuation (multiple-choice scoring) steers the prompt's
        // last row: its logits are those after the prompt.
        let steered = try base.adding(last, name: "last")
        let logits = try steered.forward(tokens: ref.prompt_ids + [ref.last[0]],
                                         options: ForwardOptions(promptLengths: [ref.prompt_ids.count])).logits
        let row = logits.rows((ref.prompt_ids.count - 1)..<ref.prompt_ids.count).scalars
        #expect(relativeError(row, ref.last_first_logits) <= 1e-4)
    }

    /// A pass that does not say where its prompt ends is refused, naming the rule.
    @Test func passWithoutPromptIsRefused() throws {
        let (file, _) = try Self.reference()
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let steered = try base.adding(try Self.adapter(file, kind: "linear", layers: base.config.numHiddenLayers), name: "last")
        do {
            _ = try steered.forward(tokens: [1, 2, 3])
            Issue.record("a bare forward ran a last-position adapter")
        } catch let error as RuntimeError {
            #expect("\(error)".contains("last prompt token only") && "\(error)".contains("generate or eval --tasks"), "\(error)")
        }
        // Prompt lengths that do not fit the sequences are refused.
        #expect(throws: RuntimeError.self) { try steered.forward(tokens: [1, 2, 3], options: ForwardOptions(promptLengths: [1, 2])) }
        #expect(throws: RuntimeError.self) { try steered.forward(tokens: [1, 2, 3], options: ForwardOptions(promptLengths: [0])) }
        #expect(throws: RuntimeError.self) {
            try steered.forward(tokens: [1, 2, 3], options: ForwardOptions(sequenceLengths: [1, 2], promptLengths: [1, 3]))
        }
    }

    /// The file records the rule (format version 2, so older readers refuse it); every-position
    /// files stay version 1 without the key. Control vectors (added at every position) and sums
    /// mixing the rules are refused.
    @Test func fileAndToolsKeepTheRule() throws {
        let (file, _) = try Self.reference()
        let last = try Self.adapter(file, kind: "vector", layers: 4)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-positions-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try SteeringFiles.file(from: last).write(to: dir + "/last.safetensors")
        var all = last
        all.positions = .all
        try SteeringFiles.file(from: all).write(to: dir + "/all.safetensors")
        let lastMeta = try SafetensorsFile(path: dir + "/last.safetensors").metadata
        let allMeta = try SafetensorsFile(path: dir + "/all.safetensors").metadata
        #expect(lastMeta["positions"] == "last" && lastMeta["format_version"] == "2")
        #expect(allMeta["positions"] == nil && allMeta["format_version"] == "1")
        #expect(try SteeringAdapter.load(path: dir + "/last.safetensors") == last)
        #expect(try SteeringAdapter.load(path: dir + "/all.safetensors").positions == .all)
        #expect(throws: SteeringAdapterError.self) { try SteeringFiles.controlVector(from: last) }
        #expect(throws: SteeringAdapterError.self) { try SteeringArithmetic.weightedSum([last, all], weights: [1, 1]) }
        #expect(try SteeringArithmetic.weightedSum([last, last], weights: [1, 1]).positions == .last)
        // An unknown rule is refused by name.
        var odd = SteeringFiles.file(from: last)
        odd.positions = "first"
        try odd.write(to: dir + "/odd.safetensors")
        #expect(throws: RuntimeError.self) { try SteeringAdapter.load(path: dir + "/odd.safetensors") }
    }

    /// Data a last-position adapter cannot train on: a `text` line (no prompt) and a conversation
    /// with two replies, each named by file and line.
    @Test func dataWithoutOnePromptIsRefused() throws {
        let tokenizer = try Tokenizer.load(modelPath: Fixtures.path("tiny/base"))
        let options = TrainingDataOptions(maxLength: 512, vocabularySize: 1024, endOfSequence: 0)
        let text = try TrainingData.parse("{\"text\": \"a b\"}\n", source: "t.jsonl", tokenizer: tokenizer, options: options)
        #expect(throws: RuntimeError.invalidData(file: "t.jsonl", line: 1, reason: "a {\"text\"} line has no prompt, and positions last steers the prompt's last token: give {\"prompt\", \"completion\"} or {\"messages\"} lines")) {
            try text.requireOneCompletionEach()
        }
        let twoRuns = TrainingData(path: "m.jsonl", kind: .messages,
                                   examples: [TrainingExample(tokens: [1, 2, 3, 4, 5], targets: [false, true, false, true, false], line: 7)])
        do {
            try twoRuns.requireOneCompletionEach()
            Issue.record("two replies accepted")
        } catch let RuntimeError.invalidData(file, line, reason) {
            #expect(file == "m.jsonl" && line == 7 && reason.contains("2 assistant replies"), "\(reason)")
        }
    }
}
