import CKernels

/// `y = W·x` for one token with an f32 weight W `[rows, columns]` (row-major, PyTorch's `[out, in]`)
/// in the C kernel (`steertool_f32_matvec`), rows split over `WorkerPool` threads: the decode
/// step's projections on CPUs where the forward pass runs its own kernels
/// (`TokenPanelGemm.preferred`), so that OpenBLAS's threads, which spin after each call, do not
/// compete with the pool's.
public enum F32MatrixVector {
    /// y[r] = Σ_j W[r, j]·x[j] for r in 0..<rows; x holds `columns` floats, y `rows`.
    /// `threads`: rows are split into that many ranges (small matrices stay on the calling
    /// thread); every output is the same sum on any split. `level` forces a kernel path (tests).
    public static func multiply(_ w: UnsafePointer<Float>, rows: Int, columns: Int, x: UnsafePointer<Float>,
                                into y: UnsafeMutablePointer<Float>, threads: Int = 1, level: CPUKernelLevel = .best) {
        guard rows > 0 else { return }
        let path = level.cValue
        let chunks = WorkerPool.chunks(work: rows * columns, units: rows / 16, threads: threads)
        let wAddress = UInt(bitPattern: w), xAddress = UInt(bitPattern: x), yAddress = UInt(bitPattern: y)
        WorkerPool.run(splitting: rows, into: chunks) { r in
            steertool_f32_matvec(UnsafePointer(bitPattern: wAddress), columns, columns, r.lowerBound, r.upperBound,
                                 UnsafePointer(bitPattern: xAddress), UnsafeMutablePointer<Float>(bitPattern: yAddress)! + r.lowerBound, path)
        }
    }
}
