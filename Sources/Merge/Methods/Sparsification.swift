import Tensors

/// Element selection and sign election shared by the PEFT and mergekit merge methods. All
/// functions treat a tensor as a flat list of its row-major scalars (shape is kept).
public enum Sparsification {
    /// Keeps the `k` largest-magnitude entries and zeroes the rest (among equal magnitudes at the
    /// threshold, lower flat indices first). `k` is clamped to `0...count`. O(n): a quickselect
    /// finds the k-th largest magnitude, then one pass keeps what lies above it.
    public static func keepTopMagnitude(_ t: Tensor, count k: Int) -> Tensor {
        let n = t.count
        let k = max(0, min(k, n))
        if k == n { return t }
        if k == 0 { return Tensor(shape: t.shape) }
        var mags = t.scalars.map { abs($0) }
        let threshold = mags.withUnsafeMutableBufferPointer { kthLargest($0, k) }
        var above = 0
        for x in t.scalars where abs(x) > threshold { above += 1 }
        var tiesLeft = k - above
        return Tensor(shape: t.shape) { out in
            t.withUnsafeBufferPointer { src in
                for i in 0..<n {
                    let m = abs(src[i])
                    if m > threshold { out[i] = src[i] } else if m == threshold && tiesLeft > 0 { out[i] = src[i]; tiesLeft -= 1 }
                }
            }
        }
    }

    /// The k-th largest value (1-based k ≤ count) of a buffer, which is reordered (Hoare
    /// quickselect with a median-of-three pivot).
    static func kthLargest(_ a: UnsafeMutableBufferPointer<Float>, _ k: Int) -> Float {
        var lo = 0, hi = a.count - 1
        let target = k - 1   // index in descending order
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            // median of three, descending
            if a[lo] < a[mid] { a.swapAt(lo, mid) }
            if a[lo] < a[hi] { a.swapAt(lo, hi) }
            if a[mid] < a[hi] { a.swapAt(mid, hi) }
            let pivot = a[mid]
            var i = lo, j = hi
            while i <= j {
                while a[i] > pivot { i += 1 }
                while a[j] < pivot { j -= 1 }
                if i <= j { a.swapAt(i, j); i += 1; j -= 1 }
            }
            if target <= j { hi = j } else if target >= i { lo = i } else { return a[target] }
        }
        return a[target]
    }

    /// PEFT `prune(..., method="magnitude")`: for `density ≥ 1` the tensor unchanged, otherwise the
    /// top `Int(density · count)` magnitudes (PEFT truncates, so it may keep none).
    public static func peftMagnitude(_ t: Tensor, density: Double) -> Tensor {
        if density >= 1 { return t }
        return keepTopMagnitude(t, count: Int(density * Double(t.count)))
    }

    /// mergekit `sparsify.magnitude`: unchanged for `density ≥ 1`, zeros for `density ≤ 0`,
    /// otherwise the top `max(1, Int(density · count))` magnitudes.
    public static func mergekitMagnitude(_ t: Tensor, density: Double) -> Tensor {
        if density >= 1 { return t }
        if density <= 0 || t.count == 0 { return Tensor(shape: t.shape) }
        return keepTopMagnitude(t, count: max(1, Int(density * Double(t.count))))
    }

    /// A Bernoulli(density) keep-mask over `count` entries drawn from `rng` (1 = keep). PEFT and
    /// mergekit draw theirs from torch's generator, which this does not reproduce: the same
    /// seed gives a different (equally distributed) mask.
    public static func bernoulliMask(count: Int, density: Double, rng: inout SplitMix64) -> [Float] {
        (0..<count).map { _ in Double(rng.nextOpenUnitDouble()) < density ? 1 : 0 }
    }

    /// PEFT `random_pruning`: `t · mask`, divided by `density` when `rescale`.
    public static func peftRandom(_ t: Tensor, density: Double, rescale: Bool, rng: inout SplitMix64) -> Tensor {
        if density >= 1 { return t }
        let mask = bernoulliMask(count: t.count, density: density, rng: &rng)
        let f = Float(density)
        return Tensor(shape: t.shape, scalars: zip(t.scalars, mask).map { rescale ? $0 * $1 / f : $0 * $1 })
    }

    /// mergekit `rescaled_masked_tensor` with the L1 norm: `t · mask`, then scaled by
    /// ‖t‖₁ / ‖t · mask‖₁ unless either norm is below 1e-7. Norms accumulate in Float like torch.
    public static func maskedL1Rescaled(_ t: Tensor, mask: [Float], rescale: Bool) -> Tensor {
        precondition(mask.count == t.count, "mask of \(mask.count) for \(t.count) entries")
        let masked = zip(t.scalars, mask).map { $0 * $1 }
        guard rescale else { return Tensor(shape: t.shape, scalars: masked) }
        var before = 0.0, after = 0.0
        for x in t.scalars { before += Double(abs(x)) }
        for x in masked { after += Double(abs(x)) }
        if before < 1e-7 || after < 1e-7 { return Tensor(shape: t.shape, scalars: masked) }
        let f = Float(Float(before) / Float(after))
        return Tensor(shape: t.shape, scalars: masked.map { $0 * f })
    }

    /// mergekit `sparsify.bernoulli` (DARE): unchanged for `density ≥ 1`; otherwise a random
    /// Bernoulli(density) mask, L1-rescaled when `rescale` (mergekit's DARE default).
    public static func mergekitBernoulli(_ t: Tensor, density: Double, rescale: Bool, rng: inout SplitMix64) -> Tensor {
        if density >= 1 { return t }
        let mask = bernoulliMask(count: t.count, density: density, rng: &rng)
        return maskedL1Rescaled(t, mask: mask, rescale: rescale)
    }

    /// `torch.sign`: −1, 0 or 1.
    @inline(__always) static func sign(_ x: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : 0) }
}

/// How TIES elects the sign of each entry across task tensors: `total` by the sign of the sum of
/// values (PEFT "total", mergekit "sum"), `frequency` by the sign of the sum of signs (PEFT
/// "frequency", mergekit "count"). Zero sums elect +.
public enum MajoritySignMethod: String, Sendable, CaseIterable {
    case total, frequency
}

extension Sparsification {
    /// Per-entry keep mask of TIES: entry i of task t is kept when sign(t[i]) equals the elected
    /// sign (zeros are never kept). `tasks` all have one count; returns one mask per task.
    public static func majoritySignMask(_ tasks: [[Float]], method: MajoritySignMethod) -> [[Float]] {
        guard let n = tasks.first?.count else { return [] }
        var elected = [Float](repeating: 0, count: n)
        for i in 0..<n {
            var acc: Float = 0
            for t in tasks { acc += method == .total ? t[i] : sign(t[i]) }
            elected[i] = acc >= 0 ? 1 : -1
        }
        return tasks.map { t in (0..<n).map { sign(t[$0]) == elected[$0] ? 1 : 0 } }
    }
}
