import Foundation
import Runtime
import Tensors

/// Which adapter family a fit produces (post-block convention Δh = U·φ(Dᵀh) + b, row form
/// Δ = φ(H·D)·Uᵀ + b). Open for later methods (end-to-end KL refinement is another issue's).
public enum AdapterKind: String, Sendable, Codable, CaseIterable {
    /// Δh = b (mean shift).
    case vector
    /// Δh = U Dᵀ h + b, rank r, reduced-rank regression (closed form).
    case linear
    /// Δh = U SiLU(Dᵀ h) + b, rank r, Adam from the linear solution.
    case silu
}

/// How the rank of a linear or SiLU fit is chosen.
public enum RankChoice: Sendable, Equatable {
    /// Exactly r (clamped to what the data supports).
    case fixed(Int)
    /// The smallest r whose held-in relative error of the linear fit is ≤ the target.
    case targetError(Float)
    /// The smallest r whose directions hold ≥ the fraction of the linear fit's energy.
    case energy(Float)
}

/// Settings of the SiLU fit: Adam (β₁ 0.9, β₂ 0.999, ε 1e-8) on minibatches of held-in rows,
/// drawn with `SplitMix64(seed:)`; the best parameters by full held-in loss (checked every
/// `evaluationInterval` steps, the linear initialisation included) are returned, so the SiLU
/// fit never ends worse on held-in tokens than its start.
public struct SiLUTrainingOptions: Sendable, Equatable {
    public var steps: Int
    public var batchSize: Int
    public var learningRate: Float
    public var seed: UInt64
    public var evaluationInterval: Int

    public init(steps: Int = 500, batchSize: Int = 256, learningRate: Float = 1e-2, seed: UInt64 = 0, evaluationInterval: Int = 25) {
        self.steps = steps; self.batchSize = batchSize; self.learningRate = learningRate
        self.seed = seed; self.evaluationInterval = evaluationInterval
    }
}

/// Options of `AdapterFit.fit`.
public struct AdapterFitOptions: Sendable, Equatable {
    public var kind: AdapterKind
    public var rank: RankChoice
    /// Ridge λ of the least-squares step (0 = none).
    public var ridge: Float
    public var silu: SiLUTrainingOptions

    public init(kind: AdapterKind = .linear, rank: RankChoice = .fixed(8), ridge: Float = 0, silu: SiLUTrainingOptions = .init()) {
        self.kind = kind; self.rank = rank; self.ridge = ridge; self.silu = silu
    }
}

/// One layer's fitted adapter and its report.
public struct AdapterFitResult: Sendable {
    /// The adapter (D `[d, r]`, U `[d, r]`, b `[d]`; b alone for `vector`).
    public var layer: SteeringLayer
    public var activation: SteeringActivation
    public var rank: Int
    /// ‖Δ − fit‖_F / ‖Δ‖_F on the held-in rows (used for fitting) and held-out rows.
    public var heldInRelativeError: Float
    public var heldOutRelativeError: Float
    /// Parameters the layer adds (D, U, b).
    public var parameterCount: Int { (layer.down?.count ?? 0) + (layer.up?.count ?? 0) + (layer.bias?.count ?? 0) }
}

/// Activations H `[n, d]` at a site and the target shifts Δ `[n, d]` of the same tokens (rows).
public struct SplitRows: Sendable {
    public var activations: Tensor
    public var shifts: Tensor
    public init(activations: Tensor, shifts: Tensor) { self.activations = activations; self.shifts = shifts }
}

/// Fits per-layer steering adapters to shifts. Inputs are activation matrices H `[N, d]` at the
/// site (tokens as rows) and target shifts Δ `[N, d]` of the same tokens (oracle or first-order).
public enum AdapterFit {
    /// Fits on `split.heldIn` rows, reports on both sets.
    public static func fit(activations h: Tensor, shifts delta: Tensor, split: TokenSplit, options: AdapterFitOptions) throws -> AdapterFitResult {
        guard h.rank == 2, delta.rank == 2, h.rows == delta.rows else {
            throw EquivalenceError.shapeMismatch(what: "shifts", expected: [h.rank == 2 ? h.rows : -1, h.rank == 2 ? h.columns : -1], found: delta.shape.dims)
        }
        guard (split.heldIn + split.heldOut).allSatisfy({ $0 >= 0 && $0 < h.rows }) else {
            throw EquivalenceError.invalidArgument("token split indexes rows outside 0..<\(h.rows)")
        }
        return try fit(heldIn: SplitRows(activations: h.gatherRows(split.heldIn), shifts: delta.gatherRows(split.heldIn)),
                       heldOut: SplitRows(activations: h.gatherRows(split.heldOut), shifts: delta.gatherRows(split.heldOut)),
                       options: options)
    }

    /// Fits on the `heldIn` rows, reports on both sets. `grams`, when given, must be the centred
    /// statistics of exactly the held-in rows (`RegressionGrams(inputs: heldIn.activations,
    /// targets: heldIn.shifts)`), computed once by a caller that also needs them elsewhere.
    public static func fit(heldIn: SplitRows, heldOut: SplitRows, grams: RegressionGrams? = nil, options: AdapterFitOptions) throws -> AdapterFitResult {
        let hi = heldIn.activations, di = heldIn.shifts, ho = heldOut.activations, dout = heldOut.shifts
        guard hi.rank == 2, di.rank == 2, hi.rows == di.rows, ho.rank == 2, dout.rank == 2, ho.rows == dout.rows else {
            throw EquivalenceError.shapeMismatch(what: "shifts", expected: [hi.rank == 2 ? hi.rows : -1, hi.rank == 2 ? hi.columns : -1], found: di.shape.dims)
        }
        if let g = grams, g.count != hi.rows || g.inputColumns != hi.columns || g.targetColumns != di.columns {
            throw EquivalenceError.shapeMismatch(what: "regression statistics", expected: [hi.rows, hi.columns, di.columns],
                                                 found: [g.count, g.inputColumns, g.targetColumns])
        }
        let layer: SteeringLayer, act: SteeringActivation
        switch options.kind {
        case .vector:
            layer = try vector(shifts: di); act = .identity
        case .linear, .silu:
            // A fixed rank needs only that many directions of the fitted values.
            var limit: Int? = nil
            if case let .fixed(r) = options.rank { limit = max(r, 0) }
            let rrr = try ReducedRankRegression(grams: grams ?? RegressionGrams(inputs: hi, targets: di), ridge: options.ridge,
                                                directionLimit: limit)
            let r = chooseRank(rrr, options.rank)
            let lin = steeringLayer(rrr, rank: r)
            if options.kind == .linear {
                layer = lin; act = .identity
            } else {
                layer = try silu(activations: hi, shifts: di, linear: lin, options: options.silu); act = .silu
            }
        }
        return AdapterFitResult(
            layer: layer, activation: act, rank: layer.rank,
            heldInRelativeError: relativeError(layer, activation: act, activations: hi, shifts: di),
            heldOutRelativeError: relativeError(layer, activation: act, activations: ho, shifts: dout))
    }

    /// The rank a choice selects on a fitted regression.
    public static func chooseRank(_ rrr: ReducedRankRegression, _ choice: RankChoice) -> Int {
        switch choice {
        case let .fixed(r): return min(max(r, 0), rrr.maximumRank)
        case let .targetError(e): return rrr.rank(forRelativeError: e)
        case let .energy(f): return rrr.rank(forEnergy: f)
        }
    }

    /// The fixed-vector adapter b = mean(Δ) `[d]`.
    public static func vector(shifts delta: Tensor) throws -> SteeringLayer {
        guard delta.rank == 2, delta.rows > 0 else { throw EquivalenceError.tooFewTokens(what: "vector fit", needed: 1, found: delta.rank == 2 ? delta.rows : 0) }
        return SteeringLayer(bias: Tensor(vector: delta.columnMeans()))
    }

    /// The rank-r linear adapter of a reduced-rank regression: D = W V_r, U = V_r,
    /// b = mean(Δ) − mean(H)·D·Uᵀ. Rank 0 gives the vector adapter.
    public static func steeringLayer(_ rrr: ReducedRankRegression, rank r: Int) -> SteeringLayer {
        let f = rrr.factors(rank: r)
        if r == 0 { return SteeringLayer(bias: Tensor(vector: f.bias)) }
        return SteeringLayer(down: f.down, up: f.up, bias: Tensor(vector: f.bias))
    }

    /// The rank-r linear adapter fitted on all rows of `h`, `delta` (closed form).
    public static func linear(activations h: Tensor, shifts delta: Tensor, rank r: Int, ridge: Float = 0) throws -> SteeringLayer {
        guard h.rank == 2, delta.rank == 2, h.rows == delta.rows else {
            throw EquivalenceError.shapeMismatch(what: "regression targets", expected: [h.rank == 2 ? h.rows : -1, -1], found: delta.shape.dims)
        }
        let rrr = try ReducedRankRegression(grams: RegressionGrams(inputs: h, targets: delta), ridge: ridge, directionLimit: max(r, 0))
        return steeringLayer(rrr, rank: min(max(r, 0), rrr.maximumRank))
    }

    /// ‖Δ − adapter(H)‖_F / ‖Δ‖_F (0 for an empty or all-zero Δ with a zero fit).
    public static func relativeError(_ layer: SteeringLayer, activation: SteeringActivation, activations h: Tensor, shifts delta: Tensor) -> Float {
        guard delta.count > 0 else { return 0 }
        let fit = layer.shift(h, activation: activation)
        let num = (delta - fit).frobeniusNorm, den = delta.frobeniusNorm
        return den == 0 ? (num == 0 ? 0 : .infinity) : num / den
    }

    /// Trains Δ ≈ SiLU(H·D)·Uᵀ + b by Adam on minibatches of rows, starting near the linear
    /// adapter `linear` (D scaled down by c and U up by 2/c, since SiLU(cx) ≈ cx/2 for small c;
    /// b then re-fitted as the mean residual). Inputs and targets are rescaled to unit RMS
    /// while training and the parameters mapped back. Deterministic for a fixed seed and BLAS
    /// thread count.
    public static func silu(activations h: Tensor, shifts delta: Tensor, linear: SteeringLayer, options: SiLUTrainingOptions) throws -> SteeringLayer {
        guard let d0 = linear.down, let u0 = linear.up, linear.rank > 0 else {
            return linear   // rank 0: nothing nonlinear to train
        }
        let n = h.rows, d = h.columns, r = linear.rank
        guard n >= 1 else { throw EquivalenceError.tooFewTokens(what: "SiLU fit", needed: 1, found: n) }
        let sh = max(h.frobeniusNorm / Float(max(h.count, 1)).squareRoot(), 1e-12)
        let sd = max(delta.frobeniusNorm / Float(max(delta.count, 1)).squareRoot(), 1e-12)
        let hs = (1 / sh) * h, ds = (1 / sd) * delta
        // Linear fit on the scaled problem: Δ̃ ≈ H̃ (D sh/sd) Uᵀ + b/sd.
        var dw = (sh / sd) * d0
        let pre = matmul(hs, dw)
        let rmsPre = max(pre.frobeniusNorm / Float(max(pre.count, 1)).squareRoot(), 1e-12)
        let c: Float = 0.25 / rmsPre
        dw = c * dw
        var uw = (2 / c) * u0
        var bw = [Float](repeating: 0, count: d)
        func forward(_ x: Tensor, _ dm: Tensor, _ um: Tensor, _ b: [Float]) -> (a: Tensor, s: Tensor, out: Tensor) {
            let a = matmul(x, dm)
            let s = a.map(SiLU.value)
            return (a, s, matmul(s, um, transposeB: true).addingToEachRow(b))
        }
        // Optimal bias for the initial D, U.
        bw = (ds - forward(hs, dw, uw, bw).out).columnMeans()
        func loss(_ dm: Tensor, _ um: Tensor, _ b: [Float]) -> Double {
            let e = ds - forward(hs, dm, um, b).out
            return Double(e.frobeniusNorm) * Double(e.frobeniusNorm)
        }
        var best = (dw, uw, bw, loss(dw, uw, bw))
        var mD = Tensor(shape: [d, r]), vD = Tensor(shape: [d, r]), mU = Tensor(shape: [d, r]), vU = Tensor(shape: [d, r])
        var mb = [Float](repeating: 0, count: d), vb = mb
        var rng = SplitMix64(seed: options.seed)
        var order = Array(0..<n), cursor = n
        let batch = max(1, min(options.batchSize, n))
        let (b1, b2, eps, lr) = (Float(0.9), Float(0.999), Float(1e-8), options.learningRate)
        func adam(_ p: inout [Float], _ g: [Float], _ m: inout [Float], _ v: inout [Float], _ step: Int) {
            let c1 = 1 - powf(b1, Float(step)), c2 = 1 - powf(b2, Float(step))
            for i in 0..<p.count {
                m[i] = b1 * m[i] + (1 - b1) * g[i]
                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
                p[i] -= lr * (m[i] / c1) / ((v[i] / c2).squareRoot() + eps)
            }
        }
        func adamTensor(_ p: inout Tensor, _ g: Tensor, _ m: inout Tensor, _ v: inout Tensor, _ step: Int) {
            var ps = p.scalars, ms = m.scalars, vs = v.scalars
            adam(&ps, g.scalars, &ms, &vs, step)
            p = Tensor(shape: p.shape, scalars: ps); m = Tensor(shape: m.shape, scalars: ms); v = Tensor(shape: v.shape, scalars: vs)
        }
        if options.steps > 0 {
            for step in 1...options.steps {
                if cursor + batch > n {   // reshuffle (Fisher–Yates) at each epoch
                    for i in stride(from: n - 1, to: 0, by: -1) { order.swapAt(i, Int(rng.next() % UInt64(i + 1))) }
                    cursor = 0
                }
                let idx = Array(order[cursor..<(cursor + batch)]); cursor += batch
                let xb = hs.gatherRows(idx), yb = ds.gatherRows(idx)
                let (a, s, out) = forward(xb, dw, uw, bw)
                let g = (2 / Float(batch)) * (out - yb)                      // ∂L/∂out [B, d]
                let gU = matmul(g, s, transposeA: true)                       // [d, r]
                let gb = g.columnMeans().map { $0 * Float(batch) }            // column sums
                let gs = matmul(g, uw)                                        // [B, r]
                let ga = Tensor(shape: a.shape) { o in
                    for i in 0..<o.count {
                        o[i] = gs.scalars[i] * SiLU.derivative(a.scalars[i])
                    }
                }
                let gD = matmul(xb, ga, transposeA: true)                     // [d, r]
                adamTensor(&dw, gD, &mD, &vD, step)
                adamTensor(&uw, gU, &mU, &vU, step)
                adam(&bw, gb, &mb, &vb, step)
                if step % max(options.evaluationInterval, 1) == 0 || step == options.steps {
                    let l = loss(dw, uw, bw)
                    if l.isFinite && l < best.3 { best = (dw, uw, bw, l) }
                }
            }
        }
        return SteeringLayer(down: (1 / sh) * best.0, up: sd * best.1, bias: Tensor(vector: best.2.map { $0 * sd }))
    }
}
