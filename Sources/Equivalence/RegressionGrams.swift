import Tensors

/// Sufficient statistics of a least-squares regression of targets Y `[N, q]` on inputs X `[N, p]`
/// (tokens as rows), from which `ReducedRankRegression` solves without touching the rows again:
/// the centred Gram XcᵀXc `[p, p]`, the centred cross product XcᵀYc `[p, q]`, ‖Yc‖²_F and ‖Y‖²_F,
/// and the column means (zeros for a regression without intercept, whose Grams are uncentred).
/// With fewer rows than input features (N < p) the rows are kept too, for the N × N dual solve.
///
/// Precision: the rows are widened to Float64 and the products accumulated by `dsyrk`/`dgemm` in
/// Float64, so the Grams hold the Float32 data's information to ~1e-16 relative; solving from
/// them squares the condition number of X, which `ReducedRankRegression` counters with Jacobi
/// equilibration (see there).
public struct RegressionGrams: Sendable {
    /// N, the number of rows.
    public let count: Int
    /// Column means of X `[p]` and Y `[q]` (zeros without intercept).
    public let inputMean: [Double], targetMean: [Double]
    /// XcᵀXc `[p, p]`.
    public let inputGram: DoubleMatrix
    /// XcᵀYc `[p, q]`.
    public let crossGram: DoubleMatrix
    /// ‖Yc‖²_F and ‖Y‖²_F (uncentred).
    public let centredTargetEnergy: Double, targetEnergy: Double
    /// The rows themselves when there are fewer of them than input features (N < p), where
    /// XcᵀXc is singular and `ReducedRankRegression` solves in the N × N dual; nil otherwise.
    public let rows: Rows?

    /// Rows kept for the dual solve: Xc `[N, p]` and Yc `[N, q]` as the Grams were formed from them
    /// (centred, or both uncentred for a regression without intercept).
    public struct Rows: Sendable {
        /// Xc `[N, p]`.
        public let inputs: DoubleMatrix
        /// Yc `[N, q]`.
        public let targets: DoubleMatrix
        /// Whether both were centred (then the all-ones vector is in the null space of XcXcᵀ).
        public let centred: Bool
    }

    /// The Grams of inputs and targets prepared as `CentredRows` (both centred, or both not). The
    /// rows are kept (shared, not copied) when N < p.
    public init(inputs x: CentredRows, targets y: CentredRows) {
        precondition(x.count == y.count, "RegressionGrams: \(x.count) input rows, \(y.count) target rows")
        precondition(x.isCentred == y.isCentred, "RegressionGrams: inputs and targets centred differently")
        count = x.count
        inputMean = x.mean; targetMean = y.mean
        inputGram = x.centred.gram()
        crossGram = x.centred.multiplied(by: y.centred, transposeSelf: true)
        centredTargetEnergy = y.centred.sumOfSquares
        targetEnergy = y.energy
        rows = x.count < x.centred.columns ? Rows(inputs: x.centred, targets: y.centred, centred: x.isCentred) : nil
    }

    /// The Grams of `x` `[N, p]` and `y` `[N, q]`, centred when `intercept`.
    public init(inputs x: Tensor, targets y: Tensor, intercept: Bool = true) {
        self.init(inputs: CentredRows(x, centre: intercept), targets: CentredRows(y, centre: intercept))
    }

    private init(count: Int, inputMean: [Double], targetMean: [Double], inputGram: DoubleMatrix, crossGram: DoubleMatrix,
                 centredTargetEnergy: Double, targetEnergy: Double, rows: Rows?) {
        self.count = count; self.inputMean = inputMean; self.targetMean = targetMean
        self.inputGram = inputGram; self.crossGram = crossGram
        self.centredTargetEnergy = centredTargetEnergy; self.targetEnergy = targetEnergy
        self.rows = rows
    }

    /// The same rows' statistics for a regression without intercept: XᵀX = XcᵀXc + N·m_x m_xᵀ,
    /// XᵀY = XcᵀYc + N·m_x m_yᵀ, ‖Y‖² for both energies, zero means (no new pass over the rows;
    /// kept rows get their means back).
    public var uncentred: RegressionGrams {
        var g = inputGram, c = crossGram
        let n = Double(count)
        g.addOuterProduct(inputMean, inputMean, alpha: n)
        c.addOuterProduct(inputMean, targetMean, alpha: n)
        let ones = [Double](repeating: 1, count: count)
        let uncentredRows = rows.map { r -> Rows in
            guard r.centred else { return r }
            var x = r.inputs, y = r.targets
            x.addOuterProduct(ones, inputMean)
            y.addOuterProduct(ones, targetMean)
            return Rows(inputs: x, targets: y, centred: false)
        }
        return RegressionGrams(count: count, inputMean: [Double](repeating: 0, count: inputMean.count),
                               targetMean: [Double](repeating: 0, count: targetMean.count),
                               inputGram: g, crossGram: c, centredTargetEnergy: targetEnergy, targetEnergy: targetEnergy,
                               rows: uncentredRows)
    }

    /// The same statistics without the rows, so `ReducedRankRegression` takes the primal (p × p)
    /// path whatever N is (tests comparing the two solves).
    public var droppingRows: RegressionGrams {
        RegressionGrams(count: count, inputMean: inputMean, targetMean: targetMean, inputGram: inputGram, crossGram: crossGram,
                        centredTargetEnergy: centredTargetEnergy, targetEnergy: targetEnergy, rows: nil)
    }
}
