import Foundation
import Testing
import Formats
import Runtime
import Tensors
import TestSupport

/// llama.cpp-quantized copies of the tiny model (fixtures/quant/kquant.*.gguf: ffn_down in the
/// K-quant, the rest Q5_0, Q5_1, Q8_0 or Q4_0, as llama-quantize's mixes choose) run with their
/// matrices read in place (`--weights native`) give the logits of the same file dequantized to
/// f32 at load (gguf-py's values), prefill and decode alike; a GGUF with a type that is not held
/// in place is refused by name.
@Suite("GGUF quantized matrices computed in place")
struct GGMLInPlaceTests {
    static func path(_ type: String) -> String { Fixtures.path("quant/kquant.\(type).gguf") }

    /// Every matrix of a Q4_K/Q5_K/Q6_K file stays in its blocks (GGMLMatrix, Q8_0 included), the model
    /// holds less than a third of the f32 bytes, and the logits of the reference sequences are
    /// within 1e-5 relative (max|a − b| / max|b|) of the f32 load's: all tokens at once, and one
    /// token at a time through the KV cache (the matrix-vector kernel).
    @Test(arguments: ["q4_k", "q5_k", "q6_k"])
    func inPlaceEqualsDequantizedF32(_ type: String) throws {
        defer { BLAS.setThreadCount(1) }
        let native = try LlamaModel.load(path: Self.path(type), storage: .native)
        let f32 = try LlamaModel.load(path: Self.path(type), storage: .f32)
        let held = native.weights.matrices.map { m -> String in
            switch m {
            case .quantized(let g): g.type.rawValue
            case .half: "half"
            case .f32: "f32"
            }
        }
        #expect(!held.contains("f32") && !held.contains("half") && held.contains(type.uppercased()), "\(type): \(Set(held))")
        #expect(native.weights.byteCount * 3 < f32.weights.byteCount, "\(native.weights.byteCount) of \(f32.weights.byteCount) bytes")
        for threads in [1, 3] {
            BLAS.setThreadCount(threads)
            for run in try ReferenceRun.load("reference/base.safetensors", layers: f32.config.numHiddenLayers) {
                let want = try f32.forward(tokens: run.tokens).logits
                let got = try native.forward(tokens: run.tokens).logits
                #expect(maxAbsoluteDifferenceScaled(got.scalars, want.scalars) <= 1e-5, "\(type) prefill, \(threads) threads")
                let cache = KVCache(config: native.config, capacity: run.tokens.count)
                var rows: [Float] = []
                for t in run.tokens {
                    rows += try native.forward(tokens: [t], cache: cache).logits.scalars
                }
                #expect(maxAbsoluteDifferenceScaled(rows, want.scalars) <= 1e-5, "\(type) decode, \(threads) threads")
            }
        }
    }

    /// Q2_K is not held in place: loading natively fails naming the file, the tensor and the type;
    /// `.f32` and `.q8_0` load it.
    @Test func unsupportedTypeIsRefusedByName() throws {
        let path = Self.path("q2_k")
        #expect(throws: RuntimeError.unsupportedTensorType(
            tensor: "blk.0.ffn_down.weight", type: "Q2_K", source: path,
            held: "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K")) {
            try LlamaModel.load(path: path, storage: .native)
        }
        #expect(try LlamaModel.load(path: path, storage: .f32).weightStorage == .f32)
        #expect(try LlamaModel.load(path: path, storage: .q8_0).weightStorage == .q8_0)
    }

    /// The CLI prints that refusal as one line and writes nothing.
    @Test func cliRefusesUnsupportedTypeWithoutWriting() throws {
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-q2k-\(UUID().uuidString).safetensors").path
        let r = try SteerToolBinary.run(["forward", "--model", Self.path("q3_k"), "--tokens", "1,2,3", "--output", out])
        #expect(r.status != 0)
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1 && lines[0].contains("kquant.q3_k.gguf") && lines[0].contains("blk.0.ffn_down.weight")
                && lines[0].contains("Q3_K"), "\(r.err)")
        #expect(!FileManager.default.fileExists(atPath: out))
    }
}
