import Tensors

/// Reduced-rank regression with optional intercept and ridge, tokens as rows.
///
/// Given inputs X `[N, p]` and targets Y `[N, q]`: center both (when `intercept`), solve
/// W = argmin ‖X_c W − Y_c‖²_F + λ‖W‖²_F (`[p, q]`, LAPACK `gelsd` in Float64 on the stacked
/// system [X_c; √λ I] W ≈ [Y_c; 0]), take the fitted values F = X_c W, their right singular
/// vectors V (`[q, k]`, columns, σ descending; Float64 `gesvd`, U never formed), and for rank r
/// the coefficient W_r = W V_r V_rᵀ with intercept b = mean(Y) − mean(X)·W_r, so Y ≈ X W_r + b.
public struct ReducedRankRegression: Sendable {
    /// Full-rank coefficients W `[p, q]`.
    public let coefficients: Tensor
    /// Right singular vectors of the fitted values, `[q, k]`, column i for σᵢ (descending).
    public let directions: Tensor
    /// Singular values of the fitted values F = X_c W, descending.
    public let singularValues: [Float]
    /// Column means of X and Y (zeros without intercept).
    public let inputMean: [Float], targetMean: [Float]
    /// ‖Y‖²_F (uncentred), ‖Y_c‖²_F, and per direction i: 2⟨Y_c vᵢ, F vᵢ⟩ − σᵢ², the decrease of
    /// the squared residual when direction i is added (exact with or without ridge).
    let targetEnergy: Double, centredTargetEnergy: Double, gains: [Double]

    /// Fits the full-rank problem and the singular directions of its fitted values.
    /// - Throws: `EquivalenceError.shapeMismatch` / `.tooFewTokens`, or a LAPACK failure.
    public init(inputs x: Tensor, targets y: Tensor, ridge: Float = 0, intercept: Bool = true) throws {
        guard x.rank == 2, y.rank == 2, x.rows == y.rows else {
            throw EquivalenceError.shapeMismatch(what: "regression targets", expected: [x.rank == 2 ? x.rows : -1, -1], found: y.shape.dims)
        }
        guard x.rows >= 2 else { throw EquivalenceError.tooFewTokens(what: "reduced-rank regression", needed: 2, found: x.rows) }
        guard ridge >= 0, ridge.isFinite else { throw EquivalenceError.invalidArgument("ridge must be ≥ 0, got \(ridge)") }
        let p = x.columns
        let mx = intercept ? x.columnMeans() : [Float](repeating: 0, count: p)
        let my = intercept ? y.columnMeans() : [Float](repeating: 0, count: y.columns)
        let xc = intercept ? x.addingToEachRow(mx.map { -$0 }) : x
        let yc = intercept ? y.addingToEachRow(my.map { -$0 }) : y
        var a = xc, b = yc
        if ridge > 0 {
            var reg = Tensor(shape: [p, p])
            let s = ridge.squareRoot()
            for i in 0..<p { reg[i, i] = s }
            a = Tensor.concatenatingRows([xc, reg])
            b = Tensor.concatenatingRows([yc, Tensor(shape: [p, y.columns])])
        }
        let w = try leastSquares(a, b, precision: .double).solution
        let f = matmul(xc, w)
        let dec = try rightSingularVectors(f)
        let v = dec.vt.transposed()
        let m = matmul(yc, f, transposeA: true)          // [q, q] = Y_cᵀ F
        let mv = matmul(m, v), fv = matmul(f, v)        // columns i: M vᵢ, F vᵢ
        var gains: [Double] = []
        for i in 0..<v.columns {
            var a = 0.0, s2 = 0.0
            for j in 0..<v.rows { a += Double(v[j, i]) * Double(mv[j, i]) }
            for t in 0..<fv.rows { s2 += Double(fv[t, i]) * Double(fv[t, i]) }
            gains.append(2 * a - s2)
        }
        coefficients = w; directions = v; singularValues = dec.singularValues
        inputMean = mx; targetMean = my
        targetEnergy = Double(y.frobeniusNorm) * Double(y.frobeniusNorm)
        centredTargetEnergy = Double(yc.frobeniusNorm) * Double(yc.frobeniusNorm)
        self.gains = gains
    }

    /// Largest usable rank (number of singular directions).
    public var maximumRank: Int { directions.columns }

    /// Factors of the rank-r fit: `down` = W V_r `[p, r]`, `up` = V_r `[q, r]`, `bias` =
    /// mean(Y) − mean(X)·W_r `[q]`; so X W_r + b = (X·down)·upᵀ + bias.
    public func factors(rank r: Int) -> (down: Tensor, up: Tensor, bias: [Float]) {
        precondition(r >= 0 && r <= maximumRank, "rank \(r) outside 0...\(maximumRank)")
        let q = directions.rows
        let vr = Tensor(shape: [q, r]) { o in
            for i in 0..<q { for j in 0..<r { o[i * r + j] = directions[i, j] } }
        }
        let down = matmul(coefficients, vr)
        let wr = matmul(down, vr, transposeB: true)
        let mw = matmul(Tensor(shape: [1, inputMean.count], scalars: inputMean), wr).scalars
        return (down, vr, zip(targetMean, mw).map { $0 - $1 })
    }

    /// Relative training error ‖Y − (X W_r + b)‖_F / ‖Y‖_F of the rank-r fit, from the
    /// decomposition (no refit): ‖Y_c‖² − Σ_{i≤r} gainᵢ, over ‖Y‖².
    public func relativeError(rank r: Int) -> Float {
        precondition(r >= 0 && r <= maximumRank, "rank \(r) outside 0...\(maximumRank)")
        guard targetEnergy > 0 else { return 0 }
        let res = centredTargetEnergy - gains.prefix(r).reduce(0, +)
        return Float((max(res, 0) / targetEnergy).squareRoot())
    }

    /// The smallest rank whose training relative error is ≤ `target` (the maximum rank when none is).
    public func rank(forRelativeError target: Float) -> Int {
        for r in 0...maximumRank where relativeError(rank: r) <= target { return r }
        return maximumRank
    }

    /// The smallest rank whose directions hold ≥ `fraction` of the fitted values' energy Σσᵢ².
    public func rank(forEnergy fraction: Float) -> Int {
        let e = singularValues.map { Double($0) * Double($0) }
        let total = e.reduce(0, +)
        guard total > 0 else { return 0 }
        var acc = 0.0
        for (i, x) in e.enumerated() {
            acc += x
            if acc >= Double(fraction) * total * (1 - 1e-12) { return i + 1 }
        }
        return e.count
    }
}
