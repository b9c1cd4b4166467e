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
/// σ². Only `[p, p]` and `[q, q]` matrices are decomposed. With fewer tokens than input features
/// (N < p, rows kept in the Grams) the same fit is solved in the N × N dual instead
/// (`dualSolution`): only `[N, N]` matrices are decomposed, and W is never formed, only W V.
public struct ReducedRankRegression: Sendable {
    /// W V `[p, k]`: the full-rank coefficients along the computed directions (column i for vᵢ),
    /// from which every rank-r fit is read (W V_r is its first r columns).
    public let projectedCoefficients: Tensor
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
        let q = g.crossGram.columns, limit = min(g.count, q, max(directionLimit ?? q, 0))
        let s = try g.rows.map { try Self.dualSolution($0, ridge: Double(ridge), limit: limit) }
            ?? Self.primalSolution(g, ridge: Double(ridge), limit: limit)
        projectedCoefficients = s.projectedCoefficients.tensor
        directions = s.directions.tensor
        singularValues = s.squaredSingularValues.map { Float(max($0, 0).squareRoot()) }
        inputMean = g.inputMean.map(Float.init); targetMean = g.targetMean.map(Float.init)
        targetEnergy = g.targetEnergy
        centredTargetEnergy = g.centredTargetEnergy
        gains = s.gains
    }

    /// The full-rank coefficients W `[p, q]` as far as the computed directions reach: W V Vᵀ,
    /// which is W itself when every direction with σ > 0 was computed (no `directionLimit`
    /// below their number), since W's rows lie in the span of the fitted values' rows.
    public var coefficients: Tensor { matmul(projectedCoefficients, directions, transposeB: true) }

    /// W V `[p, k]`, the leading directions V `[q, k]` of the fitted values F = Xc W, σᵢ² and the gains.
    struct Solution {
        let projectedCoefficients: DoubleMatrix, directions: DoubleMatrix, squaredSingularValues: [Double], gains: [Double]
    }

    /// From the Grams alone: W by the normal equations, V and σ² from FᵀF = Wᵀ(XcᵀXc)W `[q, q]`,
    /// gains 2·vᵢᵀ(YcᵀF)vᵢ − σᵢ².
    static func primalSolution(_ g: RegressionGrams, ridge: Double, limit k: Int) throws -> Solution {
        let w = try solveNormalEquations(g, ridge: ridge)
        let sw = g.inputGram.multiplied(by: w)                       // XcᵀXc W = XcᵀF   [p, q]
        let ftf = w.multiplied(by: sw, transposeSelf: true)          // FᵀF              [q, q]
        let m = g.crossGram.multiplied(by: w, transposeSelf: true)   // Y_cᵀF            [q, q]
        let q = ftf.rows
        let eig = k < q ? try ftf.symmetricEigen(largest: k) : try ftf.symmetricEigen()
        let mv = m.multiplied(by: eig.vectors)                       // column i: M vᵢ
        let nv = eig.vectors.columns
        var vmv = [Double](repeating: 0, count: nv)
        for j in 0..<q { for i in 0..<nv { vmv[i] += eig.vectors[j, i] * mv[j, i] } }
        let v = eig.vectors.leadingColumns(k)
        return Solution(projectedCoefficients: w.multiplied(by: v), directions: v,
                        squaredSingularValues: Array(eig.values.prefix(k)),
                        gains: (0..<k).map { 2 * vmv[$0] - max(eig.values[$0], 0) })
    }

    /// From the rows, with N < p: W = Xcᵀ(K + λI)⁺Yc with K = XcXcᵀ, the same coefficients as
    /// the normal equations (push-through identity; for λ = 0 both are the minimum-norm
    /// solution, since K has the nonzero eigenvalues of XcᵀXc), with only `[N, N]` matrices
    /// decomposed and W itself never formed. K + λI is factored by Cholesky (`SymmetricSolver`), or
    /// pseudo-inverted when numerically singular. The fitted values F = K(K + λI)⁺Yc are Yc itself
    /// when it is factored and λ = 0 (the fit interpolates the held-in rows), Yc − λ(K + λI)⁻¹Yc
    /// with a ridge, K(K + λI)⁺Yc from the pseudo-inverse. FFᵀ `[N, N]` = U Σ² Uᵀ gives
    /// vᵢ = Fᵀuᵢ/σᵢ for the σᵢ above 1e-7·σ₁ (smaller ones carry no resolvable direction),
    /// W V = Xcᵀ(K + λI)⁺(Yc V) (k right-hand sides, not q), and the gains 2σᵢ·uᵢᵀYc vᵢ − σᵢ².
    static func dualSolution(_ rows: RegressionGrams.Rows, ridge: Double, limit: Int) throws -> Solution {
        let x = rows.inputs, y = rows.targets
        let n = x.rows, q = y.columns
        var a = x.rowGram()                                          // K + λI           [N, N]
        for i in 0..<n { a[i, i] += ridge }
        let solver = try SymmetricSolver(a, liftingOnes: rows.centred)
        let f: DoubleMatrix                                          // F                [N, q]
        switch solver {
        case .cholesky where ridge == 0:
            f = y
        case .cholesky:
            var fitted = y
            let alpha = solver.solve(y)
            for i in 0..<fitted.scalars.count { fitted.scalars[i] -= ridge * alpha.scalars[i] }
            f = fitted
        case .pseudoInverse:
            var kernel = a
            for i in 0..<n { kernel[i, i] -= ridge }
            f = kernel.multiplied(by: solver.solve(y))
        }
        let ffT = f.rowGram()                                        // FFᵀ              [N, N]
        let eig = limit < n ? try ffT.symmetricEigen(largest: limit) : try ffT.symmetricEigen()
        let top = max(eig.values.first ?? 0, 0)
        let k = eig.values.prefix(limit).filter { $0 > 1e-14 * top && top > 0 }.count
        let u = eig.vectors.leadingColumns(k)                        // [N, k]
        var v = f.multiplied(by: u, transposeSelf: true)             // Fᵀ U             [q, k]
        let sigma = (0..<k).map { eig.values[$0].squareRoot() }
        for j in 0..<q { for i in 0..<k { v[j, i] /= sigma[i] } }
        let yv = y.multiplied(by: v)                                 // Yc V             [N, k]
        var uyv = [Double](repeating: 0, count: k)
        for t in 0..<n { for i in 0..<k { uyv[i] += u[t, i] * yv[t, i] } }
        let wv = x.multiplied(by: solver.solve(yv), transposeSelf: true)   // W V = Xcᵀ(K + λI)⁺Yc V  [p, k]
        return Solution(projectedCoefficients: wv, directions: v, squaredSingularValues: Array(eig.values.prefix(k)),
                        gains: (0..<k).map { 2 * sigma[$0] * uyv[$0] - eig.values[$0] })
    }

    /// A⁺ for a symmetric positive semi-definite A `[n, n]` (XcᵀXc + λI in the primal, K + λI in
    /// the dual), factored once and applied to right-hand sides `[n, m]`: a Cholesky factor of A
    /// Jacobi-equilibrated and, with `liftingOnes`, lifted (for centred rows K·1 = 0 and the
    /// right-hand sides Yc, Yc V are orthogonal to 1, so giving the all-ones direction the mean
    /// diagonal as its eigenvalue leaves their solutions unchanged); or, when that is numerically
    /// singular (reciprocal condition < 1e-10), the minimum-norm pseudo-inverse from A's
    /// eigen-decomposition with eigenvalues ≤ 1e-12·λ_max counted as zero.
    enum SymmetricSolver {
        /// R of the equilibrated (lifted) matrix S·M·S = RᵀR, with S = diag(`scale`).
        case cholesky(CholeskyFactor, scale: [Double])
        /// The eigenvectors `[n, r]` and eigenvalues of the r eigenvalues above the cutoff.
        case pseudoInverse(vectors: DoubleMatrix, values: [Double])

        /// Factors `a` `[n, n]`.
        init(_ a: DoubleMatrix, liftingOnes: Bool) throws {
            let n = a.rows
            var m = a
            if liftingOnes && n > 0 {
                let c = a.trace / Double(n * n)
                for i in 0..<n { for j in 0..<n { m[i, j] += c } }
            }
            let s = (0..<n).map { m[$0, $0] > 0 ? 1 / m[$0, $0].squareRoot() : 0 }
            var scaled = m.scaled(rows: s, columns: s)
            for i in 0..<n where s[i] == 0 { scaled[i, i] = 1 }   // a zero row and column: the solution's row stays 0
            if let r = try scaled.cholesky(minimumReciprocalCondition: 1e-10) {
                self = .cholesky(r, scale: s)
                return
            }
            let eig = try a.symmetricEigen()
            let cutoff = 1e-12 * max(eig.values.first ?? 0, 0)
            let rank = eig.values.filter { $0 > cutoff }.count
            self = .pseudoInverse(vectors: eig.vectors.leadingColumns(rank), values: Array(eig.values.prefix(rank)))
        }

        /// A⁺ B for B `[n, m]`.
        func solve(_ b: DoubleMatrix) -> DoubleMatrix {
            switch self {
            case let .cholesky(r, s):
                let ones = [Double](repeating: 1, count: b.columns)
                return r.solve(r.solveTransposed(b.scaled(rows: s, columns: ones))).scaled(rows: s, columns: ones)
            case let .pseudoInverse(v, values):
                var vtb = v.multiplied(by: b, transposeSelf: true)   // [r, m]
                for i in 0..<values.count { for j in 0..<b.columns { vtb[i, j] /= values[i] } }
                return v.multiplied(by: vtb)
            }
        }
    }

    /// W = (XcᵀXc + λI)⁺ XcᵀYc (see the type's doc).
    static func solveNormalEquations(_ g: RegressionGrams, ridge: Double) throws -> DoubleMatrix {
        var a = g.inputGram
        for i in 0..<a.rows { a[i, i] += ridge }
        return try SymmetricSolver(a, liftingOnes: false).solve(g.crossGram)
    }

    /// Largest usable rank (number of singular directions).
    public var maximumRank: Int { directions.columns }

    /// Factors of the rank-r fit: `down` = W V_r `[p, r]`, `up` = V_r `[q, r]`, `bias` =
    /// mean(Y) − mean(X)·W_r `[q]`; so X W_r + b = (X·down)·upᵀ + bias.
    public func factors(rank r: Int) -> (down: Tensor, up: Tensor, bias: [Float]) {
        precondition(r >= 0 && r <= maximumRank, "rank \(r) outside 0...\(maximumRank)")
        func leading(_ m: Tensor) -> Tensor {
            let n = m.rows, k = m.columns
            return Tensor(shape: [n, r]) { o in
                m.withUnsafeBufferPointer { src in
                    for i in 0..<n { for j in 0..<r { o[i * r + j] = src[i * k + j] } }
                }
            }
        }
        let vr = leading(directions), down = leading(projectedCoefficients)
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
