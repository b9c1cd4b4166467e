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
