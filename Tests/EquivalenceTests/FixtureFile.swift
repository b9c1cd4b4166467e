import Equivalence
import Foundation
import Runtime
import Tensors
import TestSupport

/// A minimal reader for the F32/I32 safetensors fixtures of `fixtures/equivalence/` (written by
/// `fixtures/generate/extra/equivalence.py`). Test-only: the project's hardened reader lives in
/// Formats; this one checks bounds and fails the test on anything unexpected.
struct FixtureFile {
    let tensors: [String: Tensor]

    struct Failure: Error, CustomStringConvertible { let description: String }

    init(_ relative: String) throws {
        let path = Fixtures.path(relative)
        guard let data = FileManager.default.contents(atPath: path) else { throw Failure(description: "\(path): cannot read") }
        guard data.count >= 8 else { throw Failure(description: "\(path): too short") }
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(data.count - 8) else { throw Failure(description: "\(path): header length \(n) past end") }
        let header = data.subdata(in: 8..<(8 + Int(n)))
        guard let json = try JSONSerialization.jsonObject(with: header) as? [String: Any] else {
            throw Failure(description: "\(path): header is not an object")
        }
        let body = 8 + Int(n)
        var out: [String: Tensor] = [:]
        for (name, value) in json where name != "__metadata__" {
            guard let entry = value as? [String: Any], let dtype = entry["dtype"] as? String,
                  let shape = entry["shape"] as? [Int], let offsets = entry["data_offsets"] as? [Int], offsets.count == 2,
                  let s = Shape.checked(shape)
            else { throw Failure(description: "\(path): bad entry \(name)") }
            let (lo, hi) = (body + offsets[0], body + offsets[1])
            guard lo >= body, hi >= lo, hi <= data.count, hi - lo == 4 * s.count else {
                throw Failure(description: "\(path): \(name) offsets out of range")
            }
            var scalars = [Float](repeating: 0, count: s.count)
            data.withUnsafeBytes { raw in
                for i in 0..<s.count {
                    let bits = raw.loadUnaligned(fromByteOffset: lo + 4 * i, as: UInt32.self)
                    switch dtype {
                    case "F32": scalars[i] = Float(bitPattern: UInt32(littleEndian: bits))
                    case "I32": scalars[i] = Float(Int32(bitPattern: UInt32(littleEndian: bits)))
                    default: scalars[i] = .nan
                    }
                }
            }
            guard dtype == "F32" || dtype == "I32" else { throw Failure(description: "\(path): \(name) has dtype \(dtype)") }
            out[name] = Tensor(shape: s, scalars: scalars)
        }
        tensors = out
    }

    subscript(_ name: String) -> Tensor {
        get throws {
            guard let t = tensors[name] else { throw Failure(description: "fixture tensor \(name) missing") }
            return t
        }
    }
}

/// The random decoder layer of `fixtures/equivalence/block.safetensors` and its configs.
struct BlockFixture {
    let file: FixtureFile
    let weights: LlamaLayerWeights
    /// Fixture names (generator's short names) of the seven projections.
    static let projections: [(String, LlamaProjection)] = [("q", .q), ("k", .k), ("v", .v), ("o", .o), ("gate", .gate), ("up", .up), ("down", .down)]
    static func short(_ p: LlamaProjection) -> String { projections.first { $0.1 == p }!.0 }

    init() throws {
        file = try FixtureFile("equivalence/block.safetensors")
        weights = LlamaLayerWeights(
            inputNorm: try file["w.input_norm"], q: try file["w.q"], k: try file["w.k"], v: try file["w.v"], o: try file["w.o"],
            postAttentionNorm: try file["w.post_norm"], gate: try file["w.gate"], up: try file["w.up"], down: try file["w.down"])
    }

    /// The config the generator used for RoPE variant `rope` (default, llama3, linear).
    static func config(rope: String) -> LlamaConfig {
        let params: LlamaConfig.RopeParameters
        switch rope {
        case "llama3":
            params = .init(ropeType: "llama3", theta: 10000, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64)
        case "linear":
            params = .init(ropeType: "linear", theta: 10000, factor: 2)
        default:
            params = .init(theta: 10000)
        }
        return LlamaConfig(vocabSize: 32, hiddenSize: 64, intermediateSize: 160, numHiddenLayers: 1, numAttentionHeads: 4,
                           numKeyValueHeads: 2, headDim: 16, rmsNormEps: 1e-5, maxPositionEmbeddings: 256, rope: params)
    }

    func evaluator(rope: String) throws -> BlockEvaluator { try BlockEvaluator(config: Self.config(rope: rope), weights: weights) }

    func denseDelta(_ p: LlamaProjection) throws -> ProjectionDelta { .dense(try file["delta.\(Self.short(p))"]) }

    func allDense() throws -> LayerWeightDelta {
        var d = LayerWeightDelta()
        for (_, p) in Self.projections { d[p] = try denseDelta(p) }
        return d
    }

    func lora() throws -> LayerWeightDelta {
        let s = try file["lora.scale"].scalars[0]
        var d = LayerWeightDelta()
        for (_, p) in Self.projections {
            d[p] = .lowRank(a: try file["lora.\(Self.short(p)).A"], b: try file["lora.\(Self.short(p)).B"], scale: s)
        }
        return d
    }
}
