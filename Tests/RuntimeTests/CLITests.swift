import Foundation
import Testing
import Formats
import Runtime
import Tensors
import TestSupport

/// Runs the built `steertool` binary (CLI end-to-end).
enum SteerToolBinary {
    /// The binary next to the test bundle (`.build/<triple>/<config>/steertool`).
    static var path: String? {
        var dir = Bundle.main.bundleURL
        for _ in 0..<3 {
            let candidate = dir.appendingPathComponent("steertool").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            dir.deleteLastPathComponent()
        }
        return nil
    }

    /// Exit status, stdout and stderr of `steertool args…`.
    static func run(_ args: [String]) throws -> (status: Int32, out: String, err: String) {
        let binary = try #require(path, "steertool binary not found near \(Bundle.main.bundleURL.path)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["OPENBLAS_NUM_THREADS"] = "1"
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out; p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }
}

@Suite("CLI forward and generate")
struct CLITests {
    func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("steertool-rt-\(UUID().uuidString)-\(name)").path
    }

    /// `steertool forward` writes logits and every hidden.<l>; they match transformers' reference
    /// (same tolerance and reason as ReferenceForwardTests: 1e-4 of the reference's range).
    @Test func forwardWritesReferenceLogitsAndHidden() throws {
        let run = try #require(try ReferenceRun.load("reference/base.safetensors", layers: 4).last)
        let out = temporaryPath("fwd.safetensors")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try SteerToolBinary.run([
            "forward", "--model", Fixtures.path("tiny/base"),
            "--tokens", run.tokens.map(String.init).joined(separator: ","), "--output", out,
        ])
        #expect(r.status == 0, "\(r.err)")
        let f = try SafetensorsFile(path: out)
        #expect(f.tensorNames.sorted() == (["logits"] + (0..<4).map { "hidden.\($0)" }).sorted())
        #expect(maxAbsoluteDifferenceScaled(try f.tensor(named: "logits").scalars, run.logits.scalars) <= 1e-4)
        for l in 0..<4 {
            #expect(maxAbsoluteDifferenceScaled(try f.tensor(named: "hidden.\(l)").scalars, run.hidden[l].scalars) <= 1e-4)
        }
        // An existing output is kept without --force.
        let again = try SteerToolBinary.run(["forward", "--model", Fixtures.path("tiny/base"), "--tokens", "1,2", "--output", out])
        #expect(again.status != 0)
        #expect(again.err.contains(out))
    }

    /// `forward --weights q8_0` on the Q8_0 GGUF keeps the blocks and still matches transformers
    /// on the dequantized weights (1e-4, summation order only); an unknown storage is refused.
    @Test func forwardWithQ8_0WeightsMatchesReference() throws {
        let run = try #require(try ReferenceRun.load("reference/base-q8_0.safetensors", layers: 4).last)
        let out = temporaryPath("fwd-q8.safetensors")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try SteerToolBinary.run([
            "forward", "--model", Fixtures.path("tiny/gguf/base.q8_0.gguf"), "--weights", "q8_0",
            "--tokens", run.tokens.map(String.init).joined(separator: ","), "--output", out,
        ])
        #expect(r.status == 0, "\(r.err)")
        let f = try SafetensorsFile(path: out)
        #expect(maxAbsoluteDifferenceScaled(try f.tensor(named: "logits").scalars, run.logits.scalars) <= 1e-4)
        let bad = try SteerToolBinary.run(["forward", "--model", Fixtures.path("tiny/base"), "--weights", "q4",
                                           "--tokens", "1,2", "--output", out + ".bad"])
        #expect(bad.status != 0)
        #expect(bad.err.contains("q4"))
    }

    /// `eval --weights q8_0` holds the variant in Q8_0 but the reference in f32 (unless
    /// `--reference-weights` says otherwise): the Q8_0 copy then differs measurably from its f32
    /// reference, while with both in Q8_0 the reference equals the variant.
    @Test func evalKeepsTheReferenceInF32() throws {
        struct Report: Decodable {
            struct Variant: Decodable { let kl_to_reference: Double; let top1_agreement: Double; let perplexity: Double }
            struct Reference: Decodable { let perplexity: Double }
            let variants: [Variant]; let reference: Reference
        }
        func run(_ extra: [String]) throws -> Report {
            let r = try SteerToolBinary.run([
                "eval", "--model", Fixtures.path("tiny/gguf/base.q8_0.gguf"), "--weights", "q8_0",
                "--reference", Fixtures.path("tiny/gguf/base.f32.gguf"), "--tokens", Fixtures.path("eval/tokens.json"),
                "--context", "64", "--stride", "32", "--json",
            ] + extra)
            #expect(r.status == 0, "\(r.err)")
            return try JSONDecoder().decode(Report.self, from: Data(r.out.utf8))
        }
        let mixed = try run([]), both = try run(["--reference-weights", "q8_0"])
        let v = try #require(mixed.variants.first), w = try #require(both.variants.first)
        #expect(v.kl_to_reference > 1e-5 && v.top1_agreement < 1, "q8_0 vs f32: \(v)")
        #expect(w.kl_to_reference.magnitude < 1e-9 && w.top1_agreement == 1, "q8_0 vs q8_0: \(w)")
        #expect(mixed.reference.perplexity != v.perplexity)
        #expect(both.reference.perplexity == w.perplexity)
    }

    /// `--adapter` with a PEFT folder applies the LoRA unmerged: the PEFT reference holds (1e-4).
    @Test func forwardWithLoRAAdapterMatchesPEFT() throws {
        let run = try #require(try ReferenceRun.load("reference/lora.safetensors", layers: 4).last)
        let out = temporaryPath("lora.safetensors")
        defer { try? FileManager.default.removeItem(atPath: out) }
        let r = try SteerToolBinary.run([
            "forward", "--model", Fixtures.path("tiny/base"), "--adapter", Fixtures.path("tiny/lora"),
            "--tokens", run.tokens.map(String.init).joined(separator: ","), "--output", out,
        ])
        #expect(r.status == 0, "\(r.err)")
        let f = try SafetensorsFile(path: out)
        #expect(maxAbsoluteDifferenceScaled(try f.tensor(named: "logits").scalars, run.logits.scalars) <= 1e-4)
    }

    /// A llama.cpp control vector `direction.2` scaled by 0.5 shifts hidden.2 (block 2's output)
    /// by 0.5·v and leaves blocks 0 and 1 untouched (llama.cpp adds direction k after block k).
    @Test func forwardWithControlVectorShiftsThatBlock() throws {
        let v = Tensor.randomNormal([64], std: 1, seed: 11).scalars
        let cv = temporaryPath("cv.gguf"), base = temporaryPath("base.safetensors"), steered = temporaryPath("cv.safetensors")
        defer { for p in [cv, base, steered] { try? FileManager.default.removeItem(atPath: p) } }
        try ControlVectorFile(modelHint: "llama", directions: [2: v]).write(to: cv)
        let tokens = "0,5,17,300,42"
        let a = try SteerToolBinary.run(["forward", "--model", Fixtures.path("tiny/base"), "--tokens", tokens, "--output", base])
        let b = try SteerToolBinary.run(["forward", "--model", Fixtures.path("tiny/base"), "--adapter", cv + ":0.5",
                                         "--tokens", tokens, "--output", steered])
        #expect(a.status == 0 && b.status == 0, "\(a.err) \(b.err)")
        let fa = try SafetensorsFile(path: base), fb = try SafetensorsFile(path: steered)
        for l in 0..<2 { #expect(try fa.tensor(named: "hidden.\(l)") == fb.tensor(named: "hidden.\(l)")) }
        let shifted = try fa.tensor(named: "hidden.2").addingToEachRow(v.map { 0.5 * $0 })
        // One f32 addition per element: 1e-6 of the range.
        #expect(maxAbsoluteDifferenceScaled(try fb.tensor(named: "hidden.2").scalars, shifted.scalars) <= 1e-6)
    }

    @Test func forwardRejectsBadTokens() throws {
        let out = temporaryPath("bad.safetensors")
        let r = try SteerToolBinary.run(["forward", "--model", Fixtures.path("tiny/base"), "--tokens", "1,99999", "--output", out])
        #expect(r.status != 0)
        #expect(r.err.contains("99999"))
        #expect(r.err.contains("position 1"))
        #expect(!FileManager.default.fileExists(atPath: out))
        let r2 = try SteerToolBinary.run(["forward", "--model", Fixtures.path("tiny/base"), "--tokens", "1,x", "--output", out])
        #expect(r2.status != 0)
    }

    @Test func missingModelIsAOneLineError() throws {
        let r = try SteerToolBinary.run(["forward", "--model", "/nonexistent/model", "--tokens", "1", "--output", temporaryPath("x")])
        #expect(r.status != 0)
        #expect(r.err.contains("/nonexistent/model"))
    }

    /// Greedy generation from token ids streams the same tokens the library generates.
    @Test func generateStreamsGreedyTokens() throws {
        let model = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let prompt = [0, 562, 462, 549]
        let expected = try model.generate(prompt: prompt, parameters: GenerationParameters(
            maxTokens: 5, stopTokens: Set(model.config.eosTokenIds)))
        let r = try SteerToolBinary.run([
            "generate", "--model", Fixtures.path("tiny/base"), "--tokens", "0,562,462,549", "--max-tokens", "5", "--ids",
        ])
        #expect(r.status == 0, "\(r.err)")
        let ids = r.out.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int($0) }
        #expect(ids == expected.tokens)
    }
}
