import Foundation
import Formats
import Tensors

/// Nonlinearity φ of a steering adapter Δh = U·φ(Dᵀh) + b.
public enum SteeringActivation: String, Sendable, Codable, CaseIterable {
    case identity, silu
}

/// One layer's steering shift at one site: Δh = U·φ(Dᵀh) + b for activations h `[tokens, d]`
/// (row form: Δh = φ(h·D)·Uᵀ + b). D `[d, r]`, U `[d, r]`, b `[d]`. The fixed-vector kind has
/// D and U nil and b only.
public struct SteeringLayer: Sendable, Equatable {
    /// D `[d, r]` (nil for the fixed-vector kind).
    public var down: Tensor?
    /// U `[d, r]` (nil for the fixed-vector kind).
    public var up: Tensor?
    /// b `[d]` (nil: no bias).
    public var bias: Tensor?

    /// A layer; D and U come together (both or neither).
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
            if activation == .silu { z = z.map(SiLU.value) }
            out = matmul(z, up, transposeB: true)           // [T, d]
        } else {
            out = Tensor(shape: h.shape)
        }
        if let bias { out = out.addingToEachRow(bias.scalars) }
        return out
    }

    /// The backward of h ↦ h + scale·Δh(h) (`shift`, as a hook adds it) for h `[T, d]`: from
    /// g = ∂L/∂(h + scale·Δh) `[T, d]` (row-major, in place), adds to `gradient` (shaped as this
    /// layer) gU += scale·gᵀ·φ, gD += hᵀ·g_pre with g_pre = scale·(g·U) ⊙ φ′(h·D), gb += scale·Σ_t g_t,
    /// and adds the shift's own input gradient g_pre·Dᵀ to g (the identity path is g itself).
    /// φ(h·D) is recomputed from h; SiLU's σ by `expf`.
    public func backward(input h: Tensor, gradient g: UnsafeMutablePointer<Float>, activation: SteeringActivation,
                         scale sc: Float, into gradient: inout SteeringLayer) {
        let T = h.rows, d = h.columns
        if bias != nil {
            gradient.bias!.withUnsafeMutableBufferPointer { gb in
                for t in 0..<T { for j in 0..<d { gb[j] += sc * g[t * d + j] } }
            }
        }
        guard let down, let up else { return }
        let r = rank
        let pre = matmul(h, down)                                                   // h·D [T, r]
        var phi = pre
        let gPre = Tensor(shape: [T, r])
        if activation == .silu { phi = pre.map(SiLU.value) }
        // The gradients leave `gradient` while they are written, so they are not copied on write.
        var out = [gradient.up!, gradient.down!, gPre]
        gradient.up = nil; gradient.down = nil
        Tensor.withPointers([h, phi, pre, up, down], writing: &out) { p, o in
            let (hp, ph, x, u, dp, gu, gd, gp) = (p[0], p[1], p[2], p[3], p[4], o[0], o[1], o[2])
            // gU [d, r] += sc·gᵀ·φ ; g_pre [T, r] = sc·g·U ⊙ φ′.
            BLAS.sgemm(transposeA: true, m: d, n: r, k: T, alpha: sc, a: g, lda: d, b: ph, ldb: r, beta: 1, c: gu, ldc: r)
            BLAS.sgemm(m: T, n: r, k: d, alpha: sc, a: g, lda: d, b: u, ldb: r, c: gp, ldc: r)
            if activation == .silu {
                for i in 0..<(T * r) { gp[i] *= SiLU.derivative(x[i]) }
            }
            // gD [d, r] += hᵀ·g_pre ; g += g_pre·Dᵀ.
            BLAS.sgemm(transposeA: true, m: d, n: r, k: T, a: hp, lda: d, b: gp, ldb: r, beta: 1, c: gd, ldc: r)
            BLAS.sgemm(transposeB: true, m: T, n: d, k: r, a: gp, lda: r, b: dp, ldb: r, beta: 1, c: g, ldc: d)
        }
        gradient.up = out[0]; gradient.down = out[1]
    }
}

/// A steering adapter: per-layer shifts applied at one site kind (post-block by default).
/// Layers are 0-based; layers absent from `layers` are not steered.
public struct SteeringAdapter: Sendable, Equatable {
    /// The site kind every layer's shift is added at (post-block `blockOutput` by default).
    public var site: HookSiteKind
    /// φ of U·φ(Dᵀh).
    public var activation: SteeringActivation
    /// Shifts by 0-based layer.
    public var layers: [Int: SteeringLayer]
    /// Multiplier applied to every shift (1 = as fitted).
    public var scale: Float
    /// The model the adapter was made for (nil: unknown, e.g. a llama.cpp control vector);
    /// `LlamaModel.add` refuses it on a model with another signature.
    public var madeFor: ModelSignature?
    /// The positions shifted: every token (the default) or the last prompt token only.
    public var positions: SteeringPositions

    /// An adapter (every position, scale 1, no recorded model by default).
    public init(site: HookSiteKind = .blockOutput, activation: SteeringActivation = .identity,
                layers: [Int: SteeringLayer], scale: Float = 1, madeFor: ModelSignature? = nil,
                positions: SteeringPositions = .all) {
        self.site = site; self.activation = activation; self.layers = layers; self.scale = scale
        self.madeFor = madeFor; self.positions = positions
    }

    /// Number of parameters the adapter adds.
    public var parameterCount: Int {
        layers.values.reduce(0) { $0 + ($1.down?.count ?? 0) + ($1.up?.count ?? 0) + ($1.bias?.count ?? 0) }
    }
}
