import CKernels

/// Elementwise math on float arrays through the vectorised C kernels (`Sources/CKernels`).
public enum VectorMath {
    /// y[i] = e^{x[i]} for `count` values (`x` and `y` may be the same buffer), x clamped to
    /// [-87.3, 88] (e^-87.3 ≈ 1.2e-38 below, e^88 above); within 2 ulp of libm's expf. `level`
    /// forces a code path (tests); nil takes the best this CPU has (scalar = libm expf).
    public static func exp(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int,
                           level: CPUKernelLevel? = nil) {
        guard count > 0 else { return }
        steertool_exp(x, y, count, (level ?? .best).cValue)
    }

    /// out[i] = gate[i] / (1 + e^{-gate[i]}) · up[i] for `count` values (SwiGLU: SiLU(gate) · up),
    /// e^x exactly as `exp` at the same level. `out` may be `gate` itself (no other overlap).
    /// `level` forces a code path (tests); nil takes the best this CPU has.
    public static func swiGLU(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                              count: Int, level: CPUKernelLevel? = nil) {
        guard count > 0 else { return }
        steertool_swiglu(gate, up, out, count, (level ?? .best).cValue)
    }
}
