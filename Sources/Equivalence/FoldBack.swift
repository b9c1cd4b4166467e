import Foundation
import Runtime
import Tensors

/// Settings of `FoldBack.fold`.
public struct FoldBackOptions: Sendable, Equatable {
    /// Projections the least-squares delta may change (down only by default).
    public var projections: Set<LlamaProjection>
    /// When set and the projections are down only: the delta is a reduced-rank (LoRA) fit of
    /// this rank instead of a dense one.
    public var rank: Int?
    /// Largest accepted relative residual on the calibration tokens.
    public var maxError: Float
    /// Iterations of CGLS when more than down_proj is solved for.
    public var iterations: Int
    /// Use the exact factorisation ΔW_d = U·Dᵀ·W_d when the adapter is linear, bias-free and
    /// sits at `mlpOutput` (false forces least squares, e.g. to compare).
    public var preferExactFactorization: Bool

    public init(projections: Set<LlamaProjection> = [.down], rank: Int? = nil, maxError: Float = 0.05, iterations: Int = 200,
                preferExactFactorization: Bool = true) {
        self.projections = projections; self.rank = rank; self.maxError = maxError; self.iterations = iterations
        self.preferExactFactorization = preferExactFactorization
    }
}

/// A weight delta that stands for a steering adapter, with its measured residual.
public struct FoldedWeights: Sendable {
    /// The delta (a LoRA when exact or rank-limited; dense otherwise).
    public var delta: LayerWeightDelta
    /// ‖(Z(W+ΔW) − Z(W)) − Δ_target‖_F / ‖Δ_target‖_F on the calibration tokens, Z recomputed
    /// exactly with the changed weights (every order counted).
    public var residual: Float
    /// The same with the first-order (JVP) change instead of the exact one.
    public var linearizedResidual: Float
    /// Whether the delta came from the exact MLP-path factorisation ΔW_d = A·W_d.
    public var isExactFactorization: Bool
    /// Unknowns of the fit (entries of the solved ΔW, or LoRA factors) and equations
    /// (calibration tokens × d). With more unknowns than equations the linearised residual can
    /// be driven to zero by memorising; trust `residual` on held-out tokens then.
    public var unknowns: Int
    public var equations: Int
    /// The exact relative residual on held-out sequences (not used for fitting), when given.
    public var heldOutResidual: Float?
}

/// Why a fold-back was refused.
public enum FoldBackRefusal: Sendable, Equatable, CustomStringConvertible {
    /// The adapter has a bias b ≠ 0; Llama layers have no bias that could hold it.
    case biasNotRepresentable(biasNorm: Float)
    /// The best delta over the chosen projections leaves this relative residual.
    case residualTooLarge(residual: Float, threshold: Float)

    public var description: String {
        switch self {
        case let .biasNotRepresentable(n): return "the adapter has a bias (‖b‖ = \(n)); the block's down_proj has no bias to hold it"
        case let .residualTooLarge(r, t): return "the closest weight delta leaves a relative residual of \(r) (> \(t)) on the calibration tokens"
        }
    }
}

/// The result of a fold-back: accepted, or refused with the reasons and the best delta found.
public enum FoldBackOutcome: Sendable {
    case folded(FoldedWeights)
    case refused([FoldBackRefusal], best: FoldedWeights)

    /// The best delta either way.
    public var weights: FoldedWeights {
        switch self {
        case let .folded(w): return w
        case let .refused(_, w): return w
        }
    }
}

/// Activation → weights: finds the weight delta of one layer that reproduces a steering
/// adapter's effect on the block output, on recorded calibration sequences.
///
/// Of a post-block linear steer A·Z + b = A·X + A·Attn + A·h + b, only the MLP-path part folds
/// exactly: ΔW_d = A·W_d, for A = U·Dᵀ a rank-r LoRA with B = U, A_lora = Dᵀ·W_d. The rest is fitted
/// by least squares over the chosen projections (down only: a direct LAPACK solve, exact because
/// down_proj's effect is linear; several projections: CGLS on the linearised block using the JVP
/// and its adjoint), then measured exactly by re-running the block.
public enum FoldBack {
    /// Refuses an adapter that does not shift every position: a weight change acts on every
    /// token, so an adapter of the last prompt token only has no fold (call before calibrating).
    /// - Throws: `EquivalenceError.unsupportedConfiguration` for `SteeringPositions.last`.
    public static func requireEveryPosition(_ positions: SteeringPositions) throws {
        guard positions == .all else {
            throw EquivalenceError.unsupportedConfiguration("the adapter shifts the last prompt token only (positions last); a weight change acts on every token, so it has no fold")
        }
    }

    /// Folds `adapter` (Δ = U·φ(Dᵀa) + b applied at `site` of this layer) into weights.
    /// - Parameters:
    ///   - evaluator: the layer.
    ///   - sequences: calibration sequences recorded with `evaluator.forward` (unsteered).
    ///   - heldOut: further recorded sequences, used only to measure `heldOutResidual`.
    /// - Returns: `.folded` when the adapter has no bias and the residual (the larger of the
    ///   calibration and held-out ones) ≤ `options.maxError`, else `.refused` with every reason
    ///   and the best delta found.
    public static func fold(_ adapter: SteeringLayer, activation: SteeringActivation = .identity, site: HookSiteKind,
                            evaluator: FirstOrderMap, sequences: [BlockActivations], heldOut: [BlockActivations] = [],
                            options: FoldBackOptions = .init()) throws -> FoldBackOutcome {
        guard !sequences.isEmpty else { throw EquivalenceError.tooFewTokens(what: "fold-back", needed: 1, found: 0) }
        guard !options.projections.isEmpty else { throw EquivalenceError.invalidArgument("fold-back needs at least one projection") }
        let d = evaluator.config.hiddenSize
        if let dn = adapter.down, let up = adapter.up {
            guard dn.rank == 2, dn.rows == d, up.shape == dn.shape else {
                throw EquivalenceError.shapeMismatch(what: "adapter down/up", expected: [d, adapter.rank], found: dn.shape.dims)
            }
        }
        let biasNorm = adapter.bias?.frobeniusNorm ?? 0
        // Targets: the exact change of the block output that the adapter causes.
        let iv = BlockIntervention(site: site, layer: adapter, activation: activation)
        let targets = try sequences.map { try evaluator.forward($0.input, positionOffset: $0.positions.lowerBound, intervention: iv).output - $0.output }

        var weights: FoldedWeights
        if options.preferExactFactorization, site == .mlpOutput, activation == .identity, biasNorm == 0, options.projections.contains(.down),
           let dn = adapter.down, let up = adapter.up {
            // X ↦ X + X·D·Uᵀ, i.e. ΔW_d = U·Dᵀ·W_d: a rank-r LoRA, exact at every order.
            let lora = ProjectionDelta.lowRank(a: matmul(dn, evaluator.matrix(.down), transposeA: true), b: up, scale: 1)
            weights = try measure(LayerWeightDelta([.down: lora]), exact: true, evaluator: evaluator, sequences: sequences, targets: targets)
        } else if options.projections == [.down] {
            let m = Tensor.concatenatingRows(sequences.map(\.hidden))
            let y = Tensor.concatenatingRows(targets)
            let delta: ProjectionDelta
            if let r = options.rank {
                let rrr = try ReducedRankRegression(inputs: m, targets: y, intercept: false)
                let f = rrr.factors(rank: min(max(r, 0), rrr.maximumRank))
                // m·ΔW_dᵀ ≈ (m·down)·upᵀ ⇒ ΔW_d = up·downᵀ: LoRA B = up [d, r], A = downᵀ [r, d_ff].
                delta = .lowRank(a: f.down.transposed(), b: f.up, scale: 1)
            } else {
                delta = .dense(try leastSquares(m, y, precision: .double).solution.transposed())
            }
            weights = try measure(LayerWeightDelta([.down: delta]), exact: false, evaluator: evaluator, sequences: sequences, targets: targets)
        } else {
            let delta = try leastSquaresDelta(evaluator: evaluator, sequences: sequences, targets: targets,
                                              projections: options.projections, iterations: options.iterations)
            weights = try measure(delta, exact: false, evaluator: evaluator, sequences: sequences, targets: targets)
        }
        if !heldOut.isEmpty {
            let heldTargets = try heldOut.map { try evaluator.forward($0.input, positionOffset: $0.positions.lowerBound, intervention: iv).output - $0.output }
            weights.heldOutResidual = try measure(weights.delta, exact: weights.isExactFactorization, evaluator: evaluator,
                                                  sequences: heldOut, targets: heldTargets).residual
        }
        var reasons: [FoldBackRefusal] = []
        if biasNorm > 0 { reasons.append(.biasNotRepresentable(biasNorm: biasNorm)) }
        let worst = max(weights.residual, weights.heldOutResidual ?? weights.residual)
        if !(worst <= options.maxError) { reasons.append(.residualTooLarge(residual: worst, threshold: options.maxError)) }
        return reasons.isEmpty ? .folded(weights) : .refused(reasons, best: weights)
    }

    /// Exact and first-order residuals of `delta` against the targets.
    static func measure(_ delta: LayerWeightDelta, exact: Bool, evaluator: FirstOrderMap,
                        sequences: [BlockActivations], targets: [Tensor]) throws -> FoldedWeights {
        let changed = try evaluator.applying(delta)
        var num = 0.0, lin = 0.0, den = 0.0
        for (a, target) in zip(sequences, targets) {
            let z = try changed.forward(a.input, positionOffset: a.positions.lowerBound).output
            let e = (z - a.output) - target
            let j = try evaluator.jvp(a, delta: delta).output - target
            num += Double(e.frobeniusNorm) * Double(e.frobeniusNorm)
            lin += Double(j.frobeniusNorm) * Double(j.frobeniusNorm)
            den += Double(target.frobeniusNorm) * Double(target.frobeniusNorm)
        }
        let scale = den > 0 ? 1 / den : 0
        let unknowns = delta.projections.values.reduce(0) { n, d in
            switch d {
            case let .dense(w): return n + w.count
            case let .lowRank(a, b, _): return n + a.count + b.count
            }
        }
        return FoldedWeights(delta: delta, residual: Float((num * scale).squareRoot()),
                             linearizedResidual: Float((lin * scale).squareRoot()), isExactFactorization: exact,
                             unknowns: unknowns, equations: targets.reduce(0) { $0 + $1.count }, heldOutResidual: nil)
    }

    /// The dense ΔW over `projections` minimising Σ_s ‖J_s(ΔW) − Δ_s‖²_F, J_s the block's JVP on
    /// calibration sequence s and Δ_s `[T_s, d]` the wanted change of its block output (e.g. an
    /// adapter's effect or an oracle shift). CGLS with the JVP and its adjoint
    /// (`weightCotangent`), started at 0 so it tends to the minimum-norm solution; stops after
    /// `iterations` or when the normal-equation residual has fallen by 10⁻⁷.
    public static func leastSquaresDelta(evaluator: FirstOrderMap, sequences: [BlockActivations], targets: [Tensor],
                                         projections: Set<LlamaProjection>, iterations: Int = 200) throws -> LayerWeightDelta {
        guard sequences.count == targets.count, zip(sequences, targets).allSatisfy({ $0.output.shape == $1.shape }) else {
            throw EquivalenceError.invalidArgument("fold-back targets must match the calibration sequences' block outputs in number and shape")
        }
        let ps = projections.sorted()
        func apply(_ x: [LlamaProjection: Tensor]) throws -> [Tensor] {
            let delta = LayerWeightDelta(Dictionary(uniqueKeysWithValues: x.map { ($0.key, ProjectionDelta.dense($0.value)) }))
            return try sequences.map { try evaluator.jvp($0, delta: delta).output }
        }
        func adjoint(_ r: [Tensor]) throws -> [LlamaProjection: Tensor] {
            var acc: [LlamaProjection: Tensor] = [:]
            for (a, g) in zip(sequences, r) {
                for (p, t) in try evaluator.weightCotangent(a, outputCotangent: g, projections: projections) {
                    if acc[p] == nil { acc[p] = t } else { accumulate(&acc[p]!, t) }
                }
            }
            return acc
        }
        func norm2(_ x: [LlamaProjection: Tensor]) -> Double { ps.reduce(0) { $0 + frobeniusDot(x[$1]!, x[$1]!) } }
        func norm2(_ x: [Tensor]) -> Double { x.reduce(0) { $0 + frobeniusDot($1, $1) } }

        var x = Dictionary(uniqueKeysWithValues: ps.map { ($0, Tensor(shape: Shape(evaluator.weights[$0].dims))) })
        var r = targets
        var s = try adjoint(r)
        var p = s
        var gamma = norm2(s)
        let gamma0 = gamma
        if iterations > 0 && gamma > 0 {
            for _ in 0..<iterations {
                let q = try apply(p)
                let qq = norm2(q)
                guard qq > 0 else { break }
                let alpha = Float(gamma / qq)
                for k in ps { accumulate(&x[k]!, p[k]!, alpha: alpha) }
                for i in r.indices { accumulate(&r[i], q[i], alpha: -alpha) }
                s = try adjoint(r)
                let g2 = norm2(s)
                if g2 <= 1e-14 * gamma0 { break }
                let beta = Float(g2 / gamma)
                for k in ps {
                    var np = s[k]!
                    accumulate(&np, p[k]!, alpha: beta)
                    p[k] = np
                }
                gamma = g2
            }
        }
        return LayerWeightDelta(Dictionary(uniqueKeysWithValues: x.map { ($0.key, ProjectionDelta.dense($0.value)) }))
    }
}
