import Foundation
import Formats
import Tensors

/// Conversions between `SteeringAdapter` and its files: steertool's steering file and
/// llama.cpp's control vector.
public enum SteeringFiles {
    /// The file form of an adapter (scale folded into U and b), recording the model it was made
    /// for (`madeFor`). `kind` is "vector" when no layer has D/U, else "linear" (identity) or
    /// "nonlinear" (SiLU).
    public static func file(from adapter: SteeringAdapter, baseModel: String = "", source: String = "",
                            report: JSONValue = .object([])) -> SteeringAdapterFile {
        let a = SteeringArithmetic.scaled(adapter, by: 1)
        let isVector = a.layers.values.allSatisfy { $0.down == nil }
        let kind = isVector ? "vector" : (a.activation == .identity ? "linear" : "nonlinear")
        let layers = a.layers.keys.sorted().map { l in
            SteeringAdapterFile.Layer(index: l, down: a.layers[l]!.down, up: a.layers[l]!.up, bias: a.layers[l]!.bias)
        }
        return SteeringAdapterFile(site: "\(a.site)", kind: kind, activation: a.activation.rawValue,
                                   rank: a.layers.values.map(\.rank).max() ?? 0, baseModel: baseModel, source: source,
                                   report: report, layers: layers, modelSignature: a.madeFor, positions: a.positions.rawValue)
    }

    /// A vector-kind post-block adapter as a llama.cpp control vector: `direction.ℓ` = scale·bᵢ of
    /// 0-based layer ℓ (llama.cpp adds direction.ℓ to block ℓ's output; see Formats'
    /// `ControlVectorFile`). Refused for linear/nonlinear kinds (llama.cpp adds constant vectors
    /// only), other sites, an adapter of the last prompt token only (llama.cpp adds a control
    /// vector at every position), and layer 0 (llama.cpp never steers it).
    public static func controlVector(from adapter: SteeringAdapter, modelHint: String = "llama") throws -> ControlVectorFile {
        guard adapter.site == .blockOutput else {
            throw SteeringAdapterError.unsupported("control vectors steer the block output; this adapter steers \(adapter.site)")
        }
        guard adapter.positions == .all else {
            throw SteeringAdapterError.unsupported("this adapter shifts the last prompt token only; a llama.cpp control vector is added at every position")
        }
        if let (l, _) = adapter.layers.first(where: { $0.value.down != nil }) {
            throw SteeringAdapterError.unsupported("layer \(l) has a rank-\(adapter.layers[l]!.rank) linear map; a llama.cpp control vector holds only fixed vectors (export a vector-kind adapter)")
        }
        var dirs: [Int: [Float]] = [:]
        for (l, layer) in adapter.layers {
            guard let b = layer.bias else { continue }
            guard l >= 1 else {
                throw SteeringAdapterError.unsupported("layer 0 cannot be steered by a llama.cpp control vector (llama.cpp ignores direction.0)")
            }
            dirs[l] = b.scalars.map { $0 * adapter.scale }
        }
        guard !dirs.isEmpty else { throw SteeringAdapterError.incompatibleInputs("the adapter has no vectors to export") }
        return ControlVectorFile(modelHint: modelHint, directions: dirs)
    }
}
