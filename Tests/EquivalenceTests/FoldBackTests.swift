import Equivalence
import Runtime
import Tensors
import Testing
import TestSupport

/// The JVP's adjoint and fold-back on the fixture layer (weights recorded by transformers).
@Suite struct FoldBackTests {
    /// Calibration: 4 random sequences of 48 tokens (192 tokens > d_ff = 160, so a down_proj
    /// least-squares fit cannot memorise).
    static func calibration(_ ev: FirstOrderMap) throws -> [BlockActivations] {
        try (0..<4).map { s in
            try ev.forward((1.5 * Tensor.randomNormal([48, 64], seed: 100 + UInt64(s))).addingToEachRow([Float](repeating: 0.3, count: 64)))
        }
    }

    static func adapter(seed: UInt64, rank: Int = 4, bias: Bool = false) -> SteeringLayer {
        SteeringLayer(down: 0.1 * Tensor.randomNormal([64, rank], seed: seed), up: 0.1 * Tensor.randomNormal([64, rank], seed: seed + 1),
                      bias: bias ? 0.05 * Tensor.randomNormal([64], seed: seed + 2) : nil)
    }

    // Dot-product test of the adjoint: ⟨J(ΔW_p), G⟩ = ⟨ΔW_p, Jᵀ(G)⟩ for each projection, in
    // float32 over ~10⁴ terms: 1e-4 relative.
    @Test(arguments: ["default", "llama3"]) func weightCotangentIsAdjointOfJVP(rope: String) throws {
        let fx = try BlockFixture()
        let ev = try fx.evaluator(rope: rope)
        let a = try ev.forward(try fx.file["h"])
        let g = Tensor.randomNormal(a.output.shape, seed: 77)
        let grads = try ev.weightCotangent(a, outputCotangent: g, projections: Set(LlamaProjection.allCases))
        for p in LlamaProjection.allCases {
            let dw = try fx.file["delta.\(BlockFixture.short(p))"]
            let lhs = Double(zip(try ev.jvp(a, delta: LayerWeightDelta([p: .dense(dw)])).output.scalars, g.scalars).reduce(Float(0)) { $0 + $1.0 * $1.1 })
            let rhs = Double(zip(dw.scalars, try #require(grads[p]).scalars).reduce(Float(0)) { $0 + $1.0 * $1.1 })
            #expect(abs(lhs - rhs) <= 1e-4 * max(abs(lhs), abs(rhs)), "\(rope) \(p): \(lhs) vs \(rhs)")
        }
    }

    // Acceptance: an adapter acting on the MLP output only (X ↦ X + X·D·Uᵀ) folds into a LoRA
    // of the adapter's rank on down_proj that reproduces the steered block outputs; float32
    // forward passes: 1e-4 relative.
    @Test func mlpPathAdapterFoldsExactlyAsLoRA() throws {
        let fx = try BlockFixture()
        let ev = try fx.evaluator(rope: "default")
        let seqs = try Self.calibration(ev)
        let ad = Self.adapter(seed: 1)
        let outcome = try FoldBack.fold(ad, site: .mlpOutput, evaluator: ev, sequences: seqs)
        guard case let .folded(w) = outcome else { Issue.record("refused: \(outcome)"); return }
        #expect(w.isExactFactorization && w.residual < 1e-4)
        guard case let .lowRank(a, b, s)? = w.delta[.down] else { Issue.record("not a LoRA"); return }
        #expect(a.shape == [4, 160] && b.shape == [64, 4] && s == 1)
        #expect(b == ad.up!)
        #expect(w.delta.projections.count == 1)
    }

    // The same target through least squares on down_proj (dense, and reduced-rank 4): the
    // solution exists, so the residual is rounding (1e-3: lstsq on a 192×160 system in float32
    // data).
    @Test func leastSquaresRecoversAnExistingDelta() throws {
        let fx = try BlockFixture()
        let ev = try fx.evaluator(rope: "default")
        let seqs = try Self.calibration(ev)
        let ad = Self.adapter(seed: 1)
        for rank in [nil, 4] as [Int?] {
            let o = try FoldBack.fold(ad, site: .mlpOutput, evaluator: ev, sequences: seqs,
                                      options: .init(rank: rank, preferExactFactorization: false))
            #expect(!o.weights.isExactFactorization && o.weights.residual < 1e-3, "rank \(String(describing: rank)): \(o.weights.residual)")
            if rank == 4, case let .lowRank(a, _, _)? = o.weights.delta[.down] { #expect(a.shape == [4, 160]) }
        }
    }

    // Acceptance: a generic post-block steer A·Z is refused with its residual; more projections
    // can only lower the (first-order) residual; a bias is refused by name.
    @Test func postBlockAdapterIsRefusedWithResidual() throws {
        let fx = try BlockFixture()
        let ev = try fx.evaluator(rope: "default")
        let seqs = try Self.calibration(ev)
        let ad = Self.adapter(seed: 5)
        let down = try FoldBack.fold(ad, site: .blockOutput, evaluator: ev, sequences: seqs)
        let heldOut = [try ev.forward(1.5 * Tensor.randomNormal([48, 64], seed: 999))]
        let all = try FoldBack.fold(ad, site: .blockOutput, evaluator: ev, sequences: seqs, heldOut: heldOut,
                                    options: .init(projections: Set(LlamaProjection.allCases)))
        // All seven projections have 43k unknowns for 12k equations: the calibration fit is
        // memorised (linearised residual ≈ 0), the held-out residual shows it and refuses.
        #expect(all.weights.unknowns > all.weights.equations)
        guard case .refused = all else { Issue.record("all-seven fold accepted: \(all.weights)"); return }
        guard case let .refused(reasons, best) = down else { Issue.record("down-only fold accepted"); return }
        #expect(reasons == [.residualTooLarge(residual: best.residual, threshold: 0.05)])
        #expect(best.residual > 0.1)
        #expect(all.weights.linearizedResidual < down.weights.linearizedResidual)
        print("fold-back residuals of a generic post-block A·Z: down \(down.weights.residual), all seven \(all.weights.residual) (linearised \(all.weights.linearizedResidual), held-out \(all.weights.heldOutResidual ?? .nan))")

        let withBias = try FoldBack.fold(Self.adapter(seed: 1, bias: true), site: .mlpOutput, evaluator: ev, sequences: seqs)
        guard case let .refused(r2, _) = withBias else { Issue.record("bias accepted"); return }
        #expect(r2.contains { if case .biasNotRepresentable = $0 { return true } else { return false } })
    }

    // CGLS over o, gate, up on targets that a known delta produces to first order (a
    // consistent linear problem): the linearised residual must reach 1e-3 of the target.
    @Test func leastSquaresDeltaSolvesAConsistentLinearisedProblem() throws {
        let fx = try BlockFixture()
        let ev = try fx.evaluator(rope: "default")
        let seqs = try Self.calibration(ev)
        let truth = LayerWeightDelta([.o: try fx.denseDelta(.o), .gate: try fx.denseDelta(.gate), .up: try fx.denseDelta(.up)])
        let targets = try seqs.map { try ev.jvp($0, delta: truth).output }
        let delta = try FoldBack.leastSquaresDelta(evaluator: ev, sequences: seqs, targets: targets, projections: [.o, .gate, .up], iterations: 300)
        #expect(Set(delta.projections.keys) == [.o, .gate, .up])
        var num = 0.0, den = 0.0
        for (a, t) in zip(seqs, targets) {
            let e = try ev.jvp(a, delta: delta).output - t
            num += Double(e.frobeniusNorm * e.frobeniusNorm); den += Double(t.frobeniusNorm * t.frobeniusNorm)
        }
        #expect((num / den).squareRoot() < 1e-3)
        // The mismatch of shapes is a typed error.
        #expect(throws: EquivalenceError.self) {
            try FoldBack.leastSquaresDelta(evaluator: ev, sequences: seqs, targets: Array(targets.dropLast()), projections: [.o])
        }
    }
}
