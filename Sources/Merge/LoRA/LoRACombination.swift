import Tensors

/// PEFT's `add_weighted_adapter` combination types.
public enum LoRACombinationType: String, Sendable, CaseIterable {
    case linear, cat, svd
    case ties, tiesSVD = "ties_svd"
    case dareLinear = "dare_linear", dareTies = "dare_ties"
    case dareLinearSVD = "dare_linear_svd", dareTiesSVD = "dare_ties_svd"
    case magnitudePrune = "magnitude_prune", magnitudePruneSVD = "magnitude_prune_svd"

    /// Parses PEFT's spelling; throws `MergeError.unknownMethod` naming the value otherwise.
    public init(parsing s: String) throws {
        guard let t = LoRACombinationType(rawValue: s) else { throw MergeError.unknownMethod(s) }
        self = t
    }

    /// Whether the type combines full deltas and re-factors them by SVD.
    public var usesSVD: Bool { rawValue.hasSuffix("svd") }
    /// Whether the type needs a density.
    public var usesDensity: Bool { ![.linear, .cat, .svd].contains(self) }
    /// Whether the type draws a random mask (DARE).
    public var isRandom: Bool { rawValue.hasPrefix("dare") }
}

/// A combination of LoRAs into one, with PEFT `LoraModel.add_weighted_adapter` semantics, per
/// module (callers iterate modules; a module missing from an adapter is skipped as PEFT does).
///
/// - `cat`: A = [w₁s₁A₁; w₂s₂A₂; …] (rows), B = [B₁ B₂ …] (columns), rank Σrᵢ; exact.
/// - `*_svd` and `svd`: Δᵢ = sᵢBᵢAᵢ combined with the weights by task arithmetic / TIES / DARE /
///   magnitude pruning, then B = U_r·diag(σ_r), A = V_rᵀ from the SVD of the combined `[out, in]`
///   delta; with `svdClamp` q both are clamped to ±quantile_q(concat(B, A)) as PEFT does.
/// - `linear`, `ties`, `dare_*`, `magnitude_prune`: the method is applied to the A's with weights
///   sign(wᵢsᵢ)·√|wᵢsᵢ| and to the B's with √|wᵢsᵢ| separately (all ranks must be equal).
/// The result has scaling 1 (PEFT writes r = lora_alpha = the new rank). One adapter always
/// combines as `linear`, as in PEFT.
///
/// DARE draws its mask from `SplitMix64(seed:)`; PEFT draws from torch's generator, which is not
/// reproduced, so DARE results agree with PEFT in distribution and structure, not bit for bit.
public struct LoRACombination: Sendable {
    /// The combination type (`combination_type`).
    public var type: LoRACombinationType
    /// Fraction of entries kept by TIES / DARE / magnitude pruning, in (0, 1].
    public var density: Double?
    /// TIES sign election (`majority_sign_method`).
    public var majoritySignMethod: MajoritySignMethod
    /// Target rank of the SVD types (default: the largest input rank).
    public var svdRank: Int?
    /// Quantile in (0, 1] for PEFT's clamp of the SVD factors, or nil for none.
    public var svdClamp: Double?
    /// Seed of the DARE masks.
    public var seed: UInt64

    /// Creates a combination; parameters are checked by `validate()` when used.
    public init(type: LoRACombinationType, density: Double? = nil, majoritySignMethod: MajoritySignMethod = .total,
                svdRank: Int? = nil, svdClamp: Double? = nil, seed: UInt64 = 0) {
        self.type = type; self.density = density; self.majoritySignMethod = majoritySignMethod
        self.svdRank = svdRank; self.svdClamp = svdClamp; self.seed = seed
    }

    /// Checks the parameters before any work: densities in (0, 1] where needed, a positive SVD
    /// rank, a clamp quantile in (0, 1].
    public func validate() throws {
        if type.usesDensity {
            guard let d = density else {
                throw MergeError.invalidParameter(name: "density", value: "none", reason: "\(type.rawValue) needs a density in (0, 1]")
            }
            guard d > 0, d <= 1 else {
                throw MergeError.invalidParameter(name: "density", value: "\(d)", reason: "must be in (0, 1]")
            }
        }
        if let r = svdRank, r < 1 {
            throw MergeError.invalidParameter(name: "svd rank", value: "\(r)", reason: "must be ≥ 1")
        }
        if let q = svdClamp, !(q > 0 && q <= 1) {
            throw MergeError.invalidParameter(name: "svd clamp", value: "\(q)", reason: "must be in (0, 1]")
        }
    }

    /// Combines one module's LoRAs with the given weights (one per input; negative subtracts).
    /// `rng` supplies the DARE masks. Throws on shape or rank mismatch and invalid parameters.
    ///
    /// `adapterCount` is the number of adapters of the whole combination (default: the inputs of
    /// this module): PEFT switches to `linear` only when that is 1, and otherwise combines a module
    /// present in fewer adapters with the chosen type.
    public func combine(_ inputs: [LoRAUpdate], weights: [Float], module: String = "module",
                        adapterCount: Int? = nil, rng: inout SplitMix64) throws -> LoRAUpdate {
        try validate()
        guard !inputs.isEmpty, inputs.count == weights.count else {
            throw MergeError.incompatibleInputs("\(module): \(inputs.count) adapters and \(weights.count) weights")
        }
        let first = inputs[0]
        for x in inputs where x.inFeatures != first.inFeatures || x.outFeatures != first.outFeatures || x.fanInFanOut != first.fanInFanOut {
            throw MergeError.shapeMismatch(tensor: module, expected: [first.outFeatures, first.inFeatures],
                                           found: [x.outFeatures, x.inFeatures])
        }
        let type = (adapterCount ?? inputs.count) == 1 ? LoRACombinationType.linear : self.type
        switch type {
        case .cat:
            let a = Tensor.concatenatingRows(zip(inputs, weights).map { (x, w) in (w * x.scaling) * x.a })
            let b = Tensor.concatenatingRows(inputs.map { $0.b.transposed() }).transposed()
            return LoRAUpdate(a: a, b: b, scaling: 1, fanInFanOut: first.fanInFanOut)
        case .svd, .tiesSVD, .dareLinearSVD, .dareTiesSVD, .magnitudePruneSVD:
            let deltas = inputs.map { $0.delta }
            let combined: Tensor
            switch type {
            case .svd: combined = TaskTensorMerge.taskArithmetic(deltas, weights: weights)
            case .tiesSVD: combined = TaskTensorMerge.ties(deltas, weights: weights, density: density ?? 1, signs: majoritySignMethod)
            case .dareLinearSVD: combined = TaskTensorMerge.dareLinear(deltas, weights: weights, density: density ?? 1, rng: &rng)
            case .dareTiesSVD: combined = TaskTensorMerge.dareTies(deltas, weights: weights, density: density ?? 1, signs: majoritySignMethod, rng: &rng)
            default: combined = TaskTensorMerge.magnitudePrune(deltas, weights: weights, density: density ?? 1)
            }
            let rank = svdRank ?? inputs.map(\.rank).max() ?? 1
            var (b, a) = try Self.factor(combined, rank: rank, module: module)
            if let q = svdClamp { (b, a) = Self.clamp(b: b, a: a, quantile: q) }
            return LoRAUpdate(a: a, b: b, scaling: 1, fanInFanOut: first.fanInFanOut)
        case .linear, .ties, .dareLinear, .dareTies, .magnitudePrune:
            guard Set(inputs.map(\.rank)).count == 1 else {
                throw MergeError.incompatibleInputs(
                    "\(module): \(type.rawValue) needs equal ranks, got \(inputs.map(\.rank)) (use cat or svd)")
            }
            var wa: [Float] = [], wb: [Float] = []
            for (x, w) in zip(inputs, weights) {
                let ws = w * x.scaling
                let root = Float(Double(abs(ws)).squareRoot())
                wa.append(ws >= 0 ? root : -root)
                wb.append(root)
            }
            func apply(_ ts: [Tensor], _ w: [Float], _ rng: inout SplitMix64) -> Tensor {
                let d = density ?? 1
                switch type {
                case .linear: return TaskTensorMerge.taskArithmetic(ts, weights: w)
                case .ties: return TaskTensorMerge.ties(ts, weights: w, density: d, signs: majoritySignMethod)
                case .dareLinear: return TaskTensorMerge.dareLinear(ts, weights: w, density: d, rng: &rng)
                case .dareTies: return TaskTensorMerge.dareTies(ts, weights: w, density: d, signs: majoritySignMethod, rng: &rng)
                default: return TaskTensorMerge.magnitudePrune(ts, weights: w, density: d)
                }
            }
            let a = apply(inputs.map(\.a), wa, &rng)
            let b = apply(inputs.map(\.b), wb, &rng)
            return LoRAUpdate(a: a, b: b, scaling: 1, fanInFanOut: first.fanInFanOut)
        }
    }

    /// PEFT's clamp of SVD factors: hi = quantile_q(concat(B, A)) (torch's linear interpolation),
    /// then both clamped to [−hi, hi]. The threshold depends on the sign each singular component
    /// got from the SVD routine, so it matches PEFT's only where the two LAPACKs chose the same
    /// signs (torch's and OpenBLAS's often differ).
    public static func clamp(b: Tensor, a: Tensor, quantile q: Double) -> (b: Tensor, a: Tensor) {
        let hi = torchQuantile(b.scalars + a.scalars, q) ?? 0
        return (b.map { min(max($0, -hi), hi) }, a.map { min(max($0, -hi), hi) })
    }

    /// Truncated SVD factors of an `[out, in]` delta: B = U_r·diag(σ_r) `[out, r]`, A = V_rᵀ
    /// `[r, in]` with r = min(rank, out, in) (PEFT's `_svd_generalized_task_arithmetic_weighted_adapter`).
    /// Computed in Float64.
    public static func factor(_ delta: Tensor, rank: Int, module: String) throws -> (b: Tensor, a: Tensor) {
        let s: SingularValueDecomposition
        do { s = try svd(delta, precision: .double) } catch {
            throw MergeError.numerical(tensor: module, reason: "SVD failed: \(error)")
        }
        let r = min(rank, s.singularValues.count)
        var b = Tensor(shape: [delta.rows, r])
        for i in 0..<delta.rows {
            for j in 0..<r { b[i, j] = s.u[i, j] * s.singularValues[j] }
        }
        let a = s.vt.rows(0..<r)
        return (b, a)
    }
}
