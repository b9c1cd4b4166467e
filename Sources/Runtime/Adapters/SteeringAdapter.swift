import Foundation
import Tensors

/// Nonlinearity φ of a steering adapter Δh = U·φ(Dᵀh) + b.
public enum SteeringActivation: String, Sendable, Codable, CaseIterable {
    case identity, silu
}

/// One layer's steering shift at one site: Δh = U·φ(Dᵀh) + b for activations h `[tokens, d]`
/// (row form: Δh = φ(h·D)·Uᵀ + b). D `[d, r]`, U `[d, r]`, b `[d]`. The fixed-vector kind has
/// D and U nil and b only.
public struct SteeringLayer: Sendable, Equatable {
    public var down: Tensor?
    public var up: Tensor?
    public var bias: Tensor?

    public init(down: Tensor? = nil, up: Tensor? = nil, bias: Tensor? = nil) {
        precondition((down == nil) == (up == nil), "down and up come together")
        self.down = down; self.up = up; self.bias = bias
    }

    /// Rank r (0 for a fixed vector).
    public var rank: Int { down?.shape[1] ?? 0 }

    /// Δh for activations `h` `[tokens, d]` → `[tokens, d]`.
    public func shift(_ h: Tensor, activation: SteeringActivation) -> Tensor {
        var out: Tensor
        if let down, let up {
            var z = matmul(h, down)                         // [T, r]
            if activation == .silu { z = z.map { $0 / (1 + expf(-$0)) } }
            out = matmul(z, up, transposeB: true)           // [T, d]
        } else {
            out = Tensor(shape: h.shape)
        }
        if let bias { out = out.addingToEachRow(bias.scalars) }
        return out
    }
}

/// A steering adapter: per-layer shifts applied at one site kind (post-block by default).
/// Layers are 0-based; layers absent from `layers` are not steered.
public struct SteeringAdapter: Sendable, Equatable {
    public var site: HookSiteKind
    public var activation: SteeringActivation
    public var layers: [Int: SteeringLayer]
    /// Multiplier applied to every shift (1 = as fitted).
    public var scale: Float

    public init(site: HookSiteKind = .blockOutput, activation: SteeringActivation = .identity,
                layers: [Int: SteeringLayer], scale: Float = 1) {
        self.site = site; self.activation = activation; self.layers = layers; self.scale = scale
    }

    /// Number of parameters the adapter adds.
    public var parameterCount: Int {
        layers.values.reduce(0) { $0 + ($1.down?.count ?? 0) + ($1.up?.count ?? 0) + ($1.bias?.count ?? 0) }
    }
}
