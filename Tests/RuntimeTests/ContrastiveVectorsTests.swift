import Foundation
import Formats
import Runtime
import Tensors
import Testing
import TestSupport

/// Contrastive vectors on fixtures/tiny/base against transformers' block outputs and numpy
/// (fixtures/vectors/reference.safetensors, recorded by fixtures/generate/extra/vectors.py).
@Suite("Contrastive vectors")
struct ContrastiveVectorsTests {
    @Test(arguments: ContrastiveMethod.allCases, ContrastiveToken.allCases)
    func vectorsMatchNumpy(method: ContrastiveMethod, token: ContrastiveToken) throws {
        let model = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let tokenizer = try Tokenizer.load(modelPath: Fixtures.path("tiny/base"))
        let path = Fixtures.path("vectors/pairs.jsonl")
        let adapter = try ContrastiveVectors.compute(model: model, pairs: try ContrastivePair.load(path: path), source: path,
                                                     encode: { tokenizer.encode($0, addSpecialTokens: true) }, method: method, token: token)
        let reference = try SafetensorsFile(path: Fixtures.path("vectors/reference.safetensors")).tensor(named: "\(method.rawValue).\(token.rawValue)")
        let d = model.config.hiddenSize
        for l in 0..<model.config.numHiddenLayers {
            let mine = try #require(adapter.layers[l]?.bias)
            let ref = Array(reference.scalars[(l * d)..<((l + 1) * d)])
            #expect(relativeError(mine.scalars, ref) <= 1e-4, "\(method) \(token) layer \(l): \(relativeError(mine.scalars, ref))")
        }
        #expect(adapter.madeFor == model.signature && adapter.layers.values.allSatisfy { $0.down == nil })
    }

    /// The real SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to f32 as transformers' gguf_file
    /// loader does) on eight sentiment pairs: both methods at the last token within 1e-4 of
    /// transformers + numpy (fixtures/vectors/smollm2.safetensors).
    @Test(arguments: [ContrastiveMethod.meanDifference, .pca]) func smolLM2VectorsMatchNumpy(method: ContrastiveMethod) throws {
        try #require(FileManager.default.fileExists(atPath: Fixtures.smolLM2GGUF), Comment(rawValue: Fixtures.smolLM2Missing))
        let model = try LlamaModel.load(path: Fixtures.smolLM2GGUF, storage: .f32)
        let tokenizer = try Tokenizer.load(modelPath: Fixtures.smolLM2GGUF)
        let path = Fixtures.path("vectors/smollm2-pairs.jsonl")
        let adapter = try ContrastiveVectors.compute(model: model, pairs: try ContrastivePair.load(path: path), source: path,
                                                     encode: { tokenizer.encode($0, addSpecialTokens: true) }, method: method, token: .last)
        let reference = try SafetensorsFile(path: Fixtures.path("vectors/smollm2.safetensors")).tensor(named: "\(method.rawValue).last")
        let d = model.config.hiddenSize
        var worst = 0.0
        for l in 0..<model.config.numHiddenLayers {
            let mine = try #require(adapter.layers[l]?.bias)
            worst = max(worst, relativeError(mine.scalars, Array(reference.scalars[(l * d)..<((l + 1) * d)])))
        }
        #expect(worst <= 1e-4, "\(method): worst layer relative error \(worst)")
    }

    /// llama.cpp (llama-cpp-python, fixtures/vectors/llama-cpp.safetensors) with the mean-diff
    /// control vector applied changes its logits as steertool's adapter changes steertool's,
    /// within 1e-3 relative; and the control vector `vectors` exports equals that file's.
    @Test func controlVectorActsAsInLlamaCpp() throws {
        let model = try LlamaModel.load(path: Fixtures.path("tiny/gguf/base.f32.gguf"))
        let cv = try ControlVectorFile.load(path: Fixtures.path("vectors/mean-diff.gguf"))
        let ref = try SafetensorsFile(path: Fixtures.path("vectors/llama-cpp.safetensors"))
        let tokens = try ref.tensor(named: "tokens").scalars.map { Int($0) }
        let base = try model.forward(tokens: tokens).logits.scalars
        let steered = try model.adding(SteeringAdapter(controlVector: cv), name: "cv").forward(tokens: tokens).logits.scalars
        let lBase = try ref.tensor(named: "logits.base").scalars, lSteered = try ref.tensor(named: "logits.steered").scalars
        let ours = zip(steered, base).map { $0 - $1 }, theirs = zip(lSteered, lBase).map { $0 - $1 }
        #expect(relativeError(ours, theirs) <= 1e-3, "change: \(relativeError(ours, theirs))")
        #expect(relativeError(steered, lSteered) <= 1e-4 && relativeError(base, lBase) <= 1e-4)

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-cv-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try SteerToolBinary.run(["vectors", "--model", Fixtures.path("tiny/base"), "--pairs", Fixtures.path("vectors/pairs.jsonl"),
                                         "--output", dir + "/cv.gguf"])
        #expect(r.status == 0, "\(r.err)")
        let mine = try ControlVectorFile.load(path: dir + "/cv.gguf")
        #expect(mine.directions.keys.sorted() == cv.directions.keys.sorted() && mine.modelHint == cv.modelHint)
        for (l, v) in cv.directions { #expect(relativeError(try #require(mine.directions[l]), v) <= 1e-4, "direction.\(l)") }
    }

    /// The CLI writes a steering file and a llama.cpp control vector (layers 1 and up by default;
    /// layer 0 refused); bad pairs are refused by file and line with nothing written.
    @Test func cliOutputsAndBadPairs() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-vectors-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = ["vectors", "--model", Fixtures.path("tiny/base"), "--pairs", Fixtures.path("vectors/pairs.jsonl"), "--method", "pca"]
        let st = try SteerToolBinary.run(base + ["--output", dir + "/v.safetensors"])
        #expect(st.status == 0, "\(st.err)")
        #expect(try SteeringAdapterFile.load(path: dir + "/v.safetensors").kind == "vector")
        let cv = try SteerToolBinary.run(base + ["--output", dir + "/v.gguf"])
        #expect(cv.status == 0, "\(cv.err)")
        #expect(try ControlVectorFile.load(path: dir + "/v.gguf").directions.keys.sorted() == [1, 2, 3])
        let zero = try SteerToolBinary.run(base + ["--layers", "0-3", "--output", dir + "/w.gguf"])
        #expect(zero.status != 0 && zero.err.contains("layer 0"), "\(zero.err)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/w.gguf"))
        for (text, reason) in [("{\"positive\": \"a\"}", "missing \"negative\""), ("{\"positive\": \"\", \"negative\": \"b\"}", "empty \"positive\""),
                               ("{\"positive\": \"a\", \"negative\": \"b\"}\nnot json", "bad.jsonl:2: invalid JSON"),
                               ("{\"positive\": \"\(String(repeating: "word ", count: 300))\", \"negative\": \"b\"}", "longer than the model's context")] {
            try text.write(toFile: dir + "/bad.jsonl", atomically: true, encoding: .utf8)
            let r = try SteerToolBinary.run(["vectors", "--model", Fixtures.path("tiny/base"), "--pairs", dir + "/bad.jsonl", "--output", dir + "/bad.safetensors"])
            #expect(r.status != 0 && r.err.contains(reason) && r.err.contains("bad.jsonl:"), "\(r.err)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/bad.safetensors"))
        }
    }
}
