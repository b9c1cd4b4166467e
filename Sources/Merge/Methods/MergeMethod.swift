import Tensors

/// One input model's tensor and its per-model parameters (mergekit `models: - model:
/// parameters: {weight, density}`), already resolved for this tensor.
public struct MergeInput: Sendable {
    /// The model's tensor (same shape as the others).
    public var tensor: Tensor
    /// mergekit `weight` (required by every method that uses it; nil when not given).
    public var weight: Double?
    /// mergekit `density` (default 1 = keep everything).
    public var density: Double

    /// An input with its parameters.
    public init(tensor: Tensor, weight: Double? = nil, density: Double = 1) {
        self.tensor = tensor; self.weight = weight; self.density = density
    }
}

/// The inputs of one output tensor: its name, the base model's tensor (nil when the method
/// has none) and the other models' tensors with their parameters, all of one shape.
public struct TensorMergeInputs: Sendable {
    /// The output tensor's name (for errors and conditional parameters).
    public var name: String
    /// The base model's tensor, or nil.
    public var base: Tensor?
    /// The other models' tensors with their parameters.
    public var models: [MergeInput]

    /// The inputs of tensor `name`.
    public init(name: String, base: Tensor?, models: [MergeInput]) {
        self.name = name; self.base = base; self.models = models
    }

    /// Throws `MergeError.shapeMismatch` unless every tensor has the base's (or first model's) shape.
    public func validateShapes() throws {
        guard let ref = base?.shape ?? models.first?.tensor.shape else { return }
        for m in models where m.tensor.shape != ref {
            throw MergeError.shapeMismatch(tensor: name, expected: ref.dims, found: m.tensor.shape.dims)
        }
    }
}

/// A checkpoint merge method with mergekit semantics, applied tensor by tensor. Methods are
/// small value types holding their shared parameters; per-model parameters come with the inputs.
public protocol MergeMethod: Sendable {
    /// mergekit's name of the method (`merge_method:` in its YAML).
    var name: String { get }
    /// Whether the method needs `base_model`.
    var requiresBase: Bool { get }
    /// Merges one tensor. `rng` supplies random masks (DARE); deterministic methods ignore it.
    /// The inputs are consumed, so a method may release each model's tensor once it is used.
    func merge(_ inputs: consuming TensorMergeInputs, rng: inout SplitMix64) throws -> Tensor
}

extension MergeInput {
    func requireWeight(_ method: String, tensor: String) throws -> Double {
        guard let w = weight else {
            throw MergeError.invalidParameter(name: "weight", value: "none", reason: "\(method) needs a weight for every model (tensor '\(tensor)')")
        }
        return w
    }
}

/// mergekit `linear`: Σᵢ wᵢ·Tᵢ, divided by Σᵢ wᵢ when `normalize` (mergekit's default). Float32
/// accumulation in input order, as mergekit does for float32 inputs.
public struct LinearMerge: MergeMethod {
    /// Divide by the (masked) weight sum (mergekit `normalize`).
    public var normalize: Bool
    /// mergekit's linear merge (normalize defaults to true).
    public init(normalize: Bool = true) { self.normalize = normalize }
    public var name: String { "linear" }
    public var requiresBase: Bool { false }

    public func merge(_ inputs: consuming TensorMergeInputs, rng: inout SplitMix64) throws -> Tensor {
        try inputs.validateShapes()
        guard let first = inputs.models.first else { throw MergeError.incompatibleInputs("linear: no models for '\(inputs.name)'") }
        var out = Tensor(shape: first.tensor.shape)
        var total: Float = 0
        for m in inputs.models {
            let w = Float(try m.requireWeight(name, tensor: inputs.name))
            total += w
            out.withUnsafeMutableBufferPointer { o in
                m.tensor.withUnsafeBufferPointer { x in for i in 0..<o.count { o[i] += x[i] * w } }
            }
        }
        if normalize {
            // mergekit divides unconditionally; a zero total gives inf/nan there. Refuse instead.
            guard total != 0 else {
                throw MergeError.invalidParameter(name: "weight", value: "sum 0", reason: "linear with normalize needs a non-zero weight sum")
            }
            out = out.map { $0 / total }
        }
        return out
    }
}

/// mergekit's generalized task arithmetic family: deltas δᵢ = Tᵢ − base, optional sparsification
/// (magnitude top-k or DARE's Bernoulli mask with L1 rescale), weighting, optional TIES sign
/// consensus, optional normalization by the (masked) weight sum, a λ multiplier, base + result.
///
/// | method | consensus | sparsification | normalize | rescale |
/// |---|---|---|---|---|
/// | task_arithmetic | – | – | false | – |
/// | ties | sum | magnitude | true | false |
/// | dare_ties | sum | random | false | true |
/// | dare_linear | – | random | false | true |
public struct GeneralizedTaskArithmetic: MergeMethod {
    /// The four mergekit methods of this family.
    public enum Kind: String, Sendable, CaseIterable {
        case taskArithmetic = "task_arithmetic", ties, dareTies = "dare_ties", dareLinear = "dare_linear"
    }
    /// Which method of the family.
    public var kind: Kind
    /// Divide by the (masked) weight sum (mergekit `normalize`).
    public var normalize: Bool
    /// L1-rescale after sparsification (mergekit `rescale`; DARE's default).
    public var rescale: Bool
    /// Multiplier of the merged delta (mergekit `lambda`).
    public var lambda: Double
    /// TIES sign election (mergekit's `sum` = total, `count` = frequency).
    public var consensus: MajoritySignMethod

    /// The method with mergekit's defaults, overridden by the given shared parameters.
    public init(kind: Kind, normalize: Bool? = nil, rescale: Bool? = nil, lambda: Double = 1,
                consensus: MajoritySignMethod = .total) {
        self.kind = kind
        self.normalize = normalize ?? (kind == .ties)
        self.rescale = rescale ?? (kind == .dareTies || kind == .dareLinear)
        self.lambda = lambda
        self.consensus = consensus
    }

    public var name: String { kind.rawValue }
    public var requiresBase: Bool { true }

    public func merge(_ inputs: consuming TensorMergeInputs, rng: inout SplitMix64) throws -> Tensor {
        try inputs.validateShapes()
        guard let base = inputs.base else {
            throw MergeError.invalidConfig("\(name) needs base_model (tensor '\(inputs.name)')")
        }
        if inputs.models.isEmpty { return base }
        let n = base.count
        var deltas: [[Float]] = []
        var weights: [Float] = []
        let tensorName = inputs.name
        for k in inputs.models.indices {
            // each model's tensor is released as soon as its weighted delta exists, so the merge
            // holds the base, the deltas and one model tensor at a time
            let (deltaScalars, w) = try Self.weightedDelta(inputs.models[k], base: base, kind: kind, rescale: rescale,
                                                           method: name, tensor: tensorName, rng: &rng)
            inputs.models[k].tensor = Tensor(shape: [0])
            deltas.append(deltaScalars)
            weights.append(w)
        }
        // One pass per entry: elect the sign (TIES), sum the agreeing weighted deltas and their
        // weights, normalize, scale, add to the base. No per-model mask arrays are kept.
        let lam = Float(lambda)
        let consensusOn = kind == .ties || kind == .dareTies
        var total: Float = 0
        for w in weights { total += w }
        if abs(total) < 1e-8 { total = 1 }
        var out = base
        let byCount = consensus == .frequency
        out.withUnsafeMutableBufferPointer { o in
            for i in 0..<n {
                var acc: Float = 0, div: Float = 0
                if consensusOn {
                    var vote: Float = 0
                    for k in 0..<deltas.count { vote += byCount ? Sparsification.sign(deltas[k][i]) : deltas[k][i] }
                    let elected: Float = vote >= 0 ? 1 : -1
                    for k in 0..<deltas.count where Sparsification.sign(deltas[k][i]) == elected {
                        acc += deltas[k][i]
                        div += weights[k]
                    }
                    if div == 0 { div = 1 }
                } else {
                    for k in 0..<deltas.count { acc += deltas[k][i] }
                    div = total
                }
                var v = acc
                if normalize { v /= div }
                if lambda != 1 { v *= lam }
                o[i] += v
            }
        }
        return out
    }
}

extension GeneralizedTaskArithmetic {
    /// wᵢ·sparsify(Tᵢ − base) for one model, and wᵢ.
    static func weightedDelta(_ m: MergeInput, base: Tensor, kind: Kind, rescale: Bool, method: String, tensor: String,
                              rng: inout SplitMix64) throws -> ([Float], Float) {
        guard kind == .taskArithmetic || (m.density > 0 && m.density <= 1) else {
            throw MergeError.invalidParameter(name: "density", value: "\(m.density)", reason: "must be in (0, 1] (tensor '\(tensor)')")
        }
        let w = Float(try m.requireWeight(method, tensor: tensor))
        var delta = m.tensor - base
        switch kind {
        case .taskArithmetic: break
        case .ties:
            let kept = Sparsification.mergekitMagnitude(delta, density: m.density)
            if rescale && m.density < 1 {
                delta = Sparsification.maskedL1Rescaled(delta, mask: kept.scalars.map { $0 != 0 ? Float(1) : 0 }, rescale: true)
            } else {
                delta = kept
            }
        case .dareTies, .dareLinear:
            delta = Sparsification.mergekitBernoulli(delta, density: m.density, rescale: rescale, rng: &rng)
        }
        delta.withUnsafeMutableBufferPointer { d in for i in 0..<d.count { d[i] *= w } }
        return (delta.scalars, w)
    }
}

/// mergekit `slerp` between the base model's tensor (t = 0) and the other model's (t = 1),
/// over the whole flattened tensor: with v̂ = v/‖v‖ (norms ≤ 1e-8 count as 1) and
/// d = clamp(v̂₀·v̂₁, −1, 1), colinear or antipodal inputs (|d| > `dotThreshold`) interpolate
/// linearly; otherwise θ = acos d and the result is sin((1−t)θ)/sinθ·v₀ + sin(tθ)/sinθ·v₁ on
/// the unnormalized tensors. `t` is resolved per tensor by the config.
public struct SlerpMerge: MergeMethod {
    /// Interpolation position: 0 = base, 1 = the other model.
    public var t: Double
    /// |cos| above which the inputs count as colinear (mergekit's DOT_THRESHOLD).
    public var dotThreshold: Double
    /// A slerp at position `t`.
    public init(t: Double, dotThreshold: Double = 0.9995) { self.t = t; self.dotThreshold = dotThreshold }
    public var name: String { "slerp" }
    public var requiresBase: Bool { true }

    public func merge(_ inputs: consuming TensorMergeInputs, rng: inout SplitMix64) throws -> Tensor {
        try inputs.validateShapes()
        guard let v0 = inputs.base, inputs.models.count == 1 else {
            throw MergeError.invalidConfig("slerp needs base_model and exactly one other model (tensor '\(inputs.name)')")
        }
        return Self.slerp(t: t, v0, inputs.models[0].tensor, dotThreshold: dotThreshold)
    }

    /// The interpolation itself (see the type's documentation); coefficients in Float32 as mergekit.
    public static func slerp(t: Double, _ v0: Tensor, _ v1: Tensor, dotThreshold: Double = 0.9995, eps: Float = 1e-8) -> Tensor {
        precondition(v0.shape == v1.shape, "slerp: shapes differ")
        let tf = Float(t)
        var n0 = v0.frobeniusNorm, n1 = v1.frobeniusNorm
        if !(n0 > eps) { n0 = 1 }
        if !(n1 > eps) { n1 = 1 }
        var dot: Float = 0
        for i in 0..<v0.count { dot += (v0.scalars[i] / n0) * (v1.scalars[i] / n1) }
        dot = min(max(dot, -1), 1)
        let ca: Float, cb: Float
        if Double(abs(dot)) > dotThreshold {
            ca = 1 - tf; cb = tf
        } else {
            let theta = acosf(dot)
            let s = sinf(theta)
            ca = sinf((1 - tf) * theta) / s
            cb = sinf(tf * theta) / s
        }
        return Tensor(shape: v0.shape, scalars: zip(v0.scalars, v1.scalars).map { ca * $0 + cb * $1 })
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
