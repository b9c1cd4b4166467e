import CKernels
import Dispatch
import Tensors

/// One module's LoRA in PEFT orientation: `a` `[r, in]`, `b` `[out, r]`, ΔW = scaling · B·A,
/// an `[out, in]` update of a weight stored `[out, in]` (`y = x·Wᵀ`). With `fanInFanOut` the
/// base weight is stored `[in, out]` (GPT-2 Conv1D) and the update applied to it is (B·A)ᵀ·scaling;
/// the factors keep their orientation either way.
public struct LoRAUpdate: Sendable, Equatable {
    /// `[r, in]`.
    public var a: Tensor
    /// `[out, r]`.
    public var b: Tensor
    /// The multiplier s of ΔW = s·B·A (alpha/r, alpha/√r for rsLoRA, 1 after `add_weighted_adapter`).
    public var scaling: Float
    /// Whether the base weight is stored `[in, out]`.
    public var fanInFanOut: Bool

    /// Creates the factors; traps unless `a` is `[r, in]` and `b` `[out, r]` with the same r
    /// (programmer error: file readers validate shapes first and throw).
    public init(a: Tensor, b: Tensor, scaling: Float, fanInFanOut: Bool = false) {
        precondition(a.rank == 2 && b.rank == 2 && a.rows == b.columns,
                     "LoRA factors: A \(a.shape) and B \(b.shape) do not share a rank")
        self.a = a; self.b = b; self.scaling = scaling; self.fanInFanOut = fanInFanOut
    }

    /// Rank r.
    public var rank: Int { a.rows }
    /// Input features of the module.
    public var inFeatures: Int { a.columns }
    /// Output features of the module.
    public var outFeatures: Int { b.rows }

    /// ΔW = s·B·A, `[out, in]` (PEFT's `get_delta_weight` before its fan_in_fan_out transpose).
    public var delta: Tensor { matmul(b, a, alpha: scaling) }

    /// ΔW in the base weight's storage orientation: `[out, in]`, or `[in, out]` with fan_in_fan_out.
    public var storedDelta: Tensor { fanInFanOut ? matmul(a, b, transposeA: true, transposeB: true, alpha: scaling) : delta }

    /// The base weight plus this update, in the base weight's storage orientation. Throws when
    /// the shapes disagree.
    ///
    /// Bit-reproducible on every machine (so a merged checkpoint can be identified by its hash):
    /// W[o,i] + s·Σ_k B[o,k]·A[k,i] with each product and sum rounded in f32 in a fixed order
    /// (k ascending, never fused), as PEFT's `W + (B @ A) * s` up to torch's summation order.
    /// Rows are split over `BLAS.threadCount` threads; each row's arithmetic is the same. Runs
    /// the best kernel path this CPU has; every path gives the same bits.
    public func merged(into weight: Tensor, name: String = "weight") throws -> Tensor {
        try merged(into: weight, name: name, kernel: steertool_kernel_best_level())
    }

    /// `merged(into:name:)` on a forced kernel path (tests compare the paths; a path above the
    /// CPU's best is lowered to it by the kernel).
    package func merged(into weight: Tensor, name: String = "weight", kernel: steertool_kernel_level) throws -> Tensor {
        var out = weight
        try apply(to: &out, name: name, kernel: kernel)
        return out
    }

    /// `merged(into:)` in place: `weight` becomes W + s·B·A (same bits), without a copy when
    /// `weight`'s storage is not shared.
    public func apply(to weight: inout Tensor, name: String = "weight") throws {
        try apply(to: &weight, name: name, kernel: steertool_kernel_best_level())
    }

    /// `apply(to:name:)` on a forced kernel path.
    package func apply(to weight: inout Tensor, name: String = "weight", kernel level: steertool_kernel_level) throws {
        let expected = fanInFanOut ? [inFeatures, outFeatures] : [outFeatures, inFeatures]
        guard weight.shape.dims == expected else {
            throw MergeError.shapeMismatch(tensor: name, expected: expected, found: weight.shape.dims)
        }
        guard fanInFanOut else {
            addDelta(into: &weight, level: level)
            return
        }
        var d = Tensor(shape: [outFeatures, inFeatures])   // 0 + s·BA = s·BA exactly
        addDelta(into: &d, level: level)
        weight += d.transposed()
    }

    /// w `[out, in]` += s·B·A through the reproducible kernel.
    private func addDelta(into w: inout Tensor, level path: steertool_kernel_level) {
        let rows = outFeatures, cols = inFeatures, r = rank, s = scaling
        guard rows > 0, cols > 0 else { return }
        let chunks = rows * cols * max(r, 1) < 1 << 20 ? 1 : max(1, min(BLAS.threadCount, rows))
        let step = (rows + chunks - 1) / chunks
        a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                w.withUnsafeMutableBufferPointer { wp in
                    let wA = UInt(bitPattern: wp.baseAddress!), aA = UInt(bitPattern: ap.baseAddress), bA = UInt(bitPattern: bp.baseAddress)
                    DispatchQueue.concurrentPerform(iterations: chunks) { c in
                        let r0 = c * step, r1 = min(rows, r0 + step)
                        guard r0 < r1 else { return }
                        steertool_lora_merge_rows(UnsafeMutablePointer<Float>(bitPattern: wA)!, cols,
                                                  UnsafePointer<Float>(bitPattern: bA), UnsafePointer<Float>(bitPattern: aA),
                                                  r, s, r0, r1, path)
                    }
                }
            }
        }
    }

    /// The same update with rank `r ≥ rank`: A gets zero rows, B zero columns (PEFT's layout of
    /// a `cat` combination allocated at the summed config ranks).
    public func zeroPadded(toRank r: Int) -> LoRAUpdate {
        precondition(r >= rank, "cannot pad rank \(rank) down to \(r)")
        if r == rank { return self }
        let pa = Tensor.concatenatingRows([a, Tensor(shape: [r - rank, inFeatures])])
        let pb = Tensor.concatenatingRows([b.transposed(), Tensor(shape: [r - rank, outFeatures])]).transposed()
        return LoRAUpdate(a: pa, b: pb, scaling: scaling, fanInFanOut: fanInFanOut)
    }
}
