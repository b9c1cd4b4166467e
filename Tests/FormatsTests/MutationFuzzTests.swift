import Foundation
import Testing
import Tensors
import TestSupport
import Formats

/// Deterministic mutation fuzzing of the parsers over valid fixture files: random byte flips,
/// overwrites with boundary values, truncations and insertions (SplitMix64, fixed seeds). Every
/// mutant must either parse — and then every tensor must decode inside the buffer — or throw;
/// a crash fails the whole run.
@Suite struct MutationFuzzTests {
    static let mutantsPerFile = 3000

    func mutate(_ bytes: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var b = bytes
        let edits = 1 + Int(rng.next() % 4)
        for _ in 0..<edits where !b.isEmpty {
            let at = Int(rng.next() % UInt64(b.count))
            switch rng.next() % 6 {
            case 0: b[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            case 1: b[at] = [0x00, 0xff, 0x7f, 0x80, 0x01][Int(rng.next() % 5)]
            case 2:  // a boundary 64-bit value (lengths and offsets are u64 in both formats)
                let v: UInt64 = [.max, 1 << 63, 1 << 32, 0xffff_ffff, 0][Int(rng.next() % 5)]
                for k in 0..<8 where at + k < b.count { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
            case 3: b = Array(b[..<at])
            case 4: b.insert(contentsOf: [UInt8](repeating: UInt8(truncatingIfNeeded: rng.next()), count: 1 + Int(rng.next() % 9)), at: at)
            default: b.remove(at: at)
            }
        }
        return b
    }

    func decodeAll(_ infos: [TensorInfo], in raw: UnsafeRawBufferPointer) {
        for info in infos {
            let slice = UnsafeRawBufferPointer(rebasing: raw[info.byteRange])
            var out = [Float](repeating: 0, count: info.shape.count)
            out.withUnsafeMutableBufferPointer { o in
                switch info.storage {
                case .safetensors(let d): ElementCodec.decode(slice, dtype: d, into: o)
                case .ggml(let t): if GGMLDequantizer.supports(t) { GGMLDequantizer.dequantize(slice, type: t, into: o) }
                }
            }
        }
    }

    /// Feeds `mutantsPerFile` mutants of `file` to `parse` (which returns the tensor infos it
    /// accepted, or nil); every accepted mutant's tensors are decoded, and some mutants must be
    /// rejected.
    func runMutants(file: String, seed: UInt64, parse: (UnsafeRawBufferPointer) -> [TensorInfo]?) throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(file))))
        var rng = SplitMix64(seed: seed)
        var parsed = 0
        for _ in 0..<Self.mutantsPerFile {
            let m = mutate(original, &rng)
            m.withUnsafeBytes { raw in
                if let tensors = parse(raw) { parsed += 1; decodeAll(tensors, in: raw) }
            }
        }
        #expect(parsed < Self.mutantsPerFile, "some mutants must be rejected")
    }

    @Test(arguments: ["formats/dtypes.safetensors", "tiny/lora/adapter_model.safetensors"])
    func safetensorsMutants(file: String) throws {
        try runMutants(file: file, seed: 0x5afe) { try? SafetensorsFile.parse($0, file: "mutant").tensors }
    }

    @Test(arguments: ["formats/metadata.gguf", "quant/q4_0.gguf", "quant/q5_1.gguf", "tiny/gguf/base.q8_0.gguf"])
    func ggufMutants(file: String) throws {
        try runMutants(file: file, seed: 0x66_75) { try? GGUFFile.parse($0, file: "mutant").tensors }
    }

    @Test func jsonAndPEFTConfigMutants() throws {
        let original = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tiny/lora-patterns/adapter_config.json"))))
        var rng = SplitMix64(seed: 0x9ef7)
        for _ in 0..<Self.mutantsPerFile {
            let m = mutate(original, &rng)
            _ = try? PEFTAdapterConfig(json: Data(m))
            _ = try? LlamaMetadata.hyperparameters(fromConfigJSON: Data(m))
        }
    }
}
