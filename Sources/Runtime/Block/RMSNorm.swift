import Tensors

/// RMSNorm over rows of width d, forward and backward side by side: y = w ⊙ x·r with
/// r = 1/√(mean(x²) + eps) per row (transformers' LlamaRMSNorm in f32; the mean of squares is
/// accumulated in Double). Buffers are row-major `[rows, d]`.
enum RMSNorm {
    /// y = w ⊙ (x · r) into `out`; with `inverseRMS`, each row's r is stored there `[rows]` (what
    /// `backward` needs).
    static func forward(_ x: UnsafePointer<Float>, rows: Int, d: Int, gain: UnsafePointer<Float>, eps: Float,
                        out: UnsafeMutablePointer<Float>, inverseRMS: UnsafeMutablePointer<Float>? = nil) {
        for t in 0..<rows {
            let xr = x + t * d, o = out + t * d
            var s0 = 0.0, s1 = 0.0
            var i = 0
            while i + 1 < d {
                s0 += Double(xr[i]) * Double(xr[i])
                s1 += Double(xr[i + 1]) * Double(xr[i + 1])
                i += 2
            }
            if i < d { s0 += Double(xr[i]) * Double(xr[i]) }
            let variance = Float((s0 + s1) / Double(d))
            let r = 1 / (variance + eps).squareRoot()
            inverseRMS?[t] = r
            for j in 0..<d { o[j] = gain[j] * (xr[j] * r) }
        }
    }

    /// Adds the input gradient of y = w ⊙ x·r to `gx`, given gy = ∂L/∂y and the forward's r:
    /// gx += r·(w ⊙ gy) − x · r³/d · Σⱼ (w ⊙ gy)ⱼ xⱼ, row by row (the dot product in Double).
    static func backward(_ x: UnsafePointer<Float>, gy: UnsafePointer<Float>, rows: Int, d: Int,
                         gain: UnsafePointer<Float>, inverseRMS: UnsafePointer<Float>, gx: UnsafeMutablePointer<Float>) {
        for t in 0..<rows {
            let xr = x + t * d, g = gy + t * d, o = gx + t * d
            let r = inverseRMS[t]
            var dot = 0.0
            for j in 0..<d { dot += Double(gain[j] * g[j]) * Double(xr[j]) }
            let c = Float(dot) * r * r * r / Float(d)
            for j in 0..<d { o[j] += r * gain[j] * g[j] - xr[j] * c }
        }
    }

    /// The tangent of `forward` at x (with its r) along dx: δy = w ⊙ r·(δx − x·r²·(x·δx)/d), row by
    /// row (the dot product in Double), written into `out`.
    static func tangent(_ x: UnsafePointer<Float>, dx: UnsafePointer<Float>, rows: Int, d: Int,
                        gain: UnsafePointer<Float>, inverseRMS: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>) {
        for t in 0..<rows {
            let xr = x + t * d, dr = dx + t * d, o = out + t * d
            let r = inverseRMS[t]
            var dot = 0.0
            for j in 0..<d { dot += Double(xr[j]) * Double(dr[j]) }
            let k = Float(dot / Double(d)) * r * r
            for j in 0..<d { o[j] = gain[j] * r * (dr[j] - xr[j] * k) }
        }
    }

    /// `tangent` on tensors: δy `[rows, d]` at x (with `forward`'s r) along dx.
    static func tangent(_ x: Tensor, inverseRMS: [Float], gain: Tensor, dx: Tensor) -> Tensor {
        rowwise(x, dx, gain: gain, inverseRMS: inverseRMS) {
            tangent($0, dx: $1, rows: $2, d: $3, gain: $4, inverseRMS: $5, out: $6)
        }
    }

    /// `backward` on tensors: ∂L/∂x `[rows, d]` from gy = ∂L/∂y at x (with `forward`'s r).
    static func backward(_ x: Tensor, inverseRMS: [Float], gain: Tensor, gy: Tensor) -> Tensor {
        rowwise(x, gy, gain: gain, inverseRMS: inverseRMS) {
            backward($0, gy: $1, rows: $2, d: $3, gain: $4, inverseRMS: $5, gx: $6)
        }
    }

    /// A new zeroed `[rows, d]` tensor written by `kernel(x, other, rows, d, gain, r, out)`.
    private static func rowwise(_ x: Tensor, _ other: Tensor, gain: Tensor, inverseRMS: [Float],
                                _ kernel: (UnsafePointer<Float>, UnsafePointer<Float>, Int, Int, UnsafePointer<Float>,
                                           UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        precondition(x.shape == other.shape && x.rows == inverseRMS.count, "RMSNorm: \(x.shape), \(other.shape), \(inverseRMS.count) rows")
        let rows = x.rows, d = x.columns
        var out = [Tensor(shape: [rows, d])]
        Tensor.withPointers([x, other, gain, Tensor(vector: inverseRMS)], writing: &out) { p, o in
            kernel(p[0], p[1], rows, d, p[2], p[3], o[0])
        }
        return out[0]
    }
}
