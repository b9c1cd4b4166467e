#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// The scalar a training step minimises, per sequence of T tokens: a mean over the predicted
/// positions (rows 0..<T−1 of the logits, row t predicting token t+1; for
/// `targetedCrossEntropy` only the rows predicting a target), in nats.
public enum TrainingObjective: Sendable {
    /// KL(p_ref ‖ p_model) per position; the reference's log-probabilities `[T, vocab]` (or at
    /// least `[T−1, vocab]`) row-major, e.g. from `logSoftmaxRows` of the
    /// fine-tuned model's logits.
    case kl(referenceLogProbs: Tensor)
    /// Next-token cross-entropy −log p_model(token[t+1]).
    case crossEntropy
    /// Next-token cross-entropy on the tokens marked as targets only (`targets[t]`: token t is
    /// learnt, e.g. a completion's; `TrainingExample.targets`, as long as the sequence); the
    /// batch's mean runs over its targets.
    case targetedCrossEntropy(targets: [Bool])

    /// The positions of a sequence of `length` tokens this objective averages over.
    func predictedPositions(length: Int) -> Int {
        switch self {
        case .kl, .crossEntropy: max(length - 1, 0)
        case let .targetedCrossEntropy(targets): targets.dropFirst().reduce(0) { $0 + ($1 ? 1 : 0) }
        }
    }
}

/// A loss value and the gradients of every trainable adapter parameter.
public struct SteeringGradients: Sendable {
    /// The loss (mean over all predicted positions of the batch).
    public var loss: Double
    /// Predicted positions the mean ran over.
    public var positions: Int
    /// ∂loss/∂parameter, shaped as the adapter's layers: `down` and `up` `[d, r]`, `bias` `[d]`
    /// (present exactly where the adapter has them).
    public var layers: [Int: SteeringLayer]
    /// ∂loss/∂(LoRA factors) for the trainable LoRA passed in, per layer and projection: `a`
    /// `[r, in]`, `b` `[out, r]` (`scale` copied from the LoRA, not a gradient); empty without one.
    public var lora: [Int: [LlamaProjection: LoRAFactors]] = [:]
}

/// Reverse-mode differentiation of a frozen Llama model's loss with respect to post-block
/// steering adapters (site `blockOutput`, Δh = U·φ(Dᵀh) + b, row form φ(h·D)·Uᵀ + b, times the
/// adapter's `scale`).
///
/// One pass per pack of consecutive sequences (up to `packedRowBudget` rows; each sequence from
/// position 0, attending to itself only), all their tokens batched in each gemm: the forward runs every layer
/// through `DecoderBlock` (the forward pass's own block) with a `BlockTape` (block inputs,
/// normalisations, rotated q, attention heads, MLP pre-activations; keys and values stay in a
/// KV cache), the adapter at the `blockOutput` hook keeping the pre-steer block output; the
/// backward runs lm_head (or the tied embedding), the final RMSNorm and `DecoderBlock.backward`
/// per layer (attention probabilities recomputed head by head), accumulating the adapters'
/// gradients on the way. The base weights are read in place, never copied. Memory: the tape of
/// one pack of R rows (≈ R·(6d + 2·heads·hd + 3·d_ff) floats per layer), its logits (R·vocab
/// floats) and 2·S² floats of attention scratch for its longest sequence S.
public struct SteeringBackprop: Sendable {
    /// The frozen model (without adapters).
    public let model: LlamaModel

    /// Wraps `model`. Adapters it carries are not supported (merge LoRAs into the weights first;
    /// pass steering as the trained adapter).
    /// - Throws: `RuntimeError.unsupportedFeature` when the model carries adapters.
    public init(model: LlamaModel) throws {
        guard model.loraAdapters.isEmpty, model.steeringAdapters.isEmpty else {
            throw RuntimeError.unsupportedFeature("backpropagation through a model that carries adapters", source: "SteeringBackprop")
        }

        self.model = model
    }

    /// Loss and adapter gradients for a batch: the mean over all predicted positions of all
    /// sequences (each run from position 0). `objectives[i]` belongs to `sequences[i]`.
    /// - Throws: `RuntimeError.invalidArgument` for a site other than `blockOutput`, a sequence
    ///   shorter than 2 tokens, or reference log-probs of the wrong shape;
    ///   `.tokenOutOfRange`; `.adapterMismatch` from the adapter's validation.
    ///
    /// `lora` (optional) is a trainable LoRA applied unmerged inside the projections
    /// (y = x·Wᵀ + scale·(x·Aᵀ)·Bᵀ); its A/B gradients come back in `SteeringGradients.lora`.
    ///
    /// Consecutive sequences whose lengths sum to at most `maxPackedRows` (default
    /// `packedRowBudget`) run as one pass, each
    /// attending only to itself (`DecoderBlock.forward(…sequences:)`), so every projection is one
    /// product over all their tokens; the pass's tape and logits grow with its rows.
    ///
    /// An adapter of the last prompt token only (`SteeringPositions.last`) needs
    /// `promptLengths` (per sequence, 1 ≤ length < its token count): it shifts row
    /// `promptLengths[i] − 1` of sequence i and no other.
    public func lossAndGradients(sequences: [[Int]], objectives: [TrainingObjective],
                                 adapter: SteeringAdapter, lora: LoRAWeights? = nil, promptLengths: [Int]? = nil,
                                 computeGradients: Bool = true, maxPackedRows: Int? = nil) throws -> SteeringGradients {
        guard sequences.count == objectives.count else {
            throw RuntimeError.invalidArgument("lossAndGradients: \(sequences.count) sequences, \(objectives.count) objectives")
        }
        if adapter.positions == .last {
            guard let promptLengths, promptLengths.count == sequences.count,
                  zip(promptLengths, sequences).allSatisfy({ $0 >= 1 && $0 < $1.count }) else {
                throw RuntimeError.invalidArgument("lossAndGradients: an adapter of the last prompt token needs one prompt length per sequence, each from 1 to the sequence's length − 1")
            }
        }
        guard adapter.site == .blockOutput else {
            throw RuntimeError.invalidArgument("lossAndGradients: only post-block (block_output) adapters are trainable, got \(adapter.site)")
        }
        try adapter.validate(for: model.config, name: "trained adapter")
        for (i, (tokens, objective)) in zip(sequences, objectives).enumerated() {
            if case let .targetedCrossEntropy(targets) = objective, targets.count != tokens.count {
                throw RuntimeError.invalidArgument("lossAndGradients: sequence \(i) has \(tokens.count) tokens and \(targets.count) target flags")
            }
        }
        let positions = zip(sequences, objectives).reduce(0) { $0 + $1.1.predictedPositions(length: $1.0.count) }
        guard positions > 0, sequences.allSatisfy({ $0.count >= 2 }) else {
            throw RuntimeError.invalidArgument("lossAndGradients: every sequence needs at least 2 tokens, and the batch a position to predict")
        }
        var grads: [Int: SteeringLayer] = [:]
        for (l, s) in adapter.layers {
            grads[l] = SteeringLayer(down: s.down.map { Tensor(shape: $0.shape) }, up: s.up.map { Tensor(shape: $0.shape) },
                                     bias: s.bias.map { Tensor(shape: $0.shape) })
        }
        var loraGrads: [Int: [LlamaProjection: LoRAFactors]] = [:]
        if let lora {
            try lora.validate(for: model.config)
            for (l, modules) in lora.layers {
                for (p, f) in modules where f.rank > 0 {
                    loraGrads[l, default: [:]][p] = LoRAFactors(a: Tensor(shape: f.a.shape), b: Tensor(shape: f.b.shape), scale: f.scale)
                }
            }
        }
        var loss = 0.0
        for pack in Self.packs(lengths: sequences.map(\.count), maxRows: maxPackedRows ?? packedRowBudget) {
            let prompts = adapter.positions == .last ? pack.map { promptLengths![$0] } : nil
            loss += try run(pack.map { (sequences[$0], objectives[$0]) }, promptLengths: prompts, adapter: adapter, lora: lora,
                            weight: 1 / Float(positions), backward: computeGradients, gradients: &grads, loraGradients: &loraGrads)
        }
        return SteeringGradients(loss: loss / Double(positions), positions: positions, layers: grads, lora: loraGrads)
    }

    /// The default rows of one pass: what keeps its tape and logits within 1 GiB
    /// (4 bytes · (layers · (6d + 2·heads·head_dim + 3·d_ff) + vocab) per row), between 1 and 4,096.
    /// Llama-3.1-8B's shape gets about 100 rows (a 128-token window runs alone, as before packing),
    /// SmolLM2-135M's about 800.
    public var packedRowBudget: Int {
        let c = model.config
        let perLayer = 6 * c.hiddenSize + 2 * c.numAttentionHeads * c.headDim + 3 * c.intermediateSize
        let bytesPerRow = 4 * (c.numHiddenLayers * perLayer + c.vocabSize)
        return min(max((1 << 30) / max(bytesPerRow, 1), 1), 4096)
    }

    /// Consecutive groups of sequence indices whose lengths sum to at most `maxRows` (a longer
    /// sequence alone), in order: each group is one pass.
    static func packs(lengths: [Int], maxRows: Int) -> [[Int]] {
        var out: [[Int]] = [], current: [Int] = [], rows = 0
        for (i, n) in lengths.enumerated() {
            if !current.isEmpty, rows + n > maxRows { out.append(current); current = []; rows = 0 }
            current.append(i); rows += n
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    // MARK: - One pass

    /// One pass over the sequences of `pack` (rows laid end to end): forward with tape (every
    /// block through `DecoderBlock` with a `BlockTape`, the post-block adapter at the
    /// `blockOutput` hook, on every row or with `promptLengths` on each sequence's last prompt
    /// row only), loss (sum over positions, times `weight`), and with
    /// `backward` the backward pass accumulating `weight ·` ∂(sum)/∂θ into the gradients.
    /// Returns the unweighted sum of per-position losses.
    private func run(_ pack: [([Int], TrainingObjective)], promptLengths: [Int]?, adapter: SteeringAdapter, lora: LoRAWeights?, weight: Float,
                     backward: Bool, gradients: inout [Int: SteeringLayer],
                     loraGradients: inout [Int: [LlamaProjection: LoRAFactors]]) throws -> Double {
        let c = model.config, w = model.weights
        let d = c.hiddenSize, V = c.vocabSize, L = c.numHiddenLayers
        var segments: [Range<Int>] = []
        for (tokens, objective) in pack {
            let lo = segments.last?.upperBound ?? 0
            segments.append(lo..<(lo + tokens.count))
            for (i, t) in tokens.enumerated() where t < 0 || t >= V {
                throw RuntimeError.tokenOutOfRange(token: t, position: i, vocabSize: V)
            }
            if case let .kl(ref) = objective {
                guard ref.rank == 2, ref.columns == V, ref.rows >= tokens.count - 1 else {
                    throw RuntimeError.invalidArgument("reference log-probs \(ref.shape) do not cover [\(tokens.count - 1), \(V)]")
                }
            }
        }
        let T = segments.last?.upperBound ?? 0, longest = segments.map(\.count).max() ?? 0
        let packed: [Range<Int>]? = segments.count > 1 ? segments : nil
        let arena = FloatArena()
        let act: SteeringActivation = adapter.activation
        let sc = adapter.scale
        let rotation = model.rotary.tables(positions: 0..<longest)
        let localRotation = model.localRotary?.tables(positions: 0..<longest)
        func tables(_ l: Int) -> RotaryTables { model.blocks[l].rotary == .local ? localRotation ?? rotation : rotation }
        let maxRank = lora?.maxRank ?? 0
        let buf = BlockBuffers(rows: T, config: c, maxLoRARank: maxRank, useBLAS: true)
        let cache = KVCache(config: c, capacity: T)
        let blocks = (0..<L).map { l in
            var loras: [LlamaProjection: [LoRAFactors]] = [:]
            for (p, f) in lora?.layers[l] ?? [:] where f.rank > 0 { loras[p] = [f] }
            return DecoderBlock(description: model.blocks[l], weights: w.layers[l], loras: loras)
        }

        // The steered rows: all (nil), or each sequence's last prompt row.
        let steered = promptLengths.map { SteeringPositions.lastPromptRows(sequences: segments, firstPosition: 0, promptLengths: $0) }
        /// Copies rows `rows` of `p` `[T, d]` out (`[rows.count, d]`), or back in from `t`.
        func gather(_ p: UnsafePointer<Float>, _ rows: [Int]) -> Tensor {
            Tensor(shape: [rows.count, d]) { o in for (i, r) in rows.enumerated() { (o.baseAddress! + i * d).update(from: p + r * d, count: d) } }
        }

        // Forward: the residual stream in buf.x; per steered layer the pre-steer block output Z
        // (its steered rows) is kept.
        let x = buf.x
        for (seg, (tokens, _)) in zip(segments, pack) {
            for (t, id) in tokens.enumerated() { w.embedding.copyRow(id, into: x + (seg.lowerBound + t) * d) }
        }
        if let scale = model.embeddingScale { for i in 0..<(T * d) { x[i] *= scale } }
        // Nothing below the lowest trainable layer needs a gradient: blocks under it run without a
        // tape and are not differentiated, nor is that layer's block unless it holds a LoRA (its
        // output adapter needs only the gradient from above).
        let loraLayers = Set((lora?.layers ?? [:]).filter { $0.value.values.contains { $0.rank > 0 } }.keys)
        let lowest = min(adapter.layers.keys.min() ?? L, loraLayers.min() ?? L)
        func differentiates(_ l: Int) -> Bool { l > lowest || (l == lowest && loraLayers.contains(l)) }
        var tapes: [BlockTape?] = []
        tapes.reserveCapacity(L)
        var steerInput: [Int: Tensor] = [:]
        for l in 0..<L {
            let tape = differentiates(l) ? BlockTape(rows: T, config: c, layer: w.layers[l]) : nil
            try blocks[l].forward(buffers: buf, rows: T, start: 0, keys: cache.keyBase(l), values: cache.valueBase(l),
                                  rotation: tables(l), config: c, tape: tape, sequences: packed) { kind, x in
                guard kind == .blockOutput, let s = adapter.layers[l] else { return }
                // Z ← Z + scale·Δ(Z) on the steered rows, Δ from the pre-steer Z (kept for the backward).
                let rows = steered ?? Array(0..<T)
                let z = steered.map { gather(x, $0) } ?? Tensor(shape: [T, d]) { $0.baseAddress!.update(from: x, count: T * d) }
                steerInput[l] = z
                let shift = s.shift(z, activation: act)
                shift.withUnsafeBufferPointer { sp in
                    for (i, r) in rows.enumerated() { for j in 0..<d { x[r * d + j] += sc * sp[i * d + j] } }
                }
            }
            tapes.append(tape)
            if model.streamsLayerPages { model.releasePages(layer: l) }
        }

        // Final norm, logits, loss and its gradient.
        let rF = arena.make(T), xnF = arena.make(T * d)
        w.finalNorm.withUnsafeBufferPointer {
            RMSNorm.forward(x, rows: T, d: d, gain: $0.baseAddress!, eps: c.rmsNormEps, out: xnF, inverseRMS: rF)
        }
        // Logits only for the rows that predict something (every row but a sequence's last; for
        // targetedCrossEntropy the rows before a target): lm_head's forward and backward are then
        // products over those rows alone, a quarter of a prompt/completion batch's rows or fewer.
        var lossRows: [(row: Int, sequence: Int, t: Int)] = []
        for (i, (seg, (_, objective))) in zip(segments, pack).enumerated() {
            for t in 0..<(seg.count - 1) {
                if case let .targetedCrossEntropy(targets) = objective, !targets[t + 1] { continue }
                lossRows.append((seg.lowerBound + t, i, t))
            }
        }
        let R = lossRows.count
        guard R > 0 else { return 0 }   // nothing predicted in this pack: no loss, no gradient
        let head = w.outputProjection
        let xnRows = arena.make(R * d)
        for (k, r) in lossRows.enumerated() { (xnRows + k * d).update(from: xnF + r.row * d, count: d) }
        let logits = arena.make(R * V)
        Kernels.linear(xnRows, rows: R, weight: head, bias: nil, loras: [], out: logits, ldo: V, scratch: buf.lora, useBLAS: true)
        let gLogits = logits   // overwritten row by row with the gradient
        var total = 0.0
        // Per row: e_j = exp(z_j − max) once (f32), lse in Double; q_j = e_j / Σe. The loss sums
        // in Double; the gradient (q − p_ref)·weight is formed in f32.
        // e^x through the vectorised kernel (VectorMath.exp, within 2 ulp of expf): the V-wide
        // exponentials of every row are most of this loop's cost.
        var e = [Float](repeating: 0, count: V), p = [Float](repeating: 0, count: V)
        for (k, (_, i, t)) in lossRows.enumerated() {
            let (tokens, objective) = pack[i]
            let row = logits + k * V
            var mx = -Float.infinity
            for j in 0..<V { mx = max(mx, row[j]) }
            var sum = 0.0
            e.withUnsafeMutableBufferPointer { eb in
                let ep = eb.baseAddress!
                for j in 0..<V { ep[j] = row[j] - mx }
                VectorMath.exp(ep, into: ep, count: V)
                for j in 0..<V { sum += Double(ep[j]) }
            }
            let lse = Double(mx) + log(sum)
            let invSum = Float(1 / sum)
            switch objective {
            case let .kl(ref):
                ref.withUnsafeBufferPointer { rp in
                    var kl = 0.0
                    let r = rp.baseAddress! + t * V
                    p.withUnsafeMutableBufferPointer { VectorMath.exp(r, into: $0.baseAddress!, count: V) }
                    for j in 0..<V {
                        let lr = r[j], pr = p[j]
                        kl += Double(pr) * (Double(lr) - (Double(row[j]) - lse))
                        row[j] = weight * (e[j] * invSum - pr)
                    }
                    total += kl
                }
            case .crossEntropy, .targetedCrossEntropy:
                let target = tokens[t + 1]
                total -= Double(row[target]) - lse
                for j in 0..<V { row[j] = weight * (e[j] * invSum - (j == target ? 1 : 0)) }
            }
        }
        guard backward else { return total }

        // Backward: lm_head (its rows scattered back; the other rows' gradient is 0), final norm.
        let gxnRows = arena.make(R * d)
        head.multiplyTransposed(gLogits, tokens: R, ldg: V, into: gxnRows, ldo: d)
        let gxn = arena.make(T * d)   // zeroed
        for (k, r) in lossRows.enumerated() { (gxn + r.row * d).update(from: gxnRows + k * d, count: d) }
        var g = arena.make(T * d), gNext = arena.make(T * d)
        w.finalNorm.withUnsafeBufferPointer {
            RMSNorm.backward(x, gy: gxn, rows: T, d: d, gain: $0.baseAddress!, inverseRMS: rF, gx: g)
        }
        let gradientBuffers = BlockGradientBuffers(rows: T, config: c, maxLoRARank: maxRank, sequenceRows: longest)
        for l in stride(from: L - 1, through: lowest, by: -1) {
            // Post-block adapter: g holds ∂/∂(steered Z); only the steered rows have a shift to differentiate.
            if let s = adapter.layers[l], let z = steerInput[l] {
                if let rows = steered {
                    var gRows = gather(g, rows)
                    gRows.withUnsafeMutableBufferPointer { gp in
                        s.backward(input: z, gradient: gp.baseAddress!, activation: act, scale: sc, into: &gradients[l]!)
                        for (i, r) in rows.enumerated() { (g + r * d).update(from: gp.baseAddress! + i * d, count: d) }
                    }
                } else {
                    s.backward(input: z, gradient: g, activation: act, scale: sc, into: &gradients[l]!)
                }
            }
            guard differentiates(l), let tape = tapes[l] else { continue }
            var layerLoRA = loraGradients[l] ?? [:]
            blocks[l].backward(tape: tape, keys: cache.keyBase(l), values: cache.valueBase(l), rotation: tables(l),
                               config: c, gradient: g, into: gNext, buffers: gradientBuffers, loraGradients: &layerLoRA,
                               sequences: packed)
            if loraGradients[l] != nil { loraGradients[l] = layerLoRA }
            if model.streamsLayerPages { model.releasePages(layer: l) }
            swap(&g, &gNext)
        }
        return total
    }
}
