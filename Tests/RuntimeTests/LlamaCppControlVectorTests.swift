import Foundation
import Formats
import Runtime
import Tensors
import TestSupport
import Testing

/// llama.cpp as the real consumer of steertool's control vectors (fixtures/merge/llamacpp.json:
/// llama-cpp-python 0.3.36, f32 KV cache, one thread, ran fixtures/tiny/gguf/base.f32.gguf with
/// and without the committed llamacpp/cv.gguf, which `steertool merge control-vector export` wrote from
/// llamacpp/vectors.safetensors; gguf-py read it back in the generator).
@Suite struct LlamaCppControlVectorTests {
    @Test("the committed control vector is what steertool exports, byte for byte")
    func exportIsReproducible() throws {
        let adapter = try SteeringAdapter.load(path: Fixtures.path("merge/llamacpp/vectors.safetensors"))
        let dir = NSTemporaryDirectory() + "steertool-cvx-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try SteeringFiles.controlVector(from: adapter).write(to: dir + "/cv.gguf")
        let ours = try Data(contentsOf: URL(fileURLWithPath: dir + "/cv.gguf"))
        let committed = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("merge/llamacpp/cv.gguf")))
        #expect(ours == committed)
    }

    @Test("steering with the control vector equals llama.cpp's logits (f32 model, 1e-4 relative)")
    func logitsMatchLlamaCpp() throws {
        let ref = try MergeFixtures.load("llamacpp.json")
        let tokens = (ref["tokens"] as! [NSNumber]).map(\.intValue)
        // what gguf-py read from our file is what we wrote
        let cv = try ControlVectorFile.load(path: Fixtures.path("merge/llamacpp/cv.gguf"))
        for (k, v) in ref["directions"] as! [String: Any] {
            #expect(cv.directions[Int(k)!] == (try MergeFixtures.tensor(v)).scalars, "direction.\(k)")
        }
        var model = try LlamaModel.load(path: Fixtures.path("tiny/gguf/base.f32.gguf"))
        let plain = try model.forward(tokens: tokens).logits
        try model.add(SteeringAdapter(controlVector: cv), name: "cv")
        let steered = try model.forward(tokens: tokens).logits
        let refPlain = try MergeFixtures.tensor(ref["plain_logits"]), refSteered = try MergeFixtures.tensor(ref["steered_logits"])
        let ePlain = relativeError(plain.scalars, refPlain.scalars), eSteered = relativeError(steered.scalars, refSteered.scalars)
        let effect = (steered - plain).scalars, refEffect = (refSteered - refPlain).scalars
        let eEffect = relativeError(effect, refEffect)
        // f32 weights and an f32 KV cache in llama.cpp (the default F16 cache gave 1.7e-4): only
        // summation orders differ. Measured ‖Δ‖/‖ref‖ 2.4e-7 plain, 1.7e-7 steered (max|Δ|/max|ref|
        // 5.2e-7, 3.2e-7): bound 1e-4.
        #expect(ePlain < 1e-4, "plain \(ePlain)")
        #expect(eSteered < 1e-4, "steered \(eSteered)")
        // the control vector's effect on the logits (steered − plain, what the file decides) must be
        // llama.cpp's: the same layers and direction; a layer off by one changes it by O(1).
        #expect(eEffect < 1e-4, "effect \(eEffect)")   // measured 2.9e-7
        #expect(relativeError(refSteered.scalars, refPlain.scalars) > 1e-3)
    }
}
