import Foundation
import Tensors

// Tensor helpers of the adapter fits and fold-back (the block's own operations are Runtime's, in
// Runtime/Block). Matrices are row-major `[rows, columns]`.

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

/// Frobenius inner product Σ aᵢ bᵢ in Double.
func frobeniusDot(_ a: Tensor, _ b: Tensor) -> Double {
    precondition(a.count == b.count, "frobeniusDot: sizes differ")
    var s = 0.0
    a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in
        for i in 0..<x.count { s += Double(x[i]) * Double(y[i]) }
    } }
    return s
}
