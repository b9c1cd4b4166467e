import Foundation
import Tensors

// Elementwise helpers of the block evaluator and the adapter fits (the block's own operations
// are Runtime's, in Runtime/Block). Matrices are
// row-major `[rows, columns]`; every loop runs over contiguous buffers.

@inline(__always) func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }

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
