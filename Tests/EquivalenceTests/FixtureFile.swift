import Equivalence
import Formats
import Foundation
import Runtime
import Tensors
import TestSupport

/// A safetensors fixture of `fixtures/equivalence/` (written by
/// `fixtures/generate/extra/equivalence.py`), read with Formats' `SafetensorsFile`.
struct FixtureFile {
    let file: SafetensorsFile

    init(_ relative: String) throws { file = try SafetensorsFile(path: Fixtures.path(relative)) }

    /// A required input is missing (tests fail with this message, they do not skip).
    struct Missing: Error, CustomStringConvertible { let description: String }
    static func missing(_ why: String) -> Missing { Missing(description: why) }

    subscript(_ name: String) -> Tensor {
        get throws { try file.tensor(named: name) }
    }
}

/// The random decoder layer of `fixtures/equivalence/block.safetensors` and its configs.
struct BlockFixture {
    let file: FixtureFile
    let weights: LlamaWeights.Layer
    /// Fixture names (generator's short names) of the seven projections.
    static let projections: [(String, LlamaProjection)] = [("q", .q), ("k", .k), ("v", .v), ("o", .o), ("gate", .gate), ("up", .up), ("down", .down)]
    static func short(_ p: LlamaProjection) -> String { projections.first { $0.1 == p }!.0 }

    init() throws {
        file = try FixtureFile("equivalence/block.safetensors")
        weights = LlamaWeights.Layer(
            inputNorm: try file["w.input_norm"], q: .f32(try file["w.q"]), k: .f32(try file["w.k"]), v: .f32(try file["w.v"]),
            o: .f32(try file["w.o"]), mlpNorm: try file["w.post_norm"], gate: .f32(try file["w.gate"]),
            up: .f32(try file["w.up"]), down: .f32(try file["w.down"]))
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

    func evaluator(rope: String) throws -> FirstOrderMap { try FirstOrderMap(config: Self.config(rope: rope), weights: weights) }

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
