import Runtime
import Tensors

/// Rotates every head of `x` `[T, heads·headDim]` in place with the Hugging Face rotate-half
/// convention (pair i < hd/2 with i + hd/2: `[x₁·cos − x₂·sin, x₂·cos + x₁·sin]`), row t at
/// table row t of `cos`/`sin` (`[T, hd/2]` from `Runtime.RotaryEmbedding.tables`). Linear in
/// x, so the same call rotates tangents; passing −sin applies the transpose (inverse rotation),
/// which the adjoint needs.
func rotateHalf(_ x: inout Tensor, heads: Int, headDim: Int, cos: [Float], sin: [Float]) {
    let t = x.rows, width = x.columns, half = headDim / 2
    precondition(width == heads * headDim && cos.count >= t * half && sin.count >= t * half, "rotateHalf: shape mismatch")
    x.withUnsafeMutableBufferPointer { buf in
        for row in 0..<t {
            for h in 0..<heads {
                let base = row * width + h * headDim
                for i in 0..<half {
                    let c = cos[row * half + i], s = sin[row * half + i]
                    let x1 = buf[base + i], x2 = buf[base + i + half]
                    buf[base + i] = x1 * c - x2 * s
                    buf[base + i + half] = x2 * c + x1 * s
                }
            }
        }
    }
}

extension RotaryEmbedding {
    /// cos/sin tables `[positions.count, hd/2]` for a range of positions.
    func tables(positions: Range<Int>) -> (cos: [Float], sin: [Float]) {
        tables(positions: positions.lowerBound, count: positions.count)
    }
}
