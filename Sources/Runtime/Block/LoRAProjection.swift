import Tensors

/// A LoRA applied unmerged inside a projection, y = x·Wᵀ + s·(x·Aᵀ)·Bᵀ: its forward is part of
/// `Kernels.linear`; this is its backward, next to the weight's own (`ProjectionWeight.multiplyTransposed`).
extension LoRAFactors {
    /// For `rows` rows of x `[rows, in]` and gy = ∂L/∂y `[rows, out]` (rows `ldg` apart):
    /// gB += s·gyᵀ·(x·Aᵀ), gA += s·(gy·B)ᵀ·x into `gradient` (shaped as these factors), and
    /// gx += s·(gy·B)·A into gx `[rows, in]`. `scratch` holds 2·rows·rank floats.
    func backward(x: UnsafePointer<Float>, gy: UnsafePointer<Float>, ldg: Int, rows T: Int,
                  gx: UnsafeMutablePointer<Float>, gradient: inout LoRAFactors, scratch: UnsafeMutablePointer<Float>) {
        let r = rank, nIn = a.shape[1], nOut = b.shape[0], s = scale
        guard r > 0, T > 0 else { return }
        let xa = scratch, gya = scratch + T * r
        var out = [gradient.a, gradient.b]
        gradient.a = Tensor(shape: [0]); gradient.b = Tensor(shape: [0])   // not copied on write
        BLAS.singleThreaded { Tensor.withPointers([a, b], writing: &out) { p, o in
            let (ap, bp, ga, gb) = (p[0], p[1], o[0], o[1])
            BLAS.sgemm(transposeB: true, m: T, n: r, k: nIn, a: x, lda: nIn, b: ap, ldb: nIn, c: xa, ldc: r)
            BLAS.sgemm(m: T, n: r, k: nOut, a: gy, lda: ldg, b: bp, ldb: r, c: gya, ldc: r)
            BLAS.sgemm(transposeA: true, m: nOut, n: r, k: T, alpha: s, a: gy, lda: ldg, b: xa, ldb: r, beta: 1, c: gb, ldc: r)
            BLAS.sgemm(transposeA: true, m: r, n: nIn, k: T, alpha: s, a: gya, lda: r, b: x, ldb: nIn, beta: 1, c: ga, ldc: nIn)
            BLAS.sgemm(m: T, n: nIn, k: r, alpha: s, a: gya, lda: r, b: ap, ldb: nIn, beta: 1, c: gx, ldc: nIn)
        } }
        gradient.a = out[0]; gradient.b = out[1]
    }
}
