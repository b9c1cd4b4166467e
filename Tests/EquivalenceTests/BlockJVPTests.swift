import Equivalence
import Runtime
import Tensors
import Testing
import TestSupport

/// The block evaluator and its JVP against transformers' `LlamaDecoderLayer` (float64,
/// `torch.func.jvp`), recorded in fixtures/equivalence/block.safetensors.
@Suite struct BlockJVPTests {
    static let ropes = ["default", "llama3", "linear"]

    // Float32 forward of a 64-wide block against a float64 reference: rounding of the gemms and
    // the softmax gives ~1e-6 relative; 1e-5 leaves margin and still catches any wrong term.
    @Test(arguments: ropes) func primalMatchesTransformers(rope: String) throws {
        let fx = try BlockFixture()
        let a = try fx.evaluator(rope: rope).forward(try fx.file["h"])
        #expect(relativeError(a.output.scalars, try fx.file["\(rope).z"].scalars) < 1e-5)
        #expect(relativeError(a.attentionOutput.scalars, try fx.file["\(rope).attn"].scalars) < 1e-5)
        #expect(relativeError(a.mlpOutput.scalars, try fx.file["\(rope).x"].scalars) < 1e-5)
    }

    // JVPs in float32 vs torch.func.jvp in float64: measured ≤ 2e-6 relative on every delta and
    // RoPE variant; 2e-5 keeps a 10× margin (BLAS thread counts change rounding) and is far
    // inside the brief's 1e-4.
    @Test(arguments: ropes) func singleProjectionJVPsMatchTorchFunc(rope: String) throws {
        let fx = try BlockFixture()
        let ev = try fx.evaluator(rope: rope)
        let a = try ev.forward(try fx.file["h"])
        for (name, p) in BlockFixture.projections {
            let tan = try ev.jvp(a, delta: LayerWeightDelta([p: try fx.denseDelta(p)]))
            let err = relativeError(tan.output.scalars, try fx.file["\(rope).jvp.\(name)"].scalars)
            #expect(err < 2e-5, "\(rope) \(name): relative error \(err)")
        }
    }

    @Test(arguments: ropes) func combinedLoRAAndInputJVPsMatchTorchFunc(rope: String) throws {
        let fx = try BlockFixture()
        let ev = try fx.evaluator(rope: rope)
        let h = try fx.file["h"], dh = try fx.file["dh"]
        let a = try ev.forward(h)
        let all = try ev.jvp(a, delta: try fx.allDense())
        #expect(relativeError(all.output.scalars, try fx.file["\(rope).jvp.all"].scalars) < 2e-5)
        let lora = try ev.jvp(a, delta: try fx.lora())
        #expect(relativeError(lora.output.scalars, try fx.file["\(rope).jvp.lora"].scalars) < 2e-5)
        let input = try ev.jvp(a, delta: LayerWeightDelta(), inputTangent: dh)
        #expect(relativeError(input.output.scalars, try fx.file["\(rope).jvp.input"].scalars) < 2e-5)
        let both = try ev.jvp(a, delta: try fx.allDense(), inputTangent: dh)
        #expect(relativeError(both.output.scalars, try fx.file["\(rope).jvp.all_input"].scalars) < 2e-5)
        // The pieces are consistent: δZ = δY + δX and δY = δh + δAttn.
        #expect(relativeError(both.mlpInput.scalars, (dh + both.attentionOutput).scalars) < 1e-6)
    }

    // LoRA applied factored ((x·Aᵀ)·Bᵀ·s) equals the dense s·B·A delta.
    @Test func loRAFactoredEqualsDense() throws {
        let fx = try BlockFixture()
        let ev = try fx.evaluator(rope: "default")
        let a = try ev.forward(try fx.file["h"])
        let lora = try fx.lora()
        var dense = LayerWeightDelta()
        for (p, d) in lora.projections { dense[p] = .dense(d.denseMatrix()) }
        let x = try ev.jvp(a, delta: lora).output, y = try ev.jvp(a, delta: dense).output
        #expect(relativeError(x.scalars, y.scalars) < 1e-5)
    }

    // Acceptance: central finite differences of the block output along ΔW (ε scan). The
    // difference quotient in float32 has truncation error O(ε²) and rounding error O(u/ε); the
    // best ε of the scan must reach 1e-3 relative.
    @Test(arguments: ropes) func jvpMatchesCentralFiniteDifferences(rope: String) throws {
        let fx = try BlockFixture()
        let ev = try fx.evaluator(rope: rope)
        let h = try fx.file["h"]
        let a = try ev.forward(h)
        for (label, delta) in [("all", try fx.allDense()), ("lora", try fx.lora())] {
            let jvp = try ev.jvp(a, delta: delta).output
            var best = Double.infinity
            for eps: Float in [3e-1, 1e-1, 3e-2, 1e-2] {
                let plus = try ev.applying(delta, scale: eps).forward(h).output
                let minus = try ev.applying(delta, scale: -eps).forward(h).output
                let fd = (1 / (2 * eps)) * (plus - minus)
                best = min(best, relativeError(fd.scalars, jvp.scalars))
            }
            #expect(best < 1e-3, "\(rope) \(label): best central difference relative error \(best)")
        }
    }

    // Acceptance: against the exact (oracle) shift Z(W + tΔW) − Z(W), the first-order shift
    // t·JVP has relative error O(t): shrinking t by 4 shrinks the error by about 4.
    @Test func firstOrderErrorFallsLinearlyInT() throws {
        let fx = try BlockFixture()
        let ev = try fx.evaluator(rope: "default")
        let h = try fx.file["h"]
        let a = try ev.forward(h)
        let delta = try fx.allDense()
        let jvp = try ev.jvp(a, delta: delta).output
        var errors: [Double] = []
        for t: Float in [0.8, 0.4, 0.2, 0.1] {
            let oracle = try ev.applying(delta, scale: t).forward(h).output - a.output
            errors.append(relativeError((t * jvp).scalars, oracle.scalars))
        }
        for i in 1..<errors.count {
            let ratio = errors[i - 1] / errors[i]
            #expect(ratio > 1.6 && ratio < 2.5, "halving t changed the error by \(ratio) (errors \(errors))")
        }
        #expect(errors[0] > 1e-3, "the delta must be large enough for the second-order term to show")
    }

    @Test func rejectsMismatchedDelta() throws {
        let fx = try BlockFixture()
        let ev = try fx.evaluator(rope: "default")
        let a = try ev.forward(try fx.file["h"])
        #expect(throws: EquivalenceError.self) {
            try ev.jvp(a, delta: LayerWeightDelta([.q: .dense(Tensor(shape: [3, 3]))]))
        }
    }
}
