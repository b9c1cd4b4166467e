import Formats
import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// A training run stopped and resumed from its checkpoint ends exactly where the uninterrupted
/// run ends: same adapter and LoRA, same step records, same joint projections, same kept-best
/// choice.
@Suite struct TrainingCheckpointTests {
    static func folder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-checkpoint-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func options(_ kind: TrainingKind) throws -> SteeringTrainingOptions {
        let (_, _, run) = try SteeringTrainerTests.setup()
        var o = SteeringTrainerTests.options(run, kind: kind)
        o.loraRank = 2; o.loraProjections = [.down, .q]; o.projectionInterval = 2
        o.evaluationInterval = 2; o.keepBest = true
        return o
    }

    static func validation(_ model: LlamaModel) throws -> TrainingData {
        try TrainingData.load(path: Fixtures.path("train/grad.jsonl"), tokenizer: try Tokenizer.load(modelPath: Fixtures.path("tiny/base")),
                              options: TrainingDataOptions(maxLength: 512, vocabularySize: model.config.vocabSize,
                                                           endOfSequence: model.config.eosTokenIds.first))
    }

    static func expectSameRun(_ a: SteeringTrainingResult, _ b: SteeringTrainingResult) {
        #expect(a.adapter == b.adapter)
        #expect(a.lora == b.lora)
        #expect(a.steps.map(\.loss) == b.steps.map(\.loss) && a.steps.map(\.validationLoss) == b.steps.map(\.validationLoss))
        #expect(a.steps.map(\.learningRate) == b.steps.map(\.learningRate))
        #expect(a.projections == b.projections && a.selectedStep == b.selectedStep)
        #expect(a.initialValidationLoss == b.initialValidationLoss && a.initialValidationAccuracy == b.initialValidationAccuracy)
        #expect(a.steps.map(\.validationAccuracy) == b.steps.map(\.validationAccuracy))
    }

    /// Generation-scored items: the run.jsonl prompts and their completions as answers.
    static func tasks(_ model: LlamaModel) throws -> ValidationTasks {
        let tokenizer = try Tokenizer.load(modelPath: Fixtures.path("tiny/base"))
        let lines = try String(contentsOfFile: Fixtures.path("train/run.jsonl"), encoding: .utf8).split(separator: "\n")
        let items = try lines.map { line -> GenerationItem in
            let o = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String])
            return GenerationItem(prompt: try #require(o["prompt"]), answer: try #require(o["completion"]).trimmingCharacters(in: .whitespaces), maxTokens: 4)
        }
        return ValidationTasks(items: items, tokenizer: tokenizer, stopTokens: Set(model.config.eosTokenIds),
                               evaluator: GenerationEvaluator(defaultMaxTokens: 4),
                               encodePrompt: GenerationEvaluator.promptEncoder(tokenizer: tokenizer, template: nil))
    }

    @Test(arguments: [TrainingKind.linear, .joint]) func resumedRunEqualsUninterrupted(kind: TrainingKind) throws {
        let (model, data, _) = try SteeringTrainerTests.setup()
        let validation = try Self.validation(model)
        let tasks = try Self.tasks(model)
        let options = try Self.options(kind)
        let run = JSONValue.object([("test", .string(kind.rawValue))])
        let full = try SteeringTrainer.train(model: model, data: data, validation: validation, validationTasks: tasks, options: options)
        #expect(full.steps.compactMap(\.validationAccuracy).count == 3)
        #expect(full.steps.count == 6)

        // Stopped after 3 steps (checkpoints after steps 2 and 3), written, read back and resumed.
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/run.checkpoint.safetensors"
        var partialOptions = options
        partialOptions.maxSteps = 3
        var saved: [Int] = []
        let save = TrainingCheckpoints(interval: 2, run: run) { c in saved.append(c.completedSteps); try c.write(to: path) }
        let partial = try SteeringTrainer.train(model: model, data: data, validation: validation, validationTasks: tasks, options: partialOptions,
                                                checkpoints: save)
        #expect(saved == [2, 3] && partial.steps.count == 3)
        let checkpoint = try TrainingCheckpoint.load(path: path)
        #expect(checkpoint.completedSteps == 3 && checkpoint.steps.map(\.loss) == Array(full.steps.prefix(3).map(\.loss)))
        let resumed = try SteeringTrainer.train(model: model, data: data, validation: validation, validationTasks: tasks, options: options,
                                                checkpoints: TrainingCheckpoints(interval: 2, run: run, resume: checkpoint) { _ in })
        Self.expectSameRun(resumed, full)
    }

    /// Ctrl-C (`shouldStop`) saves where the run stood before throwing; resuming from it finishes
    /// the run as if it had not stopped.
    @Test func interruptionSavesACheckpoint() throws {
        let (model, data, _) = try SteeringTrainerTests.setup()
        let options = try Self.options(.lora)
        let full = try SteeringTrainer.train(model: model, data: data, options: options)
        var last: TrainingCheckpoint?
        var asked = 0
        #expect(throws: RuntimeError.interrupted(after: 4)) {
            try SteeringTrainer.train(model: model, data: data, options: options,
                                      checkpoints: TrainingCheckpoints(interval: 100, run: .null) { last = $0 },
                                      shouldStop: { asked += 1; return asked == 5 })
        }
        let checkpoint = try #require(last)
        #expect(checkpoint.completedSteps == 4 && checkpoint.optimizer.step == 4)
        let resumed = try SteeringTrainer.train(model: model, data: data, options: options,
                                                checkpoints: TrainingCheckpoints(interval: 100, run: .null, resume: checkpoint) { _ in })
        Self.expectSameRun(resumed, full)
    }

    /// A checkpoint of another run is refused, naming what differs.
    @Test func checkpointOfAnotherRunIsRefused() throws {
        let (model, data, _) = try SteeringTrainerTests.setup()
        var options = try Self.options(.vector)
        options.maxSteps = 2
        let fingerprint = try FileFingerprint(path: Fixtures.path("train/run.jsonl"))
        let identity = TrainingCheckpoint.runIdentity(options: options, data: fingerprint, validation: nil, maxLength: 512, chat: false)
        var last: TrainingCheckpoint?
        _ = try SteeringTrainer.train(model: model, data: data, options: options, checkpoints: TrainingCheckpoints(interval: 1, run: identity) { last = $0 })
        var other = options
        other.learningRate = 0.5
        let otherIdentity = TrainingCheckpoint.runIdentity(options: other, data: fingerprint, validation: nil, maxLength: 512, chat: false)
        do {
            _ = try SteeringTrainer.train(model: model, data: data, options: other,
                                          checkpoints: TrainingCheckpoints(interval: 1, run: otherIdentity, resume: try #require(last)) { _ in })
            Issue.record("resumed another run")
        } catch let RuntimeError.invalidArgument(message) {
            #expect(message.contains("another run") && message.contains("lr: checkpoint 0.01, this run 0.5"), "\(message)")
        }
        // --max-steps is not part of the identity: a resumed run may go further.
        other = options
        other.maxSteps = nil
        #expect(TrainingCheckpoint.runIdentity(options: other, data: fingerprint, validation: nil, maxLength: 512, chat: false) == identity)
    }

    /// The CLI: `--checkpoint-every` with `--max-steps`, then `--resume`, writes the adapter an
    /// uninterrupted run writes.
    @Test func cliResumeWritesTheSameAdapter() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let common = ["train", "--model", Fixtures.path("tiny/base"), "--data", Fixtures.path("train/run.jsonl"), "--kind", "silu", "--rank", "2",
                      "--epochs", "2", "--batch", "2", "--grad-accum", "1", "--lr", "1e-2", "--seed", "3"]
        let full = try SteerToolBinary.run(common + ["--output", dir + "/full.safetensors"])
        #expect(full.status == 0, "\(full.err)")
        let first = try SteerToolBinary.run(common + ["--max-steps", "4", "--checkpoint-every", "3", "--output", dir + "/part.safetensors"])
        #expect(first.status == 0, "\(first.err)")
        let checkpoint = dir + "/part.safetensors.checkpoint.safetensors"
        #expect(try TrainingCheckpoint.load(path: checkpoint).completedSteps == 4)
        let second = try SteerToolBinary.run(common + ["--resume", checkpoint, "--checkpoint-every", "3", "--output", dir + "/resumed.safetensors"])
        #expect(second.status == 0 && second.out.contains("resuming after step 4"), "\(second.err)")
        let a = try SteeringAdapter.load(path: dir + "/full.safetensors"), b = try SteeringAdapter.load(path: dir + "/resumed.safetensors")
        #expect(a == b)
        #expect(try TrainingCheckpoint.load(path: checkpoint).completedSteps == 10)
        // Another seed is another run.
        var other = common
        other[other.count - 1] = "4"
        let refused = try SteerToolBinary.run(other + ["--resume", checkpoint, "--output", dir + "/x.safetensors"])
        #expect(refused.status != 0 && refused.err.contains("seed: checkpoint \"3\", this run \"4\""), "\(refused.err)")
    }

    /// A file that is not a checkpoint, or a checkpoint whose state does not add up, is refused
    /// naming the file and what is wrong.
    @Test func hostileCheckpointsAreRefused() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func expectRefusal(_ path: String, _ words: String) {
            do {
                _ = try TrainingCheckpoint.load(path: path)
                Issue.record("\(path) was read")
            } catch {
                #expect("\(error)".contains(path) && "\(error)".contains(words), "\(error)")
            }
        }
        let t = Tensor(shape: [2], scalars: [1, 2])
        try SafetensorsWriter.write([SafetensorsWriter.record("layers.0.bias", t)], metadata: ["format": "steertool-steering"], to: dir + "/steering.safetensors")
        expectRefusal(dir + "/steering.safetensors", "not a steertool training checkpoint")
        let good = TrainingCheckpoint(run: .object([]), completedSteps: 0, parameters: [t], optimizer: AdamOptimizer.State(step: 0, m: [], v: []),
                                      steps: [], initialValidation: nil, best: nil, projections: [])
        try good.write(to: dir + "/good.safetensors")
        #expect(try TrainingCheckpoint.load(path: dir + "/good.safetensors").parameters == [t])
        // One step claimed, no step record; moments for a parameter that is not there.
        try SafetensorsWriter.write([SafetensorsWriter.record("parameter.0", t)], metadata: [
            "format": TrainingCheckpoint.formatName, "format_version": "1", "run": "{}",
            "state": #"{"completed_steps":1,"adam_step":1,"steps":[],"projections":[]}"#], to: dir + "/steps.safetensors")
        expectRefusal(dir + "/steps.safetensors", "0 step records for 1 completed steps")
        try SafetensorsWriter.write([SafetensorsWriter.record("parameter.0", t), SafetensorsWriter.record("adam.m.0", t),
                                     SafetensorsWriter.record("adam.m.1", t)], metadata: [
            "format": TrainingCheckpoint.formatName, "format_version": "1", "run": "{}",
            "state": #"{"completed_steps":0,"adam_step":0,"steps":[],"projections":[]}"#], to: dir + "/moments.safetensors")
        expectRefusal(dir + "/moments.safetensors", "one count")
        try SafetensorsWriter.write([SafetensorsWriter.record("parameter.0", t)], metadata: [
            "format": TrainingCheckpoint.formatName, "format_version": "1", "run": "{", "state": "{}"], to: dir + "/json.safetensors")
        expectRefusal(dir + "/json.safetensors", "not JSON")
    }
}
