import Tensors

/// Sufficient statistics of a least-squares regression of targets Y `[N, q]` on inputs X `[N, p]`
/// (tokens as rows), from which `ReducedRankRegression` solves without touching the rows again:
/// the centred Gram XcᵀXc `[p, p]`, the centred cross product XcᵀYc `[p, q]`, ‖Yc‖²_F and ‖Y‖²_F,
/// and the column means (zeros for a regression without intercept, whose Grams are uncentred).
/// With fewer rows than input features (N < p) the rows are kept instead, for the N × N dual
/// solve, and the `[p, p]` Grams are not formed unless asked for.
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
    /// ‖Yc‖²_F and ‖Y‖²_F (uncentred).
    public let centredTargetEnergy: Double, targetEnergy: Double
    /// The rows themselves when there are fewer of them than input features (N < p), where
    /// XcᵀXc is singular and `ReducedRankRegression` solves in the N × N dual; nil otherwise.
    public let rows: Rows?
    /// The `[p, p]` and `[p, q]` products, formed at init when the rows are not kept.
    private let products: Products?

    /// XcᵀXc and XcᵀYc.
    private struct Products: Sendable {
        let inputGram: DoubleMatrix, crossGram: DoubleMatrix
    }

    /// p, the number of input features.
    public var inputColumns: Int { inputMean.count }
    /// q, the number of targets.
    public var targetColumns: Int { targetMean.count }

    /// XcᵀXc `[p, p]`. With the rows kept (N < p) it is not formed at init (the dual solve never
    /// reads it) but from the rows on each access.
    public var inputGram: DoubleMatrix { products?.inputGram ?? rows!.inputs.gram() }
    /// XcᵀYc `[p, q]`; formed like `inputGram`.
    public var crossGram: DoubleMatrix {
        products?.crossGram ?? rows!.inputs.multiplied(by: rows!.targets, transposeSelf: true)
    }

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

    /// The statistics of inputs and targets prepared as `CentredRows` (both centred, or both
    /// not): the Grams when N ≥ p, the rows themselves (shared, not copied) when N < p.
    public init(inputs x: CentredRows, targets y: CentredRows) {
        precondition(x.count == y.count, "RegressionGrams: \(x.count) input rows, \(y.count) target rows")
        precondition(x.isCentred == y.isCentred, "RegressionGrams: inputs and targets centred differently")
        count = x.count
        inputMean = x.mean; targetMean = y.mean
        centredTargetEnergy = y.centred.sumOfSquares
        targetEnergy = y.energy
        if x.count < x.centred.columns {
            rows = Rows(inputs: x.centred, targets: y.centred, centred: x.isCentred)
            products = nil
        } else {
            rows = nil
            products = Products(inputGram: x.centred.gram(), crossGram: x.centred.multiplied(by: y.centred, transposeSelf: true))
        }
    }

    /// The Grams of `x` `[N, p]` and `y` `[N, q]`, centred when `intercept`.
    public init(inputs x: Tensor, targets y: Tensor, intercept: Bool = true) {
        self.init(inputs: CentredRows(x, centre: intercept), targets: CentredRows(y, centre: intercept))
    }

    private init(count: Int, inputMean: [Double], targetMean: [Double], products: Products?,
                 centredTargetEnergy: Double, targetEnergy: Double, rows: Rows?) {
        self.count = count; self.inputMean = inputMean; self.targetMean = targetMean
        self.products = products
        self.centredTargetEnergy = centredTargetEnergy; self.targetEnergy = targetEnergy
        self.rows = rows
    }

    /// The same rows' statistics for a regression without intercept: XᵀX = XcᵀXc + N·m_x m_xᵀ,
    /// XᵀY = XcᵀYc + N·m_x m_yᵀ, ‖Y‖² for both energies, zero means (no new pass over the rows;
    /// kept rows get their means back).
    public var uncentred: RegressionGrams {
        let n = Double(count)
        let ones = [Double](repeating: 1, count: count)
        let uncentredRows = rows.map { r -> Rows in
            guard r.centred else { return r }
            var x = r.inputs, y = r.targets
            x.addOuterProduct(ones, inputMean)
            y.addOuterProduct(ones, targetMean)
            return Rows(inputs: x, targets: y, centred: false)
        }
        let uncentredProducts = products.map { p -> Products in
            var g = p.inputGram, c = p.crossGram
            g.addOuterProduct(inputMean, inputMean, alpha: n)
            c.addOuterProduct(inputMean, targetMean, alpha: n)
            return Products(inputGram: g, crossGram: c)
        }
        return RegressionGrams(count: count, inputMean: [Double](repeating: 0, count: inputMean.count),
                               targetMean: [Double](repeating: 0, count: targetMean.count),
                               products: uncentredProducts, centredTargetEnergy: targetEnergy, targetEnergy: targetEnergy,
                               rows: uncentredRows)
    }

    /// The same statistics as Grams without the rows, so `ReducedRankRegression` takes the primal
    /// (p × p) path whatever N is (tests comparing the two solves).
    public var droppingRows: RegressionGrams {
        RegressionGrams(count: count, inputMean: inputMean, targetMean: targetMean,
                        products: Products(inputGram: inputGram, crossGram: crossGram),
                        centredTargetEnergy: centredTargetEnergy, targetEnergy: targetEnergy, rows: nil)
    }
}
