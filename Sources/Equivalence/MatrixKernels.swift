import Foundation
import Tensors

// Elementwise and row-wise kernels the block evaluator needs besides gemms. Matrices are
// row-major `[rows, columns]`; every loop runs over contiguous buffers.

@inline(__always) func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

/// RMSNorm of each row: `out[t] = gain ⊙ x[t] · ρ_t`, ρ_t = (mean(x[t]²) + eps)^(-1/2).
/// Returns the normalised rows and ρ `[rows]`.
func rmsNormRows(_ x: Tensor, gain: Tensor, eps: Float) -> (Tensor, [Float]) {
    let r = x.rows, c = x.columns
    var rho = [Float](repeating: 0, count: r)
    let g = gain.scalars
    let out = Tensor(shape: [r, c]) { o in
        x.withUnsafeBufferPointer { xs in
            for i in 0..<r {
                var ss = 0.0
                for j in 0..<c { let v = Double(xs[i * c + j]); ss += v * v }
                let p = Float(1 / (ss / Double(c) + Double(eps)).squareRoot())
                rho[i] = p
                for j in 0..<c { o[i * c + j] = g[j] * xs[i * c + j] * p }
            }
        }
    }
    return (out, rho)
}

/// Tangent of `rmsNormRows` at `x` (with its ρ) along `dx`:
/// δn = gain ⊙ ρ (δx − x ρ² (x·δx)/d), row by row.
func rmsNormTangent(_ x: Tensor, rho: [Float], gain: Tensor, dx: Tensor) -> Tensor {
    let r = x.rows, c = x.columns
    let g = gain.scalars
    return Tensor(shape: [r, c]) { o in
        x.withUnsafeBufferPointer { xs in
            dx.withUnsafeBufferPointer { ds in
                for i in 0..<r {
                    var dot = 0.0
                    for j in 0..<c { dot += Double(xs[i * c + j]) * Double(ds[i * c + j]) }
                    let p = rho[i]
                    let k = Float(dot / Double(c)) * p * p
                    for j in 0..<c { o[i * c + j] = g[j] * p * (ds[i * c + j] - xs[i * c + j] * k) }
                }
            }
        }
    }
}

/// Adjoint of `rmsNormTangent`: given G = ∂L/∂n `[rows, d]`, returns ∂L/∂x
/// = ρ (g⊙G − x ρ² (x·(g⊙G))/d), row by row (the Jacobian of one row is symmetric up to the gain).
func rmsNormAdjoint(_ x: Tensor, rho: [Float], gain: Tensor, grad: Tensor) -> Tensor {
    let r = x.rows, c = x.columns
    let gn = gain.scalars
    return Tensor(shape: [r, c]) { o in
        x.withUnsafeBufferPointer { xs in
            grad.withUnsafeBufferPointer { gs in
                for i in 0..<r {
                    var dot = 0.0
                    for j in 0..<c { dot += Double(xs[i * c + j]) * Double(gn[j] * gs[i * c + j]) }
                    let p = rho[i]
                    let k = Float(dot / Double(c)) * p * p
                    for j in 0..<c { o[i * c + j] = p * (gn[j] * gs[i * c + j] - xs[i * c + j] * k) }
                }
            }
        }
    }
}

/// Elementwise product of equally shaped tensors.
func hadamard(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.shape == b.shape, "hadamard: \(a.shape) vs \(b.shape)")
    return Tensor(shape: a.shape) { o in
        a.withUnsafeBufferPointer { x in
            b.withUnsafeBufferPointer { y in
                for i in 0..<o.count { o[i] = x[i] * y[i] }
            }
        }
    }
}

/// `a ⊙ x + b ⊙ y` elementwise.
func hadamardSum(_ a: Tensor, _ x: Tensor, _ b: Tensor, _ y: Tensor) -> Tensor {
    precondition(a.shape == x.shape && b.shape == y.shape && a.shape == b.shape, "hadamardSum: shapes differ")
    return Tensor(shape: a.shape) { o in
        a.withUnsafeBufferPointer { pa in x.withUnsafeBufferPointer { px in
            b.withUnsafeBufferPointer { pb in y.withUnsafeBufferPointer { py in
                for i in 0..<o.count { o[i] = pa[i] * px[i] + pb[i] * py[i] }
            } }
        } }
    }
}

/// `c += alpha · a` in place.
func accumulate(_ c: inout Tensor, _ a: Tensor, alpha: Float = 1) {
    precondition(c.shape == a.shape, "accumulate: \(c.shape) vs \(a.shape)")
    a.withUnsafeBufferPointer { pa in
        c.withUnsafeMutableBufferPointer { pc in
            guard let x = pa.baseAddress, let y = pc.baseAddress else { return }
            BLAS.saxpy(pa.count, alpha: alpha, x, y)
        }
    }
}

/// Adds a `[columns]` bias tensor to each row, if present.
func addBias(_ x: Tensor, _ bias: Tensor?) -> Tensor {
    guard let bias else { return x }
    return x.addingToEachRow(bias.scalars)
}

/// Frobenius inner product Σ aᵢ bᵢ in Double.
func frobeniusDot(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.count == b.count, "frobeniusDot: sizes differ")
    var s = 0.0
    a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in
        for i in 0..<x.count { s += Double(x[i]) * Double(y[i]) }
    } }
    return s
}
