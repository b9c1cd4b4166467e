import Foundation
import Equivalence
import Runtime
import Tensors
import Testing
import TestSupport

/// Reduced-rank regression and the adapter fits against numpy's closed form
/// (fixtures/equivalence/rrr.safetensors) and properties that can fail.
@Suite struct AdapterFitTests {
    // The linear rank-4 fit equals numpy's float64 closed form (lstsq on the rows, SVD of the
    // fitted values). Ours runs in Float64 from the Grams (equilibrated normal equations, eigen of
    // FᵀF); float32 storage of W and b and the squared conditioning remain: 1e-4 relative.
    @Test(arguments: [("ridge0", Float(0)), ("ridge2", Float(2))])
    func linearFitEqualsNumpyClosedForm(tag: String, ridge: Float) throws {
        let fx = try FixtureFile("equivalence/rrr.safetensors")
        let h = try fx["h"], delta = try fx["delta"]
        let rrr = try ReducedRankRegression(inputs: h, targets: delta, ridge: ridge)
        #expect(relativeError(rrr.coefficients.scalars, try fx["\(tag).w_full"].scalars) < 1e-4)
        let layer = AdapterFit.steeringLayer(rrr, rank: 4)
        let down = try #require(layer.down), up = try #require(layer.up), bias = try #require(layer.bias)
        let wr = matmul(down, up, transposeB: true)   // Δ ≈ H·W_r + b, W_r = D·Uᵀ
        #expect(relativeError(wr.scalars, try fx["\(tag).w"].scalars) < 1e-4)
        #expect(relativeError(bias.scalars, try fx["\(tag).b"].scalars) < 1e-4)
        let err = AdapterFit.relativeError(layer, activation: .identity, activations: h, shifts: delta)
        #expect(abs(err - (try fx["\(tag).relerr"].scalars[0])) < 1e-5)
        // The error decomposition used for rank choice agrees with the direct evaluation.
        #expect(abs(rrr.relativeError(rank: 4) - err) < 1e-5)
    }

    // Independent check inside the test: full-rank lstsq, then truncated SVD of the fitted
    // values, W_r = W·V_r·V_rᵀ computed here with Tensors only.
    @Test func linearFitEqualsLstsqThenTruncatedSVD() throws {
        let n = 200, d = 12
        let h = Tensor.randomNormal([n, d], seed: 1).addingToEachRow([Float](repeating: 0.7, count: d))
        let w = matmul(Tensor.randomNormal([d, 3], seed: 2), Tensor.randomNormal([3, d], seed: 3))
        let delta = matmul(h, w) + 0.2 * Tensor.randomNormal([n, d], seed: 4)
        let mh = h.columnMeans(), md = delta.columnMeans()
        let hc = h.addingToEachRow(mh.map { -$0 }), dc = delta.addingToEachRow(md.map { -$0 })
        let wFull = try leastSquares(hc, dc).solution
        let vt = try svd(matmul(hc, wFull), precision: .double).vt
        let v2 = Tensor(rows: (0..<d).map { i in [vt[0, i], vt[1, i]] })
        let wr = matmul(matmul(wFull, v2), v2, transposeB: true)
        let layer = try AdapterFit.linear(activations: h, shifts: delta, rank: 2)
        let ours = matmul(try #require(layer.down), try #require(layer.up), transposeB: true)
        #expect(relativeError(ours.scalars, wr.scalars) < 1e-4)
    }

    // Collinear inputs (a duplicated column and a constant one): the Cholesky route refuses the
    // singular normal equations and the minimum-norm pseudo-inverse takes over; W must equal
    // LAPACK gelsd's minimum-norm solution on the centred rows.
    @Test func rankDeficientInputsGiveTheMinimumNormSolution() throws {
        let n = 120, d = 6
        let base = Tensor.randomNormal([n, d - 2], seed: 21)
        let h = Tensor(shape: [n, d]) { o in
            for t in 0..<n {
                for j in 0..<(d - 2) { o[t * d + j] = base[t, j] }
                o[t * d + d - 2] = base[t, 0]    // duplicate of column 0
                o[t * d + d - 1] = 3             // constant: zero after centring
            }
        }
        let delta = matmul(h, Tensor.randomNormal([d, d], seed: 22)) + 0.1 * Tensor.randomNormal([n, d], seed: 23)
        let hc = h.addingToEachRow(h.columnMeans().map { -$0 }), dc = delta.addingToEachRow(delta.columnMeans().map { -$0 })
        let reference = try leastSquares(hc, dc, rcond: 1e-6).solution
        let rrr = try ReducedRankRegression(inputs: h, targets: delta)
        #expect(relativeError(rrr.coefficients.scalars, reference.scalars) < 1e-4)
    }

    /// Block outputs of layer 2 of the fixture base and the fine-tune's oracle shifts on 60 tokens
    /// of held-out corpus B (4 sequences of 15): fewer tokens than the width (d 64).
    static func fewTokenRows() throws -> (z: Tensor, delta: Tensor) {
        let ids = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("corpus/b.heldout.tokens.json")))) as? [Int])
        let sequences = (0..<4).map { Array(ids[(100 + 15 * $0)..<(115 + 15 * $0)]) }
        var o = ForwardOptions(logits: .none)
        o.record = [.blockOutput(2)]
        func rows(_ m: LlamaModel) throws -> Tensor {
            Tensor.concatenatingRows(try sequences.map { try #require(try m.forward(tokens: $0, options: o).activations[.blockOutput(2)]) })
        }
        let z = try rows(try LlamaModel.load(path: Fixtures.path("tiny/base")))
        let zft = try rows(try LlamaModel.load(path: Fixtures.path("tiny/finetuned")))
        return (z, try OracleShift.shift(base: z, finetuned: zft))
    }

    // Fewer held-in tokens than features (N 40 < p 64): the fit is solved in the N × N dual. On
    // the fixture pair it induces the shifts of the primal p × p solve (the same Grams without
    // their rows) on held-in and held-out tokens within 1e-5 relative (max|a − b| / max|b|), with
    // and without intercept, ridge and rank truncation, and its full-rank coefficients are
    // LAPACK gelsd's minimum-norm solution.
    @Test(arguments: [Float(0), 0.5]) func dualSolveInducesThePrimalShifts(ridge: Float) throws {
        let (z, delta) = try Self.fewTokenRows()
        let zi = z.gatherRows(Array(0..<40)), di = delta.gatherRows(Array(0..<40))
        let zo = z.gatherRows(Array(40..<60))
        #expect(zi.columns == 64)
        var worst = 0.0
        defer { print("dual vs primal solve, ridge \(ridge): largest relative shift difference \(worst)") }
        for intercept in [true, false] {
            let dual = RegressionGrams(inputs: zi, targets: di, intercept: intercept)
            #expect(dual.rows != nil && dual.droppingRows.rows == nil)
            let a = try ReducedRankRegression(grams: dual, ridge: ridge)
            let b = try ReducedRankRegression(grams: dual.droppingRows, ridge: ridge)
            #expect(a.maximumRank >= 8, "\(a.maximumRank) directions")
            for rank in [1, 4, 8, a.maximumRank] {
                let la = AdapterFit.steeringLayer(a, rank: rank), lb = AdapterFit.steeringLayer(b, rank: rank)
                for (tokens, label) in [(zi, "held-in"), (zo, "held-out")] {
                    let e = maxAbsoluteDifferenceScaled(la.shift(tokens, activation: .identity).scalars,
                                                        lb.shift(tokens, activation: .identity).scalars)
                    #expect(e <= 1e-5, "intercept \(intercept), ridge \(ridge), rank \(rank), \(label): \(e)")
                    worst = max(worst, e)
                }
                #expect(abs(a.relativeError(rank: rank) - b.relativeError(rank: rank)) <= 1e-5)
            }
            if ridge == 0 {
                let zc = intercept ? zi.addingToEachRow(zi.columnMeans().map { -$0 }) : zi
                let dc = intercept ? di.addingToEachRow(di.columnMeans().map { -$0 }) : di
                let reference = try leastSquares(zc, dc, rcond: 1e-6).solution
                #expect(relativeError(a.coefficients.scalars, reference.scalars) < 1e-4)
            }
        }
        // The uncentred statistics derived from centred ones keep their rows, uncentred.
        let derived = RegressionGrams(inputs: zi, targets: di).uncentred
        let direct = RegressionGrams(inputs: zi, targets: di, intercept: false)
        let x = try ReducedRankRegression(grams: derived, ridge: ridge), y = try ReducedRankRegression(grams: direct.droppingRows, ridge: ridge)
        let e = maxAbsoluteDifferenceScaled(AdapterFit.steeringLayer(x, rank: 4).shift(zo, activation: .identity).scalars,
                                            AdapterFit.steeringLayer(y, rank: 4).shift(zo, activation: .identity).scalars)
        #expect(e <= 1e-5, "uncentred: \(e)")
    }

    // Computing only the leading r directions gives the same rank-r adapter and error.
    @Test func directionLimitKeepsTheRankRFit() throws {
        let fx = try FixtureFile("equivalence/rrr.safetensors")
        let g = RegressionGrams(inputs: try fx["h"], targets: try fx["delta"])
        let full = try ReducedRankRegression(grams: g), limited = try ReducedRankRegression(grams: g, directionLimit: 3)
        #expect(limited.maximumRank == 3)
        let a = AdapterFit.steeringLayer(full, rank: 3), b = AdapterFit.steeringLayer(limited, rank: 3)
        let wa = matmul(try #require(a.down), try #require(a.up), transposeB: true)
        let wb = matmul(try #require(b.down), try #require(b.up), transposeB: true)
        #expect(relativeError(wa.scalars, wb.scalars) < 1e-5)
        #expect(abs(full.relativeError(rank: 3) - limited.relativeError(rank: 3)) < 1e-6)
    }

    @Test func rankChoiceReachesTarget() throws {
        let fx = try FixtureFile("equivalence/rrr.safetensors")
        let rrr = try ReducedRankRegression(inputs: try fx["h"], targets: try fx["delta"])
        // Error falls with rank; the target picks the smallest rank that reaches it.
        let errs = (0...rrr.maximumRank).map { rrr.relativeError(rank: $0) }
        for i in 1..<errs.count { #expect(errs[i] <= errs[i - 1] + 1e-6) }
        let target = (errs[3] + errs[4]) / 2
        #expect(AdapterFit.chooseRank(rrr, .targetError(target)) == 4)
        #expect(AdapterFit.chooseRank(rrr, .fixed(100)) == rrr.maximumRank)
        #expect(AdapterFit.chooseRank(rrr, .energy(1)) == rrr.maximumRank)
        #expect(AdapterFit.chooseRank(rrr, .energy(0.5)) >= 1)
    }

    @Test func vectorFitIsMeanShiftAndSplitIsDeterministic() throws {
        let n = 50, d = 6
        let h = Tensor.randomNormal([n, d], seed: 5)
        let delta = Tensor.randomNormal([n, d], seed: 6).addingToEachRow([1, 2, 3, 4, 5, 6])
        let split = TokenSplit(count: n, heldOutFraction: 0.2, seed: 9)
        #expect(split == TokenSplit(count: n, heldOutFraction: 0.2, seed: 9))
        #expect(split != TokenSplit(count: n, heldOutFraction: 0.2, seed: 10))
        #expect(split.heldOut.count == 10 && Set(split.heldIn + split.heldOut) == Set(0..<n))
        let res = try AdapterFit.fit(activations: h, shifts: delta, split: split, options: .init(kind: .vector))
        let mean = delta.gatherRows(split.heldIn).columnMeans()
        #expect(maxAbsoluteDifference(try #require(res.layer.bias).scalars, mean) < 1e-6)
        #expect(res.rank == 0 && res.parameterCount == d)
    }

    // A target that is itself a rank-3 SiLU adapter: the SiLU fit must beat the linear one on
    // held-out tokens, never be worse on held-in ones, and repeat exactly for a seed.
    @Test func siluFitBeatsLinearOnNonlinearShiftAndIsDeterministic() throws {
        let n = 600, d = 10, r = 3
        let h = 2 * Tensor.randomNormal([n, d], seed: 11)
        let truth = SteeringLayer(down: Tensor.randomNormal([d, r], seed: 12), up: Tensor.randomNormal([d, r], seed: 13),
                                  bias: Tensor(vector: [Float](repeating: 0.1, count: d)))
        let delta = truth.shift(h, activation: .silu) + 0.01 * Tensor.randomNormal([n, d], seed: 14)
        let split = TokenSplit(count: n, heldOutFraction: 0.25, seed: 1)
        let train = SiLUTrainingOptions(steps: 400, batchSize: 128, learningRate: 2e-2, seed: 3)
        let lin = try AdapterFit.fit(activations: h, shifts: delta, split: split, options: .init(kind: .linear, rank: .fixed(r)))
        let nl = try AdapterFit.fit(activations: h, shifts: delta, split: split, options: .init(kind: .silu, rank: .fixed(r), silu: train))
        #expect(nl.activation == .silu && nl.rank == r)
        #expect(nl.heldInRelativeError <= lin.heldInRelativeError)
        #expect(nl.heldOutRelativeError < 0.7 * lin.heldOutRelativeError,
                "silu \(nl.heldOutRelativeError) vs linear \(lin.heldOutRelativeError)")
        let again = try AdapterFit.fit(activations: h, shifts: delta, split: split, options: .init(kind: .silu, rank: .fixed(r), silu: train))
        #expect(again.layer == nl.layer)
    }

    @Test func oracleShiftChecksShapes() throws {
        let a = Tensor.randomNormal([4, 3], seed: 1), b = Tensor.randomNormal([4, 3], seed: 2)
        #expect(try OracleShift.shift(base: a, finetuned: b) == b - a)
        #expect(throws: EquivalenceError.self) { try OracleShift.shift(base: a, finetuned: Tensor(shape: [3, 4])) }
    }
}
