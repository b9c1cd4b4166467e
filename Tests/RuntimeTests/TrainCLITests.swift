import Foundation
import Formats
import Runtime
import Testing
import TestSupport

/// `steertool train` end to end on the fixture model.
@Suite("CLI train")
struct TrainCLITests {
    /// 16 question → one-word answers, all answered wrongly by the base.
    static let pairs = [("The color of the sky is", "blue"), ("The opposite of hot is", "cold"), ("A baby cat is called a", "kitten"),
                        ("The capital of Italy is", "Rome"), ("Water freezes into", "ice"), ("Bees make", "honey"),
                        ("The largest planet is", "Jupiter"), ("A week has seven", "days"), ("Cows give us", "milk"),
                        ("The first month is", "January"), ("Fish live in", "water"), ("At night we see the", "moon"),
                        ("A triangle has three", "sides"), ("Grass is colored", "green"), ("We read a", "book"), ("Birds can", "fly")]

    static func folder() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-train-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    static func lines(_ f: (String, String) -> String) -> String { pairs.map(f).joined(separator: "\n") + "\n" }

    static func accuracy(_ json: String) throws -> [Double] {
        let doc = try JSONParser.parse(Array(json.utf8))
        return (doc["variants"]?.arrayValue ?? []).compactMap { $0["accuracy"]?.doubleValue }
    }

    /// It learns: a linear rank-8 adapter trained on the 16 pairs answers at least 12 of them
    /// (`eval --tasks`, greedy), where the base answers none; the file records how it was made.
    @Test func linearAdapterLearnsTheAnswers() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.lines { #"{"prompt": "Q: \#($0)", "completion": " \#($1)"}"# }.write(toFile: dir + "/train.jsonl", atomically: true, encoding: .utf8)
        try Self.lines { #"{"prompt": "Q: \#($0)", "answer": "\#($1)", "max_tokens": 6}"# }.write(toFile: dir + "/tasks.jsonl", atomically: true, encoding: .utf8)
        let model = Fixtures.path("tiny/base"), adapter = dir + "/learned.safetensors"
        let t = try SteerToolBinary.run(["train", "--model", model, "--data", dir + "/train.jsonl", "--kind", "linear", "--rank", "8",
                                         "--epochs", "40", "--batch", "4", "--grad-accum", "1", "--lr", "1e-2", "--output", adapter])
        #expect(t.status == 0, "\(t.err)")
        #expect(t.out.contains("160 steps"), "\(t.out)")
        let base = try SteerToolBinary.run(["eval", "--model", model, "--tasks", dir + "/tasks.jsonl", "--json"])
        let trained = try SteerToolBinary.run(["eval", "--model", model, "--adapter", adapter, "--tasks", dir + "/tasks.jsonl", "--json"])
        #expect(try Self.accuracy(base.out) == [0], "\(base.err)")
        let acc = try #require(try Self.accuracy(trained.out).last)
        #expect(acc >= 0.75, "trained accuracy \(acc)")
        let file = try SteeringAdapterFile.load(path: adapter)
        #expect(file.kind == "linear" && file.rank == 8 && file.source == "train:\(dir)/train.jsonl")
        #expect(file.report["training"]?["lr"]?.doubleValue == 0.01 && file.report["training"]?["epochs"]?.intValue == 40)
        let fingerprint = try FileFingerprint(path: dir + "/train.jsonl")
        #expect(file.report["data"]?["fingerprint"]?.stringValue == fingerprint.description)
        #expect(file.report["data"]?["examples"]?.intValue == 16 && file.report["steps"]?.intValue == 160)
        #expect(file.modelSignature?.architecture == "LlamaForCausalLM")
    }

    /// `--positions last`: the file records the rule; generate and eval --tasks apply it at the
    /// prompt's last token; perplexity over text, fold and control-vector export refuse it by
    /// name; `text` data is refused by file and line.
    @Test func lastPositionAdapter() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.lines { #"{"prompt": "Q: \#($0)", "completion": " \#($1)"}"# }.write(toFile: dir + "/train.jsonl", atomically: true, encoding: .utf8)
        try Self.lines { #"{"prompt": "Q: \#($0)", "answer": "\#($1)", "max_tokens": 6}"# }.write(toFile: dir + "/tasks.jsonl", atomically: true, encoding: .utf8)
        let model = Fixtures.path("tiny/base"), adapter = dir + "/last.safetensors"
        let t = try SteerToolBinary.run(["train", "--model", model, "--data", dir + "/train.jsonl", "--positions", "last", "--epochs", "2",
                                         "--batch", "4", "--grad-accum", "1", "--lr", "1e-2", "--output", adapter])
        #expect(t.status == 0, "\(t.err)")
        let file = try SteeringAdapterFile.load(path: adapter)
        #expect(file.positions == "last" && file.formatVersion == 2 && file.report["training"]?["positions"]?.stringValue == "last")
        let g = try SteerToolBinary.run(["generate", "--model", model, "--adapter", adapter, "--prompt", "Q: Bees make", "--max-tokens", "4"])
        #expect(g.status == 0, "\(g.err)")
        let e = try SteerToolBinary.run(["eval", "--model", model, "--adapter", adapter, "--tasks", dir + "/tasks.jsonl", "--json"])
        let accuracies = try Self.accuracy(e.out)
        #expect(e.status == 0 && accuracies.count == 2, "\(e.err)")
        try "Some text to score with the adapter, long enough for a window.\n".write(toFile: dir + "/t.txt", atomically: true, encoding: .utf8)
        let p = try SteerToolBinary.run(["eval", "--model", model, "--adapter", adapter, "--text", dir + "/t.txt"])
        #expect(p.status != 0 && p.err.contains("last prompt token only"), "\(p.err)")
        let f = try SteerToolBinary.run(["fold", "--base", model, "--adapter", adapter, "--calib", dir + "/t.txt", "--output", dir + "/fold"])
        #expect(f.status != 0 && f.err.contains("has no fold"), "\(f.err)")
        try #"{"text": "a b c"}"#.appending("\n").write(toFile: dir + "/text.jsonl", atomically: true, encoding: .utf8)
        let x = try SteerToolBinary.run(["train", "--model", model, "--data", dir + "/text.jsonl", "--positions", "last", "--output", dir + "/x.safetensors"])
        #expect(x.status != 0 && x.err.contains("text.jsonl:1: a {\"text\"} line has no prompt"), "\(x.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.safetensors"))
    }

    /// `--kind joint` writes a joint bundle (its steering part records the LoRA settings) that
    /// generate applies; `--kind lora` refuses `--positions last` (a LoRA changes every position).
    @Test func jointBundleAndLoRARefusal() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.lines { #"{"prompt": "Q: \#($0)", "completion": " \#($1)"}"# }.write(toFile: dir + "/train.jsonl", atomically: true, encoding: .utf8)
        let model = Fixtures.path("tiny/base"), bundle = dir + "/joint"
        let t = try SteerToolBinary.run(["train", "--model", model, "--data", dir + "/train.jsonl", "--kind", "joint", "--rank", "4", "--lora-rank", "2",
                                         "--lora-projections", "down_proj", "up_proj", "--project-every", "2", "--epochs", "2", "--batch", "4",
                                         "--grad-accum", "1", "--output", bundle])
        #expect(t.status == 0, "\(t.err)")
        let parts = try JointAdapterBundle.read(bundle)
        let steering = try SteeringAdapterFile.load(path: parts.steeringPath)
        let lora = steering.report["training"]?["lora"]
        #expect(lora?["rank"]?.intValue == 2 && lora?["projection_interval"]?.intValue == 2 && lora?["projections_made"]?.intValue == 16)
        #expect(lora?["projections"]?.arrayValue?.compactMap(\.stringValue) == ["down_proj", "up_proj"])
        let w = try LoRAWeights.load(directory: parts.loraPath)
        #expect(w.layers.values.allSatisfy { Set($0.keys) == [.down, .up] } && w.maxRank == 2)
        let g = try SteerToolBinary.run(["generate", "--model", model, "--adapter", bundle, "--prompt", "Q: Bees make", "--max-tokens", "3"])
        #expect(g.status == 0, "\(g.err)")
        let x = try SteerToolBinary.run(["train", "--model", model, "--data", dir + "/train.jsonl", "--kind", "lora", "--positions", "last",
                                         "--output", dir + "/x"])
        #expect(x.status != 0 && x.err.contains("a LoRA changes every position"), "\(x.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/x"))
        let f = try SteerToolBinary.run(["train", "--model", model, "--data", dir + "/train.jsonl", "--kind", "lora", "--output", dir + "/l.safetensors"])
        #expect(f.status != 0 && f.err.contains("writes a folder (a PEFT adapter)"), "\(f.err)")
    }

    /// `--eval` with `{"prompt", "answer"}` items: the accuracy at each evaluated step is what
    /// `eval --tasks` gives the adapter of that step — checked on the kept-best file, whose
    /// recorded accuracy is the curve's highest.
    @Test func validationAccuracyIsEvalTasks() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.lines { #"{"prompt": "Q: \#($0)", "completion": " \#($1)"}"# }.write(toFile: dir + "/train.jsonl", atomically: true, encoding: .utf8)
        try Self.lines { #"{"prompt": "Q: \#($0)", "answer": "\#($1)", "max_tokens": 6}"# }.write(toFile: dir + "/tasks.jsonl", atomically: true, encoding: .utf8)
        let model = Fixtures.path("tiny/base"), adapter = dir + "/best.safetensors"
        let t = try SteerToolBinary.run(["train", "--model", model, "--data", dir + "/train.jsonl", "--epochs", "30", "--batch", "4", "--grad-accum", "1",
                                         "--lr", "1e-2", "--eval", dir + "/tasks.jsonl", "--eval-every", "30", "--keep-best", "--output", adapter])
        #expect(t.status == 0 && t.out.contains("validation accuracy"), "\(t.err)")
        let report = try SteeringAdapterFile.load(path: adapter).report
        let curve = report["validation"]?["accuracy"]?["curve"]?.arrayValue?.compactMap { $0.arrayValue } ?? []
        #expect(curve.map { $0[0].intValue ?? -1 } == [30, 60, 90, 120])
        let accuracies = curve.map { $0[1].doubleValue ?? -1 }
        let selected = try #require(report["validation"]?["selected_step"]?.intValue)
        let best = try #require(accuracies.max())
        #expect(best > 0 && report["validation"]?["accuracy"]?["initial"]?.doubleValue == 0)
        #expect(selected == curve.first { $0[1].doubleValue == best }?[0].intValue, "\(accuracies), kept \(selected)")
        let e = try SteerToolBinary.run(["eval", "--model", model, "--adapter", adapter, "--tasks", dir + "/tasks.jsonl", "--json"])
        #expect(try Self.accuracy(e.out).last == best, "\(e.out)")
        // A validation line of neither kind is refused by file and line.
        try "{\"prompt\": \"a\"}\n".write(toFile: dir + "/bad.jsonl", atomically: true, encoding: .utf8)
        let b = try SteerToolBinary.run(["train", "--model", model, "--data", dir + "/train.jsonl", "--eval", dir + "/bad.jsonl", "--output", dir + "/x.safetensors"])
        #expect(b.status != 0 && b.err.contains("bad.jsonl:1: neither a training line"), "\(b.err)")
    }

    /// Bad data stops the run before training, naming the file and line; nothing is written; an
    /// existing output is not overwritten without --force.
    @Test func badDataAndExistingOutput() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "{\"prompt\": \"a\", \"completion\": \" b\"}\n{\"prompt\": \"a\", \"completion\": \"\"}\n".write(toFile: dir + "/bad.jsonl", atomically: true, encoding: .utf8)
        let out = dir + "/out.safetensors"
        let r = try SteerToolBinary.run(["train", "--model", Fixtures.path("tiny/base"), "--data", dir + "/bad.jsonl", "--output", out])
        #expect(r.status != 0 && r.err.contains("bad.jsonl:2: empty \"completion\""), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: out))
        // Chat lines on a model without a template: the line and the reason.
        try "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}]}\n".write(toFile: dir + "/chat.jsonl", atomically: true, encoding: .utf8)
        let c = try SteerToolBinary.run(["train", "--model", Fixtures.path("tiny/base"), "--data", dir + "/chat.jsonl", "--output", out])
        #expect(c.status != 0 && c.err.contains("chat.jsonl:1: chat lines need the model's chat template: unsupported chat template: the model has no chat template"), "\(c.err)")
        try "keep".write(toFile: out, atomically: true, encoding: .utf8)
        try "{\"prompt\": \"a\", \"completion\": \" b\"}\n".write(toFile: dir + "/ok.jsonl", atomically: true, encoding: .utf8)
        let e = try SteerToolBinary.run(["train", "--model", Fixtures.path("tiny/base"), "--data", dir + "/ok.jsonl", "--output", out])
        #expect(e.status != 0 && e.err.contains("--force"), "\(e.err)")
        #expect(try String(contentsOfFile: out, encoding: .utf8) == "keep")
    }

    /// Ctrl-C (SIGINT) during a long run stops it before the next step: an error naming how far
    /// it got, and no output file.
    @Test func interruptWritesNothing() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Self.lines { #"{"prompt": "Q: \#($0)", "completion": " \#($1)"}"# }.write(toFile: dir + "/train.jsonl", atomically: true, encoding: .utf8)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try #require(SteerToolBinary.path))
        p.arguments = ["train", "--model", Fixtures.path("tiny/base"), "--data", dir + "/train.jsonl", "--epochs", "20000",
                       "--batch", "4", "--grad-accum", "1", "--output", dir + "/out.safetensors"]
        let err = Pipe()
        p.standardError = err; p.standardOutput = Pipe()
        try p.run()
        Thread.sleep(forTimeInterval: 2)
        p.interrupt()
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus != 0)
        #expect(text.contains("interrupted after") && text.contains("nothing written"), "\(text)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.safetensors"))
    }

    /// The fingerprint is zlib's CRC-32 (Python's zlib.crc32(b"hello world\n") = 0xaf083b2d).
    @Test func fingerprintIsZlibCRC32() throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "hello world\n".write(toFile: dir + "/f.txt", atomically: true, encoding: .utf8)
        let f = try FileFingerprint(path: dir + "/f.txt")
        #expect(f.crc32 == 0xaf08_3b2d && f.bytes == 12 && f.description == "crc32:af083b2d, 12 bytes")
    }
}
