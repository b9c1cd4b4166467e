import CKernels
import Merge
import Runtime
import Tensors
import Testing

/// `LoRAUpdate.merged(into:)` is bit-reproducible: it equals, bit for bit, the fixed-order f32
/// formula W[o,i] + (Σ_k B[o,k]·A[k,i])·s (k ascending, each product and sum rounded, no fused
/// multiply-add) written out here in plain Swift (which never fuses), on any CPU and vector path,
/// single- or multi-threaded. That is what lets merged.json identify steertool's merged
/// checkpoints by sha256 on every machine.
@Suite struct ReproducibleLoRAMergeTests {
    static func reference(_ w: Tensor, _ u: LoRAUpdate) -> Tensor {
        var out = w
        let (rows, cols, r) = (u.outFeatures, u.inFeatures, u.rank)
        for o in 0..<rows {
            var acc = [Float](repeating: 0, count: cols)
            for k in 0..<r {
                let bk = u.b[o, k]
                for i in 0..<cols {
                    let p = bk * u.a[k, i]
                    acc[i] = acc[i] + p
                }
            }
            for i in 0..<cols {
                let d = acc[i] * u.scaling
                out[o, i] = out[o, i] + d
            }
        }
        return out
    }

    @Test(arguments: [(1, 1, 1), (37, 13, 3), (300, 257, 16), (768, 512, 8)])
    func mergedEqualsFixedOrderFormulaBitForBit(_ shape: (Int, Int, Int)) throws {
        let (rows, cols, r) = shape
        let u = LoRAUpdate(a: .randomNormal([r, cols], seed: 1), b: .randomNormal([rows, r], std: 0.1, seed: 2), scaling: 0.37)
        let w = Tensor.randomNormal([rows, cols], seed: 3)
        let want = Self.reference(w, u)
        for threads in [1, 2] {
            BLAS.setThreadCount(threads)
            for level in CPUKernelLevel.allCases where level.rawValue <= CPUKernelLevel.best.rawValue {
                #expect(try u.merged(into: w, kernel: steertool_kernel_level(rawValue: UInt32(level.rawValue))) == want, "\(shape), \(threads) threads, \(level)")
            }
        }
        BLAS.setThreadCount(1)
        // fan_in_fan_out: the same values, transposed storage
        let t = LoRAUpdate(a: u.a, b: u.b, scaling: u.scaling, fanInFanOut: true)
        #expect(try t.merged(into: w.transposed()) == want.transposed())
    }
}
