import Foundation
import Runtime
import Tensors

/// How the per-layer target shift Δ_ℓ is obtained.
public enum DistillMethod: String, Sendable, Codable, CaseIterable {
    /// Δ_ℓ = JVP of block ℓ along its own weight delta at the base activations (local, first order).
    case firstOrder = "first-order"
    /// Δ_ℓ = Z_ℓ^FT − Z_ℓ^base from two forward passes (cumulative: includes upstream changes).
    case oracle
    /// Δ_ℓ = Z_ℓ^FT − Z_ℓ of the base model already steered at layers < ℓ by the adapters fitted
    /// so far, so errors do not compound (one base pass per layer).
    case sequential
}

/// Options of `Distiller.distill`.
public struct DistillOptions: Sendable {
    public var method: DistillMethod
    public var fit: AdapterFitOptions
    /// Layers to steer (0-based, ascending); nil = all.
    public var layers: [Int]?
    /// Fraction of calibration tokens held out for reporting.
    public var heldOutFraction: Double
    /// Seed of the token split (the SiLU fit has its own in `fit.silu`).
    public var seed: UInt64
    /// Compute the Theorem 3.1 report and the site diagnostic per layer.
    public var diagnostics: Bool

    public init(method: DistillMethod = .sequential, fit: AdapterFitOptions = .init(), layers: [Int]? = nil,
                heldOutFraction: Double = 0.2, seed: UInt64 = 0, diagnostics: Bool = true) {
        self.method = method; self.fit = fit; self.layers = layers
        self.heldOutFraction = heldOutFraction; self.seed = seed; self.diagnostics = diagnostics
    }
}

/// One layer's result.
public struct LayerDistillation: Sendable {
    public var layer: Int
    public var fit: AdapterFitResult
    /// Theorem 3.1 for T = the best rank-r post-MLP linear steer's output X·A_pᵀ (no bias, on the
    /// held-in tokens) against the block outputs Z (tokens as rows).
    public var theorem31: Theorem31Report?
    /// Site diagnostic: held-out relative error of the same kind and rank reading the
    /// activation at `attentionOutput` (pre-MLP), `mlpOutput` (post-MLP) and `blockOutput`
    /// (post-block) and predicting the block-output shift Δ_ℓ. For the post-MLP site this is
    /// exactly a steer of X (it passes straight to Z); for the pre-MLP site the MLP's reaction to
    /// the steer is not modelled.
    public var siteErrors: [HookSiteKind: Float]
}

/// The distilled adapter and its per-layer report.
public struct DistillationResult: Sendable {
    /// Post-block adapter (site `blockOutput`), one `SteeringLayer` per steered layer.
    public var adapter: SteeringAdapter
    public var layers: [LayerDistillation]
    /// Wall time per phase.
    public var timings: DistillTimings
    /// Parameters of the adapter and their fraction of the base model's.
    public var parameterCount: Int
    public var parameterFraction: Double
    /// Relative change ‖W_FT − W_base‖_F / ‖W_base‖_F of the weights outside the blocks
    /// ("embedding", "final_norm", "lm_head"; only those that changed). Post-block steering cannot
    /// express these; a caller should warn with the figures.
    public var nonBlockChanges: [String: Float]
    /// Calibration tokens the fits and Theorem 3.1 used (the held-in ones).
    public var heldInTokens: Int

    /// Why the Theorem 3.1 columns say nothing, when they do not: with no more held-in tokens
    /// than the residual width, the block outputs of the held-in tokens span every token
    /// direction (rank Z = N), so any target lies in their span and e* = 0 trivially. nil when
    /// some layer's report is informative.
    public var uninformativeTheorem31: String? {
        let reports = layers.compactMap(\.theorem31)
        guard !reports.isEmpty, reports.allSatisfy({ $0.rankZ >= heldInTokens }) else { return nil }
        return "Theorem 3.1: the \(heldInTokens) held-in tokens are no more than the width, so the block outputs span "
            + "every token direction and e* = 0 says nothing; give more calibration tokens than the width for a bound that does"
    }
}

/// Where a running distillation is, reported as each phase starts.
public struct DistillProgress: Sendable {
    /// What the distillation is doing.
    public enum Phase: String, Sendable {
        /// Running the fine-tune's blocks up to the layer's (oracle and sequential).
        case finetunedForward = "fine-tune forward"
        /// Running the base's blocks up to the layer's (steered for sequential), and for
        /// first-order the block's JVP.
        case baseForward = "base forward"
        /// The layer's adapter fit.
        case fit
        /// Site fits and Theorem 3.1 of the layer.
        case diagnostics
        /// Finished.
        case done
    }
    public var phase: Phase
    /// Position of the current layer among the steered layers (0-based) and their count.
    public var layerIndex: Int
    public var layerCount: Int
    /// The model layer (0-based), nil for phases over all layers.
    public var layer: Int?
}

/// Wall-clock seconds of a distillation by phase (`DistillProgress.Phase`): forward passes of
/// both models (and first-order JVPs), adapter fits, diagnostics.
public struct DistillTimings: Sendable, Equatable {
    public var forward: Double = 0
    public var fit: Double = 0
    public var diagnostics: Double = 0
    public init() {}
    /// Forward + fit + diagnostics.
    public var total: Double { forward + fit + diagnostics }
    mutating func add(_ seconds: Double, to phase: DistillProgress.Phase) {
        switch phase {
        case .finetunedForward, .baseForward: forward += seconds
        case .fit: fit += seconds
        case .diagnostics: diagnostics += seconds
        case .done: break
        }
    }
}

/// Distils the difference between a base model and a fine-tuned one (different weights and/or
/// LoRA adapters added to it) into a post-block steering adapter, layer by layer, on
/// calibration token sequences (each run from position 0).
public enum Distiller {
    /// The weight delta of layer `layer`: the dense difference of the seven projections where
    /// the weights differ, plus `finetuned`'s LoRA adapters (kept factored when a projection has
    /// exactly one LoRA and no dense difference).
    public static func weightDelta(base: LlamaModel, finetuned: LlamaModel, layer: Int) -> LayerWeightDelta {
        let wb = base.weights.layers[layer], wf = finetuned.weights.layers[layer]
        var loras: [LlamaProjection: [LoRAFactors]] = [:]
        for a in finetuned.loraAdapters { for (p, f) in a.layers[layer] ?? [:] where f.rank > 0 { loras[p, default: []].append(f) } }
        for a in base.loraAdapters { for (p, f) in a.layers[layer] ?? [:] where f.rank > 0 { loras[p, default: []].append(LoRAFactors(a: f.a, b: f.b, scale: -f.scale)) } }
        var delta = LayerWeightDelta()
        for p in LlamaProjection.allCases {
            // Compared in their storage format; widened (this projection only) where they differ.
            let dense: Tensor? = wb[p] == wf[p] ? nil : wf[p].dense - wb[p].dense
            let fs = loras[p] ?? []
            if dense == nil, fs.count == 1 {
                delta[p] = .lowRank(a: fs[0].a, b: fs[0].b, scale: fs[0].scale)
            } else if dense != nil || !fs.isEmpty {
                var sum = dense ?? Tensor(shape: Shape(wb[p].dims))
                for f in fs { accumulate(&sum, f.delta) }
                delta[p] = .dense(sum)
            }
        }
        return delta
    }

    /// Runs the distillation. Base activations are recorded through the runtime's hooks;
    /// Δ_ℓ per `options.method`; fits per `options.fit` on held-in tokens (one split over all
    /// calibration tokens), reported on held-out ones.
    /// - Throws: `EquivalenceError.modelMismatch` when the models differ in shape, or errors of
    ///   the runtime and the fits.
    ///
    /// `progress`, when given, is called as each phase starts (see `DistillProgress`); the
    /// result's `timings` say where the time went.
    public static func distill(base: LlamaModel, finetuned: LlamaModel, sequences: [[Int]],
                               options: DistillOptions = .init(),
                               progress: ((DistillProgress) -> Void)? = nil) throws -> DistillationResult {
        let c = base.config, L = c.numHiddenLayers
        guard c.hiddenSize == finetuned.config.hiddenSize, L == finetuned.config.numHiddenLayers,
              c.intermediateSize == finetuned.config.intermediateSize else {
            throw EquivalenceError.modelMismatch("base and fine-tuned models differ in width, depth or MLP size")
        }
        guard !sequences.isEmpty, sequences.allSatisfy({ !$0.isEmpty }) else {
            throw EquivalenceError.tooFewTokens(what: "distillation", needed: 1, found: 0)
        }
        let layers = (options.layers ?? Array(0..<L)).sorted()
        guard layers.allSatisfy({ $0 >= 0 && $0 < L }), Set(layers).count == layers.count else {
            throw EquivalenceError.invalidArgument("layers \(layers) not distinct values in 0..<\(L)")
        }
        // The base as given, minus any steering adapters it already carries (its LoRAs stay).
        var plainBase = base.withoutAdapters
        for a in base.loraAdapters { try plainBase.add(a) }
        let n = sequences.reduce(0) { $0 + $1.count }
        let split = TokenSplit(count: n, heldOutFraction: options.heldOutFraction, seed: options.seed)
        // All calibration sequences go through each block in one pass (packed: each from
        // position 0, attending to itself), so every weight is read once per block, not once per
        // sequence, and each projection is one product over all N tokens.
        let tokens = sequences.flatMap { $0 }
        let noLogits = ForwardOptions(logits: .none, sequenceLengths: sequences.map(\.count))
        var timings = DistillTimings()
        var phaseStart = Date()
        var phase = DistillProgress.Phase.finetunedForward
        func enter(_ next: DistillProgress.Phase, _ index: Int, _ layer: Int?) {
            let now = Date()
            timings.add(now.timeIntervalSince(phaseStart), to: phase)
            phase = next; phaseStart = now
            progress?(DistillProgress(phase: next, layerIndex: index, layerCount: layers.count, layer: layer))
        }
        enter(.baseForward, 0, layers.first)

        // Both models are streamed a block at a time: the residual entering the next block is
        // all that is kept between layers (tokens × d per model), never every layer's
        // activations. A block run from the previous block's output computes exactly what the
        // full pass computes.
        var fitted: [Int: SteeringLayer] = [:]
        var reports: [LayerDistillation] = []
        var released = 0   // layers below this one have had their pages released
        // The fine-tune's residual stream (oracle and sequential), entering layer `ftLayer`.
        var ftResidual: Tensor? = nil
        var ftLayer = 0
        func finetunedBlockOutput(_ l: Int) throws -> Tensor {
            var o = noLogits
            o.layers = ftLayer..<(l + 1)
            o.record = [.blockOutput(l)]
            o.startResidual = ftResidual
            let z = try finetuned.forward(tokens: tokens, options: o).activations[.blockOutput(l)]!
            ftResidual = z
            ftLayer = l + 1
            return z
        }
        // The base's residual stream (steered at the layers fitted so far for sequential, plain
        // otherwise), entering layer `residualLayer`; each block runs once.
        var residual: Tensor? = nil
        var residualLayer = 0
        func advance(to target: Int) throws {
            guard target > residualLayer else { return }
            var o = noLogits
            o.layers = residualLayer..<target
            o.record = [.blockOutput(target - 1)]
            o.startResidual = residual
            residual = try plainBase.forward(tokens: tokens, options: o).activations[.blockOutput(target - 1)]!
            residualLayer = target
        }
        for (index, l) in layers.enumerated() {
            enter(.baseForward, index, l)
            try advance(to: l)
            var o = noLogits
            o.layers = l..<(l + 1)
            o.record = [.blockInput(l), .attentionOutput(l), .mlpOutput(l), .blockOutput(l)]
            o.startResidual = residual
            let recs = try plainBase.forward(tokens: tokens, options: o).activations
            let z = recs[.blockOutput(l)]!
            if options.method != .sequential {
                residual = z
                residualLayer = l + 1
            }
            let delta: Tensor
            switch options.method {
            case .oracle, .sequential:
                enter(.finetunedForward, index, l)
                delta = try finetunedBlockOutput(l) - z
            case .firstOrder:
                // The base layer as it runs: its own LoRAs (if any) merged into the weights.
                var baseLoRA = LayerWeightDelta()
                for a in base.loraAdapters {
                    for (p, f) in a.layers[l] ?? [:] where f.rank > 0 {
                        let prev = baseLoRA[p]?.denseMatrix() ?? Tensor(shape: Shape(base.weights.layers[l][p].dims))
                        baseLoRA[p] = .dense(prev + f.delta)
                    }
                }
                let ev = try FirstOrderMap(config: c, weights: base.layerWeights(l).adding(baseLoRA), layer: l)
                let wd = weightDelta(base: base, finetuned: finetuned, layer: l)
                // Per sequence: the block's first-order map runs from position 0 of each.
                let inputs = recs[.blockInput(l)]!
                delta = Tensor.concatenatingRows(try (noLogits.sequenceRows ?? []).map { rows in
                    try ev.jvp(try ev.forward(inputs.gatherRows(Array(rows))), delta: wd).output
                })
            }
            enter(.fit, index, l)
            // The held-in/held-out rows and the Float64 statistics of the held-in ones, built once
            // and shared by the fit, the site diagnostics and Theorem 3.1.
            let zi = z.gatherRows(split.heldIn), di = delta.gatherRows(split.heldIn)
            let heldOutShifts = delta.gatherRows(split.heldOut)
            let needGrams = options.fit.kind != .vector || options.diagnostics
            let deltaRows = needGrams ? CentredRows(di) : nil
            let zRows = needGrams ? CentredRows(zi) : nil
            let zGrams = zRows.flatMap { zr in deltaRows.map { RegressionGrams(inputs: zr, targets: $0) } }
            let fit = try AdapterFit.fit(heldIn: SplitRows(activations: zi, shifts: di),
                                         heldOut: SplitRows(activations: z.gatherRows(split.heldOut), shifts: heldOutShifts),
                                         grams: options.fit.kind == .vector ? nil : zGrams, options: options.fit)
            fitted[l] = fit.layer
            if options.method == .sequential {
                // The steered block output becomes the residual entering layer l + 1.
                let act = activation(options.fit.kind)
                residual = z + fit.layer.shift(z, activation: act)
                residualLayer = l + 1
            }
            var report = LayerDistillation(layer: l, fit: fit, theorem31: nil, siteErrors: [:])
            if options.diagnostics, let deltaRows, let zRows, let zGrams {
                enter(.diagnostics, index, l)
                let x = recs[.mlpOutput(l)]!, attn = recs[.attentionOutput(l)]!
                let xi = x.gatherRows(split.heldIn)
                let xGrams = RegressionGrams(inputs: CentredRows(xi), targets: deltaRows)
                let r = max(fit.rank, 1)
                var siteOptions = options.fit
                if siteOptions.kind == .vector { siteOptions.kind = .linear }
                siteOptions.rank = .fixed(r)
                for kind in [HookSiteKind.attentionOutput, .mlpOutput, .blockOutput] {
                    // At the block output with the fit's own kind and rank the site fit is the
                    // fit itself (same rows, same deterministic computation): reuse it.
                    if kind == .blockOutput && options.fit.kind != .vector && fit.rank == r {
                        report.siteErrors[kind] = fit.heldOutRelativeError
                        continue
                    }
                    let inputs: Tensor, heldIn: Tensor, grams: RegressionGrams
                    switch kind {
                    case .attentionOutput:
                        inputs = attn; heldIn = attn.gatherRows(split.heldIn)
                        grams = RegressionGrams(inputs: CentredRows(heldIn), targets: deltaRows)
                    case .mlpOutput: inputs = x; heldIn = xi; grams = xGrams
                    default: inputs = z; heldIn = zi; grams = zGrams
                    }
                    report.siteErrors[kind] = try AdapterFit.fit(
                        heldIn: SplitRows(activations: heldIn, shifts: di),
                        heldOut: SplitRows(activations: inputs.gatherRows(split.heldOut), shifts: heldOutShifts),
                        grams: grams, options: siteOptions).heldOutRelativeError
                }
                // Theorem 3.1 for T = X·W_r (the best rank-r post-MLP linear steer without bias) against
                // Z on the held-in tokens. T = P·Uᵀ with P = X·down and U = V_r orthonormal, so the
                // report is computed from P ([N, r]) and Z: through Z's uncentred Gram
                // ZᵀZ = ZcᵀZc + N·m mᵀ (already in the fit's statistics) with P's Grams ([r, r],
                // [r, d]), or, with fewer held-in tokens than features (the fit's statistics keep
                // the rows then), through Z's [N, N] token kernel.
                let post = try ReducedRankRegression(grams: xGrams.uncentred, ridge: options.fit.ridge, directionLimit: r)
                let f = post.factors(rank: min(r, post.maximumRank))
                let pw = DoubleMatrix(matmul(xi, f.down))
                if zGrams.rows != nil {
                    report.theorem31 = try Theorem31.analyze(target: pw, blockOutput: DoubleMatrix(zi))
                } else {
                    var pz = pw.multiplied(by: zRows.centred, transposeSelf: true)          // Pᵀ Z_c
                    var pSum = [Double](repeating: 0, count: pw.columns)
                    for i in 0..<pw.rows { for j in 0..<pw.columns { pSum[j] += pw[i, j] } }
                    pz.addOuterProduct(pSum, zRows.mean)                                     // Pᵀ Z
                    var zz = zGrams.inputGram
                    zz.addOuterProduct(zRows.mean, zRows.mean, alpha: Double(zRows.count))
                    report.theorem31 = try Theorem31.analyze(Theorem31Grams(targetGram: pw.gram(), crossGram: pz, blockOutputGram: zz))
                }
            }
            reports.append(report)
            // Both models have run every block up to l for the last time (the streams only move
            // forward): their pages can leave the resident set, so a model mapped from a file
            // costs about one layer at a time.
            for j in released...l {
                plainBase.releasePages(layer: j)
                finetuned.releasePages(layer: j)
            }
            released = l + 1
        }
        enter(.done, layers.count, nil)
        let adapter = SteeringAdapter(site: .blockOutput, activation: activation(options.fit.kind), layers: fitted,
                                      madeFor: base.signature)
        let params = adapter.parameterCount
        return DistillationResult(adapter: adapter, layers: reports, timings: timings, parameterCount: params,
                                  parameterFraction: Double(params) / Double(max(base.weights.parameterCount, 1)),
                                  nonBlockChanges: nonBlockChanges(base: base.weights, finetuned: finetuned.weights),
                                  heldInTokens: split.heldIn.count)
    }

    /// Relative Frobenius changes of the non-block weights that differ (see `DistillationResult`).
    /// Matrices are compared in their storage format and, where they differ, reduced a tile of
    /// rows at a time (never an f32 copy of the embedding or the head).
    public static func nonBlockChanges(base: LlamaWeights, finetuned: LlamaWeights) -> [String: Float] {
        var out: [String: Float] = [:]
        if let r = base.embedding.relativeFrobeniusChange(to: finetuned.embedding) { out["embedding"] = r }
        if base.finalNorm.shape == finetuned.finalNorm.shape, base.finalNorm != finetuned.finalNorm {
            let n = base.finalNorm.frobeniusNorm
            out["final_norm"] = n == 0 ? .infinity : (finetuned.finalNorm - base.finalNorm).frobeniusNorm / n
        }
        if let r = base.outputProjection.relativeFrobeniusChange(to: finetuned.outputProjection) { out["lm_head"] = r }
        return out
    }

    static func activation(_ kind: AdapterKind) -> SteeringActivation { kind == .silu ? .silu : .identity }
}
