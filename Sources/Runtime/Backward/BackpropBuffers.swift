#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// Zero-initialised float buffers owned by one backward call, freed together.
final class BackpropArena {
    private var blocks: [UnsafeMutablePointer<Float>] = []

    /// A zeroed buffer of `n` floats (at least one).
    func make(_ n: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        p.initialize(repeating: 0, count: max(n, 1))
        blocks.append(p)
        return p
    }

    deinit { for p in blocks { p.deallocate() } }
}

/// Row-wise kernels of the backward pass on raw row-major buffers.
enum BackpropKernels {
    /// RMSNorm forward exactly as `Kernels.rmsNorm` (mean of squares in Double), also storing each
    /// row's 1/√(mean(x²)+eps) in `inverseRMS` `[rows]`.
    static func rmsNorm(_ x: UnsafePointer<Float>, rows: Int, d: Int, weight: UnsafePointer<Float>, eps: Float,
                        out: UnsafeMutablePointer<Float>, inverseRMS: UnsafeMutablePointer<Float>) {
        Kernels.rmsNorm(x, rows: rows, d: d, weight: weight, eps: eps, out: out, inverseRMS: inverseRMS)
    }

    /// Adds the input gradient of y = w ⊙ x·r(x) (r = 1/√(mean(x²)+eps)) to `gx`:
    /// gx += r·(w⊙gy) − x · r³/d · Σⱼ (w⊙gy)ⱼ xⱼ, row by row.
    static func rmsNormBackward(_ x: UnsafePointer<Float>, gy: UnsafePointer<Float>, rows: Int, d: Int,
                                weight: UnsafePointer<Float>, inverseRMS: UnsafePointer<Float>,
                                gx: UnsafeMutablePointer<Float>) {
        for t in 0..<rows {
            let xr = x + t * d, g = gy + t * d, o = gx + t * d
            let r = inverseRMS[t]
            var dot = 0.0
            for j in 0..<d { dot += Double(weight[j] * g[j]) * Double(xr[j]) }
            let c = Float(dot) * r * r * r / Float(d)
            for j in 0..<d { o[j] += r * weight[j] * g[j] - xr[j] * c }
        }
    }

    /// σ(x) = 1/(1+e⁻ˣ).
    @inline(__always) static func sigmoid(_ x: Float) -> Float { 1 / (1 + expf(-x)) }
}
