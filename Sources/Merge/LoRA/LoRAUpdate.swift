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
    public func merged(into weight: Tensor, name: String = "weight") throws -> Tensor {
        let expected = fanInFanOut ? [inFeatures, outFeatures] : [outFeatures, inFeatures]
        guard weight.shape.dims == expected else {
            throw MergeError.shapeMismatch(tensor: name, expected: expected, found: weight.shape.dims)
        }
        var out = weight
        let d = storedDelta
        out += d
        return out
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
