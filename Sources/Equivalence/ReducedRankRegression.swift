import Tensors

/// Reduced-rank regression with optional intercept and ridge, tokens as rows.
///
/// Given inputs X `[N, p]` and targets Y `[N, q]`: center both (when `intercept`), solve
/// W = argmin ‖X_c W − Y_c‖²_F + λ‖W‖²_F (`[p, q]`), take the fitted values F = X_c W, their
/// right singular vectors V (`[q, k]`, columns, σ descending, k = min(N, q)), and for rank r the
/// coefficient W_r = W V_r V_rᵀ with intercept b = mean(Y) − mean(X)·W_r, so Y ≈ X W_r + b.
///
/// Everything comes from the Grams (`RegressionGrams`, Float64, one pass of `dsyrk`/`dgemm` over
/// the tokens): W from the normal equations (XcᵀXc + λI) W = XcᵀYc, solved by Cholesky after
/// Jacobi equilibration (the inputs' columns scaled to unit norm, which takes out the per-feature
/// scale spread of residual streams); when the equilibrated matrix is numerically singular
/// (reciprocal condition < 1e-10) by the minimum-norm pseudo-inverse from its eigen-decomposition,
/// eigenvalues ≤ 1e-12·λ_max counted as zero (what LAPACK `gelsd` returns on the rows, to the
/// Grams' resolution). Then FᵀF = Wᵀ(XcᵀXc)W `[q, q]`, whose eigenvectors are V and eigenvalues
/// σ². Only `[p, p]` and `[q, q]` matrices are decomposed.
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
        try self.init(grams: RegressionGrams(inputs: x, targets: y, intercept: intercept), ridge: ridge)
    }

    /// Fits from precomputed statistics of the rows (`RegressionGrams`; centred Grams give the
    /// regression with intercept, uncentred ones the regression without).
    /// - Throws: `EquivalenceError.tooFewTokens` / `.invalidArgument`, or a LAPACK failure.
    ///
    /// `directionLimit`, when given, computes only the leading that many directions (the
    /// `[q, q]` eigenproblem solved for those alone), which caps `maximumRank`; ranks chosen by
    /// error or energy then see only those directions.
    public init(grams g: RegressionGrams, ridge: Float = 0, directionLimit: Int? = nil) throws {
        guard g.count >= 2 else { throw EquivalenceError.tooFewTokens(what: "reduced-rank regression", needed: 2, found: g.count) }
        guard ridge >= 0, ridge.isFinite else { throw EquivalenceError.invalidArgument("ridge must be ≥ 0, got \(ridge)") }
        let w = try Self.solveNormalEquations(g, ridge: Double(ridge))
        let sw = g.inputGram.multiplied(by: w)                       // XcᵀXc W = XcᵀF   [p, q]
        let ftf = w.multiplied(by: sw, transposeSelf: true)          // FᵀF              [q, q]
        let m = g.crossGram.multiplied(by: w, transposeSelf: true)   // Y_cᵀF            [q, q]
        let q = ftf.rows, k = min(g.count, q, max(directionLimit ?? q, 0))
        let eig = k < q ? try ftf.symmetricEigen(largest: k) : try ftf.symmetricEigen()
        let mv = m.multiplied(by: eig.vectors)                       // column i: M vᵢ
        let nv = eig.vectors.columns
        var vmv = [Double](repeating: 0, count: nv)
        for j in 0..<q { for i in 0..<nv { vmv[i] += eig.vectors[j, i] * mv[j, i] } }
        let gains = (0..<k).map { 2 * vmv[$0] - max(eig.values[$0], 0) }
        coefficients = w.tensor
        directions = eig.vectors.leadingColumns(k).tensor
        singularValues = eig.values.prefix(k).map { Float(max($0, 0).squareRoot()) }
        inputMean = g.inputMean.map(Float.init); targetMean = g.targetMean.map(Float.init)
        targetEnergy = g.targetEnergy
        centredTargetEnergy = g.centredTargetEnergy
        self.gains = gains
    }

    /// W = (XcᵀXc + λI)⁺ XcᵀYc: Cholesky on the Jacobi-equilibrated system, or the minimum-norm
    /// pseudo-inverse when that system is numerically singular (see the type's doc).
    static func solveNormalEquations(_ g: RegressionGrams, ridge: Double) throws -> DoubleMatrix {
        let p = g.inputGram.rows, q = g.crossGram.columns
        var a = g.inputGram
        for i in 0..<p { a[i, i] += ridge }
        let s = (0..<p).map { a[$0, $0] > 0 ? 1 / a[$0, $0].squareRoot() : 0 }
        var scaled = a.scaled(rows: s, columns: s)
        for i in 0..<p where s[i] == 0 { scaled[i, i] = 1 }       // a zero column: W's row stays 0
        let ones = [Double](repeating: 1, count: q)
        if let x = try scaled.choleskySolve(g.crossGram.scaled(rows: s, columns: ones), minimumReciprocalCondition: 1e-10) {
            return x.scaled(rows: s, columns: ones)
        }
        let eig = try a.symmetricEigen()
        let cutoff = 1e-12 * max(eig.values.first ?? 0, 0)
        let r = eig.values.filter { $0 > cutoff }.count
        let v = eig.vectors.leadingColumns(r)
        var vtb = v.multiplied(by: g.crossGram, transposeSelf: true)   // [r, q]
        for i in 0..<r { for j in 0..<q { vtb[i, j] /= eig.values[i] } }
        return v.multiplied(by: vtb)
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
