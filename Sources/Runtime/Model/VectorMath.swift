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
}
