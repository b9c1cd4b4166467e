import Testing
import Tensors
import TestSupport

/// The Float64 matrix wrappers against independent computations: naive Double loops for the
/// products, the definition (A v = λ v, orthonormal V) for the eigen-decompositions, and the
/// residual of the system for the Cholesky solve.
@Suite("Float64 Gram and decomposition wrappers")
struct DoubleMatrixTests {
    init() { BLAS.setThreadCount(1) }

    private func random(_ rows: Int, _ cols: Int, seed: UInt64) -> DoubleMatrix {
        DoubleMatrix(Tensor.randomNormal([rows, cols], seed: seed))
    }

    private func maxAbs(_ a: DoubleMatrix, _ b: DoubleMatrix) -> Double {
        zip(a.scalars, b.scalars).map { abs($0 - $1) }.max() ?? 0
    }

    @Test func gramAndProductsMatchNaiveLoops() {
        let a = random(41, 7, seed: 1), b = random(41, 5, seed: 2)
        var gram = DoubleMatrix(rows: 7, columns: 7), cross = DoubleMatrix(rows: 7, columns: 5)
        for i in 0..<7 {
            for j in 0..<7 { for t in 0..<41 { gram[i, j] += a[t, i] * a[t, j] } }
            for j in 0..<5 { for t in 0..<41 { cross[i, j] += a[t, i] * b[t, j] } }
        }
        #expect(maxAbs(a.gram(), gram) < 1e-12)
        #expect(maxAbs(a.multiplied(by: b, transposeSelf: true), cross) < 1e-12)
        #expect(maxAbs(b.multiplied(by: a, transposeSelf: true, transposeOther: false), cross.transposed) < 1e-12)
        #expect(maxAbs(a.transposed.multiplied(by: b.transposed, transposeOther: true), cross) < 1e-12)
    }

    @Test func centredRowsSubtractTheMeanAndKeepTheUncentredEnergy() {
        let x = Tensor.randomNormal([30, 4], seed: 3).addingToEachRow([1, -2, 3, 0.5])
        let c = CentredRows(x)
        for j in 0..<4 {
            let mean = (0..<30).reduce(0.0) { $0 + Double(x[$1, j]) } / 30
            #expect(abs(c.mean[j] - mean) < 1e-12)
            #expect(abs((0..<30).reduce(0.0) { $0 + c.centred[$1, j] }) < 1e-10)
        }
        let energy = x.scalars.reduce(0.0) { $0 + Double($1) * Double($1) }
        #expect(abs(c.energy - energy) < 1e-9 * energy)
        #expect(CentredRows(x, centre: false).centred == DoubleMatrix(x))
    }

    @Test func eigenDecompositionSatisfiesItsDefinitionAndTheLargestKAgree() throws {
        let g = random(60, 12, seed: 4).gram()
        let full = try g.symmetricEigen()
        for i in 1..<12 { #expect(full.values[i] <= full.values[i - 1]) }
        let v = full.vectors
        let av = g.multiplied(by: v)
        for i in 0..<12 { for j in 0..<12 { #expect(abs(av[i, j] - full.values[j] * v[i, j]) < 1e-9 * full.values[0]) } }
        #expect(maxAbs(v.multiplied(by: v, transposeSelf: true), .identity(12)) < 1e-12)
        let top = try g.symmetricEigen(largest: 4)
        #expect(top.vectors.rows == 12 && top.vectors.columns == 4)
        for j in 0..<4 {
            #expect(abs(top.values[j] - full.values[j]) < 1e-10 * full.values[0])
            // Same vector up to sign.
            let dot = (0..<12).reduce(0.0) { $0 + top.vectors[$1, j] * v[$1, j] }
            #expect(abs(abs(dot) - 1) < 1e-9)
        }
    }

    @Test func choleskySolvesAndRefusesSingularMatrices() throws {
        let a = random(50, 9, seed: 5).gram(), b = random(9, 3, seed: 6)
        let x = try #require(try a.choleskySolve(b))
        #expect(maxAbs(a.multiplied(by: x), b) < 1e-10)
        // R⁻ᵀ and R⁻¹ of the factor: RᵀR = A.
        let r = try #require(try a.cholesky())
        #expect(maxAbs(r.upper.multiplied(by: r.upper, transposeSelf: true), a) < 1e-10)
        #expect(maxAbs(r.upper.multiplied(by: r.solve(b), transposeSelf: false), b) < 1e-10)
        #expect(maxAbs(r.upper.multiplied(by: r.solveTransposed(b), transposeSelf: true), b) < 1e-10)
        // Rank 4 of 9: not positive definite, or refused by the condition threshold.
        let singular = random(4, 9, seed: 7).gram()
        #expect(try singular.choleskySolve(b) == nil)
    }
}
