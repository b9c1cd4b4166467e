import Foundation
import Runtime
import Testing

/// `VectorMath.exp` on every code path this CPU has against libm's expf: within 2 ulp (relative
/// 2.4e-7) over [-87.3, 88], array lengths that leave vector tails, and the documented clamping.
@Suite struct VectorMathTests {
    @Test(arguments: CPUKernelLevel.allCases)
    func expMatchesLibm(_ level: CPUKernelLevel) throws {
        guard level.rawValue <= CPUKernelLevel.best.rawValue else { return }
        for n in [1, 7, 16, 33, 100_003] {
            let x = (0..<n).map { i in -87.3 + 175.3 * Float(i) / Float(max(n - 1, 1)) }
            var y = [Float](repeating: 0, count: n)
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { VectorMath.exp(xp.baseAddress!, into: $0.baseAddress!, count: n, level: level) }
            }
            var worst: Float = 0
            for i in 0..<n {
                let want = expf(x[i])
                worst = max(worst, abs(y[i] - want) / want)
            }
            #expect(worst <= 2.4e-7, "\(level) n=\(n): worst relative error \(worst)")
        }
        // clamping: far below gives e^-87.34 ≈ 1.2e-38 (not NaN, not negative), -inf too; above 88 gives e^88
        let edges: [Float] = [-.infinity, -1000, -90, 100, 1000]
        var out = [Float](repeating: .nan, count: edges.count)
        edges.withUnsafeBufferPointer { ep in
            out.withUnsafeMutableBufferPointer { VectorMath.exp(ep.baseAddress!, into: $0.baseAddress!, count: edges.count, level: level) }
        }
        for v in out[0..<3] { #expect(v >= 0 && v < 1.3e-38, "\(level): \(v)") }
        for v in out[3...] { #expect(abs(v - expf(88)) <= 2.4e-7 * expf(88), "\(level): \(v)") }
    }
}
