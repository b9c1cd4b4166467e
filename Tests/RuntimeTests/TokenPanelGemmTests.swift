import Foundation
import Runtime
import Tensors
import Testing

/// The forward pass's own matrix kernels (token-panel gemm, f32 matrix-vector product) and the
/// worker pool they run on, on every code path this CPU has, against the products evaluated in
/// Double. (The end-to-end tests compare whole forward passes with transformers and PEFT; these
/// pin the kernels' edges: tails of 16-token panels and 6-row tiles, k % 8, splits over threads.)
@Suite struct TokenPanelGemmTests {
    static func values(_ n: Int, seed: UInt64) -> [Float] {
        var rng = SplitMix64(seed: seed)
        return (0..<n).map { _ in Float(Double(rng.next() % 20001) / 10000 - 1) }
    }

    /// x · Wᵀ in Double: x `[rows, k]`, w `[n, k]`.
    static func reference(x: [Float], w: [Float], rows: Int, k: Int, n: Int) -> [Double] {
        var out = [Double](repeating: 0, count: rows * n)
        for m in 0..<rows {
            for o in 0..<n {
                var s = 0.0
                for j in 0..<k { s += Double(x[m * k + j]) * Double(w[o * k + j]) }
                out[m * n + o] = s
            }
        }
        return out
    }

    static func gemm(x: [Float], w: [Float], rows: Int, k: Int, n: Int, initial: Float = .nan, alpha: Float = 1,
                     accumulate: Bool = false, threads: Int, level: CPUKernelLevel) -> [Float] {
        var out = [Float](repeating: initial, count: rows * n)
        var panels = [Float](repeating: .nan, count: TokenPanelGemm.panelFloats(rows: rows, columns: k))
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                panels.withUnsafeMutableBufferPointer { pp in
                    out.withUnsafeMutableBufferPointer { op in
                        let packed = TokenPanelGemm.pack(xp.baseAddress!, rows: rows, columns: k, ldx: k,
                                                         into: pp.baseAddress!, level: level)
                        TokenPanelGemm.multiply(packed, weight: wp.baseAddress!, outFeatures: n, out: op.baseAddress!,
                                                ldo: n, alpha: alpha, accumulate: accumulate, threads: threads, level: level)
                    }
                }
            }
        }
        return out
    }

    /// Packing is a pure rearrangement: panel p holds token 16p+i's feature j at [16j + i], the
    /// rows past the last token zero, the same on every path.
    @Test(arguments: CPUKernelLevel.allCases)
    func packingPlacesEveryValue(_ level: CPUKernelLevel) {
        guard level.rawValue <= CPUKernelLevel.best.rawValue else { return }
        for (rows, k) in [(1, 5), (16, 8), (17, 13), (40, 64), (33, 30)] {
            let x = Self.values(rows * k, seed: UInt64(rows * 100 + k))
            var panels = [Float](repeating: .nan, count: TokenPanelGemm.panelFloats(rows: rows, columns: k))
            #expect(panels.count == (rows + 15) / 16 * 16 * k)
            x.withUnsafeBufferPointer { xp in
                panels.withUnsafeMutableBufferPointer { pp in
                    _ = TokenPanelGemm.pack(xp.baseAddress!, rows: rows, columns: k, ldx: k, into: pp.baseAddress!, level: level)
                }
            }
            for p in 0..<(rows + 15) / 16 {
                for j in 0..<k {
                    for i in 0..<16 {
                        let m = 16 * p + i
                        let want: Float = m < rows ? x[m * k + j] : 0
                        #expect(panels[16 * p * k + 16 * j + i] == want, "rows \(rows) k \(k): panel \(p) feature \(j) token \(i)")
                    }
                }
            }
        }
    }

    /// Shapes cover full and partial panels (rows 1, 15, 16, 37), full and partial 6-row tiles
    /// (n 6, 7, 11, 64), k with and without 8-column tails, and the forward pass's widths.
    /// Tolerance 2e-6 · Σ_j |x_j·w_j| per output: one f32 sum of ≤ 576 products against Double.
    @Test(arguments: CPUKernelLevel.allCases)
    func gemmMatchesTheDefinition(_ level: CPUKernelLevel) {
        guard level.rawValue <= CPUKernelLevel.best.rawValue else { return }
        for (rows, k, n) in [(1, 8, 6), (15, 13, 7), (16, 64, 11), (37, 576, 64), (20, 3, 1)] {
            let x = Self.values(rows * k, seed: 1), w = Self.values(n * k, seed: 2)
            let want = Self.reference(x: x, w: w, rows: rows, k: k, n: n)
            let got = Self.gemm(x: x, w: w, rows: rows, k: k, n: n, threads: 1, level: level)
            for m in 0..<rows {
                for o in 0..<n {
                    let scale = (0..<k).reduce(0.0) { $0 + abs(Double(x[m * k + $1]) * Double(w[o * k + $1])) }
                    #expect(abs(Double(got[m * n + o]) - want[m * n + o]) <= 2e-6 * scale,
                            "\(level) rows \(rows) k \(k) n \(n): [\(m), \(o)] \(got[m * n + o]) vs \(want[m * n + o])")
                }
            }
        }
    }

    /// alpha scales the product and `accumulate` adds it to what out held (the LoRA update).
    @Test(arguments: CPUKernelLevel.allCases)
    func scaledAccumulation(_ level: CPUKernelLevel) {
        guard level.rawValue <= CPUKernelLevel.best.rawValue else { return }
        let (rows, k, n) = (18, 24, 13)
        let x = Self.values(rows * k, seed: 3), w = Self.values(n * k, seed: 4)
        let plain = Self.gemm(x: x, w: w, rows: rows, k: k, n: n, threads: 1, level: level)
        let added = Self.gemm(x: x, w: w, rows: rows, k: k, n: n, initial: 0.5, alpha: 2, accumulate: true,
                              threads: 1, level: level)
        let scaled = Self.gemm(x: x, w: w, rows: rows, k: k, n: n, initial: 0.5, alpha: 2, threads: 1, level: level)
        for i in 0..<rows * n {
            #expect(added[i] == 0.5 + 2 * plain[i])
            #expect(scaled[i] == 2 * plain[i])
        }
    }

    /// Splitting the output features over threads gives the same bits as one thread (each
    /// output is the same sum), and the paths agree up to f32 rounding.
    @Test func threadsAndPathsAgree() {
        let (rows, k, n) = (70, 320, 250)   // 5.6M multiply-adds: split over the pool
        let x = Self.values(rows * k, seed: 5), w = Self.values(n * k, seed: 6)
        let best = CPUKernelLevel.best
        let one = Self.gemm(x: x, w: w, rows: rows, k: k, n: n, threads: 1, level: best)
        for threads in [2, 3, 7] {
            #expect(Self.gemm(x: x, w: w, rows: rows, k: k, n: n, threads: threads, level: best) == one, "threads \(threads)")
        }
        let scalar = Self.gemm(x: x, w: w, rows: rows, k: k, n: n, threads: 1, level: .scalar)
        let want = Self.reference(x: x, w: w, rows: rows, k: k, n: n)
        let bound = want.map(abs).max()! * 1e-5
        for i in one.indices { #expect(abs(Double(one[i]) - Double(scalar[i])) <= bound) }
    }

    /// The decode step's matrix-vector product: k tails (k % 8 ≠ 0), row tails (rows % 4 ≠ 0),
    /// one and several threads (the same bits), against Double within 2e-6 · Σ|w_j·x_j|.
    @Test(arguments: CPUKernelLevel.allCases)
    func matrixVectorMatchesTheDefinition(_ level: CPUKernelLevel) {
        guard level.rawValue <= CPUKernelLevel.best.rawValue else { return }
        for (rows, k) in [(1, 3), (7, 19), (64, 576), (1030, 300)] {
            let w = Self.values(rows * k, seed: 7), x = Self.values(k, seed: 8)
            func run(_ threads: Int) -> [Float] {
                var y = [Float](repeating: .nan, count: rows)
                w.withUnsafeBufferPointer { wp in
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { yp in
                            F32MatrixVector.multiply(wp.baseAddress!, rows: rows, columns: k, x: xp.baseAddress!,
                                                     into: yp.baseAddress!, threads: threads, level: level)
                        }
                    }
                }
                return y
            }
            let y = run(1)
            #expect(run(2) == y, "rows \(rows) k \(k): split over threads")
            for r in 0..<rows {
                let want = (0..<k).reduce(0.0) { $0 + Double(w[r * k + $1]) * Double(x[$1]) }
                let scale = (0..<k).reduce(0.0) { $0 + abs(Double(w[r * k + $1]) * Double(x[$1])) }
                #expect(abs(Double(y[r]) - want) <= 2e-6 * scale, "\(level) rows \(rows) k \(k): row \(r)")
            }
        }
    }

    /// Every index runs exactly once, also when jobs come from several threads at once and when
    /// a task starts a job of its own (those run inline).
    @Test func workerPoolRunsEachTaskOnce() {
        final class Counts: @unchecked Sendable {
            let lock = NSLock()
            var hits: [Int]
            init(_ n: Int) { hits = [Int](repeating: 0, count: n) }
            func hit(_ i: Int) { lock.lock(); hits[i] += 1; lock.unlock() }
        }
        let n = 1000
        let counts = Counts(n)
        WorkerPool.run(count: n, threads: 3) { counts.hit($0) }
        #expect(counts.hits.allSatisfy { $0 == 1 })

        let nested = Counts(40 * 25)
        WorkerPool.run(count: 40, threads: 2) { i in
            WorkerPool.run(count: 25, threads: 2) { j in nested.hit(i * 25 + j) }
        }
        #expect(nested.hits.allSatisfy { $0 == 1 })

        let concurrent = Counts(8 * 500)
        DispatchQueue.concurrentPerform(iterations: 8) { c in
            WorkerPool.run(count: 500, threads: 2) { concurrent.hit(c * 500 + $0) }
        }
        #expect(concurrent.hits.allSatisfy { $0 == 1 })
    }
}
