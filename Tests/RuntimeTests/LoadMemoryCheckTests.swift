import Formats
import Runtime
import Tensors
import Testing

/// `LoadMemoryCheck`: what a load will own under each weight storage, and the refusal (before any
/// allocation) naming the file, the storage and the largest tensor.
@Suite struct LoadMemoryCheckTests {
    /// An 8B-like bf16 layout: embedding [128256, 4096] and one [14336, 4096] matrix in BF16, a
    /// [4096] F32 norm, and one F32 matrix.
    static let tensors: [TensorInfo] = [
        TensorInfo(name: "model.embed_tokens.weight", storage: .safetensors(.bf16), shape: [128256, 4096], byteRange: 0..<(2 * 128256 * 4096)),
        TensorInfo(name: "model.layers.0.mlp.up_proj.weight", storage: .safetensors(.bf16), shape: [14336, 4096], byteRange: 0..<(2 * 14336 * 4096)),
        TensorInfo(name: "model.norm.weight", storage: .safetensors(.f32), shape: [4096], byteRange: 0..<(4 * 4096)),
        TensorInfo(name: "lm_head.weight", storage: .safetensors(.f32), shape: [1000, 4096], byteRange: 0..<(4 * 1000 * 4096)),
    ]

    @Test func bytesPerStorage() {
        let counts = [128256 * 4096, 14336 * 4096, 4096, 1000 * 4096]
        #expect(LoadMemoryCheck.bytesNeeded(Self.tensors, storage: .f32) == 4 * counts.reduce(0, +))
        // native: the bf16 matrices stay in the file; the norm and the F32 matrix are owned.
        #expect(LoadMemoryCheck.bytesNeeded(Self.tensors, storage: .native) == 4 * (4096 + 1000 * 4096))
        // q8_0: 34 bytes per 32 matrix values (+ one block per matrix), the largest widened once, vectors f32.
        let q = [counts[0], counts[1], counts[3]].reduce(0) { $0 + $1 / 32 * 34 + 34 } + 4 * counts[0] + 4 * 4096
        #expect(LoadMemoryCheck.bytesNeeded(Self.tensors, storage: .q8_0) == q)
    }

    @Test func refusalNamesFileStorageAndLargestTensor() throws {
        #expect(throws: Never.self) { try LoadMemoryCheck.check(Self.tensors, storage: .native, source: "m.safetensors", available: 1 << 30) }
        do {
            try LoadMemoryCheck.check(Self.tensors, storage: .f32, source: "m.safetensors", available: 1 << 30)
            Issue.record("expected a refusal")
        } catch let e as RuntimeError {
            let text = e.description
            #expect(text.contains("m.safetensors") && text.contains("--weights f32") && text.contains("model.embed_tokens.weight [128256, 4096]"), "\(text)")
            #expect(text.contains("2.4 GB") && text.contains("1.1 GB") && text.contains("--weights native"), "\(text)")
        }
    }
}
