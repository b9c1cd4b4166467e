import Tensors

/// The weights the forward pass runs on: norms and biases in f32, the weight matrices (seven
/// projections per layer, embedding, output head) as `ProjectionWeight` (f32, bf16/f16 or GGML blocks),
/// read in place by every computation (forward, backward, distillation, fold-back).
public struct LlamaWeights: Sendable {
    /// One decoder layer; matrices `[out, in]`, computing `x · Wᵀ`.
    public struct Layer: Sendable {
        /// RMSNorm₁ gain `[d]`.
        public var inputNorm: Tensor
        /// `[heads·head_dim, d]`, `[kv_heads·head_dim, d]` ×2, `[d, heads·head_dim]`.
        public var q, k, v, o: ProjectionWeight
        /// Optional biases `[out]` (Qwen2-style); nil for Llama.
        public var qBias, kBias, vBias, oBias: Tensor?
        /// RMSNorm₂ gain `[d]`, before the MLP (Hugging Face Llama's `post_attention_layernorm`,
        /// Gemma's `pre_feedforward_layernorm`).
        public var mlpNorm: Tensor
        /// `[d_ff, d]`, `[d_ff, d]`, `[d, d_ff]`.
        public var gate, up, down: ProjectionWeight
        /// Per-head RMSNorm gains of the queries and keys `[head_dim]`, applied after their
        /// projections and before RoPE (Gemma-3's `q_norm` / `k_norm`); nil when the layer has none.
        public var queryNorm, keyNorm: Tensor?
        /// RMSNorm gains `[d]` on the attention output and on the MLP output before their residual
        /// adds (Gemma's `post_attention_layernorm` / `post_feedforward_layernorm`); nil when absent.
        public var attentionOutputNorm, mlpOutputNorm: Tensor?

        /// The optional norm gains present, each `[head_dim]` or `[d]`.
        var extraNorms: [Tensor] { [queryNorm, keyNorm, attentionOutputNorm, mlpOutputNorm].compactMap { $0 } }

        /// The matrix of projection `p`.
        public subscript(_ p: LlamaProjection) -> ProjectionWeight {
            get { self[keyPath: Self.matrix(p)] }
            set { self[keyPath: Self.matrix(p)] = newValue }
        }

        private static func matrix(_ p: LlamaProjection) -> WritableKeyPath<Layer, ProjectionWeight> {
            switch p {
            case .q: \.q
            case .k: \.k
            case .v: \.v
            case .o: \.o
            case .gate: \.gate
            case .up: \.up
            case .down: \.down
            }
        }

        /// The bias of projection `p` `[out]`, if the layer holds one (q, k, v, o only).
        public func bias(_ p: LlamaProjection) -> Tensor? {
            switch p {
            case .q: qBias
            case .k: kBias
            case .v: vBias
            case .o: oBias
            case .gate, .up, .down: nil
            }
        }

        /// A layer from its parts (shapes are checked by whoever runs it: `LlamaModel` through
        /// `LlamaWeights.load`, the Equivalence block evaluator on construction).
        public init(inputNorm: Tensor, q: ProjectionWeight, k: ProjectionWeight, v: ProjectionWeight, o: ProjectionWeight,
                    qBias: Tensor? = nil, kBias: Tensor? = nil, vBias: Tensor? = nil, oBias: Tensor? = nil,
                    mlpNorm: Tensor, gate: ProjectionWeight, up: ProjectionWeight, down: ProjectionWeight,
                    queryNorm: Tensor? = nil, keyNorm: Tensor? = nil,
                    attentionOutputNorm: Tensor? = nil, mlpOutputNorm: Tensor? = nil) {
            self.inputNorm = inputNorm; self.q = q; self.k = k; self.v = v; self.o = o
            self.qBias = qBias; self.kBias = kBias; self.vBias = vBias; self.oBias = oBias
            self.mlpNorm = mlpNorm; self.gate = gate; self.up = up; self.down = down
            self.queryNorm = queryNorm; self.keyNorm = keyNorm
            self.attentionOutputNorm = attentionOutputNorm; self.mlpOutputNorm = mlpOutputNorm
        }

        /// The layer with its seven matrices held f32 (the form the first-order map and fold-back
        /// read): f32 matrices shared, bf16/f16 and block ones widened into new buffers (this
        /// layer's only: about 4·parameters bytes of the layer).
        public func widened() -> Layer {
            var out = self
            for p in LlamaProjection.allCases {
                if case .f32 = self[p] { continue }
                out[p] = .f32(self[p].dense)
            }
            return out
        }

        /// Parameters of the layer: matrices, norms and biases.
        public var parameterCount: Int {
            LlamaProjection.allCases.reduce(vectorParameterCount) { $0 + self[$1].rows * self[$1].columns }
        }

        /// Parameters held as f32 vectors: the norm gains and the biases.
        public var vectorParameterCount: Int {
            LlamaProjection.allCases.reduce(inputNorm.count + mlpNorm.count + extraNorms.reduce(0) { $0 + $1.count }) {
                $0 + (bias($1)?.count ?? 0)
            }
        }
    }

    /// Token embeddings `[vocab, d]` (rows are gathered, never multiplied unless tied).
    public var embedding: ProjectionWeight
    /// Decoder layers, 0-based.
    public var layers: [Layer]
    /// Final RMSNorm gain `[d]`.
    public var finalNorm: Tensor
    /// `[vocab, d]`, or nil when tied to `embedding`.
    public var lmHead: ProjectionWeight?

    /// The output projection actually used: `lmHead`, or the embedding when tied.
    public var outputProjection: ProjectionWeight { lmHead ?? embedding }

    /// Every weight matrix (embedding, then layer by layer q…down, then lm_head if untied).
    public var matrices: [ProjectionWeight] {
        [embedding] + layers.flatMap { l in LlamaProjection.allCases.map { l[$0] } } + (lmHead.map { [$0] } ?? [])
    }

    /// The same weights with every matrix in `storage` (Q8_0 matrices quantized from f32 or from
    /// widened bf16/f16 or GGML-block values, or everything widened to f32); norms and biases unchanged.
    /// `.native` keeps every matrix as it is held (a model in memory has no file dtype to return to).
    /// - Throws: `RuntimeError.shapeMismatch` for a matrix Q8_0 cannot hold (columns not a
    ///   multiple of 32).
    public func converted(to storage: WeightStorage, source: String = "model") throws -> LlamaWeights {
        func convert(_ m: ProjectionWeight, _ name: String) throws -> ProjectionWeight {
            switch (storage, m) {
            case (.native, _), (.f32, .f32): m
            case (.f32, .half), (.f32, .quantized): .f32(m.dense)
            case (.q8_0, .quantized(let g)) where g.type == .q8_0: m
            case (.q8_0, _): .quantized(try GGMLMatrix(quantizing: m.dense, as: .q8_0, name: name, source: source))
            }
        }
        return try mappingMatrices(convert)
    }

    /// The same weights with every matrix rounded to `format` (round to nearest even, held in
    /// buffers of their own): what a checkpoint saved in that dtype loads as with `.native`.
    /// Norms and biases unchanged.
    public func rounded(to format: HalfMatrix.Format) throws -> LlamaWeights {
        try mappingMatrices { m, name in .half(try HalfMatrix(rounding: m.dense, to: format, name: name)) }
    }

    /// The same weights with `transform(matrix, HF tensor name)` applied to the embedding, every
    /// layer's seven projections and the untied output head; norms and biases unchanged.
    /// - Throws: `RuntimeError.shapeMismatch` naming the tensor when `transform` changes a shape,
    ///   or what `transform` throws.
    public func mappingMatrices(_ transform: (ProjectionWeight, String) throws -> ProjectionWeight) throws -> LlamaWeights {
        func apply(_ m: ProjectionWeight, _ name: String) throws -> ProjectionWeight {
            let t = try transform(m, name)
            guard t.dims == m.dims else {
                throw RuntimeError.shapeMismatch(tensor: name, expected: m.dims, found: t.dims, source: "mappingMatrices")
            }
            return t
        }
        var out = self
        out.embedding = try apply(embedding, "model.embed_tokens.weight")
        for l in out.layers.indices {
            for p in LlamaProjection.allCases {
                out.layers[l][p] = try apply(layers[l][p], p.modulePath(layer: l) + ".weight")
            }
        }
        out.lmHead = try lmHead.map { try apply($0, "lm_head.weight") }
        return out
    }

    /// `.f32` when every matrix is f32, `.q8_0` when every matrix is Q8_0, else `.native` (some
    /// matrix is bf16/f16, or the holdings are mixed, as a GGUF of several types loads natively).
    public var storage: WeightStorage {
        if matrices.allSatisfy({ if case .f32 = $0 { true } else { false } }) { return .f32 }
        if matrices.allSatisfy({ if case .quantized(let g) = $0 { g.type == .q8_0 } else { false } }) { return .q8_0 }
        return .native
    }

    /// Parameters of the model: embedding, layers, final norm and the untied output head.
    public var parameterCount: Int {
        embedding.rows * embedding.columns + layers.reduce(0) { $0 + $1.parameterCount } + finalNorm.count
            + (lmHead.map { $0.rows * $0.columns } ?? 0)
    }

    /// Bytes of all weights held (matrices at their storage size, norms and biases at 4 bytes).
    public var byteCount: Int {
        matrices.reduce(0) { $0 + $1.byteCount } + 4 * layers.reduce(finalNorm.count) { $0 + $1.vectorParameterCount }
    }

    /// Loads every weight by its Hugging Face name and checks shapes against `config` (see
    /// `LlamaWeights.load` for the names): `matrix(name)` returns the 2-D weight matrices
    /// (embedding, projections, lm_head unless tied), `vector(name)` the f32 norms and biases.
    /// - Throws: `RuntimeError.unsupportedArchitecture`/`.unsupportedFeature` for configs the
    ///   runtime cannot run, `.shapeMismatch` naming the tensor, or whatever the closures throw.
    ///
    /// `normGainsIncludeOne`: the norm weights are already the multipliers 1 + w (Gemma in GGUF,
    /// whose converter adds the 1); otherwise an architecture with `normGainOffset` gets 1 added here.
    public static func load(config: LlamaConfig, source: String = "model", normGainsIncludeOne: Bool = false,
                            matrix: (String) throws -> ProjectionWeight,
                            vector: (String) throws -> Tensor) throws -> LlamaWeights {
        let arch = try LlamaArchitecture(config: config, source: source)
        let d = config.hiddenSize
        func check(_ name: String, _ found: [Int], _ dims: [Int]) throws {
            guard found == dims else {
                throw RuntimeError.shapeMismatch(tensor: name, expected: dims, found: found, source: source)
            }
        }
        func fetchVector(_ name: String, _ n: Int) throws -> Tensor {
            let t = try vector(name)
            try check(name, t.shape.dims, [n])
            return t
        }
        func fetchMatrix(_ name: String, _ dims: [Int]) throws -> ProjectionWeight {
            let m = try matrix(name)
            try check(name, m.dims, dims)
            return m
        }
        func projection(_ p: LlamaProjection, _ layer: Int) throws -> ProjectionWeight {
            try fetchMatrix(p.modulePath(layer: layer) + ".weight", [p.outputSize(config), p.inputSize(config)])
        }
        func bias(_ p: LlamaProjection, _ layer: Int, _ present: Bool) throws -> Tensor? {
            present ? try fetchVector(p.modulePath(layer: layer) + ".bias", p.outputSize(config)) : nil
        }
        // Gemma stores RMSNorm gains as w in y = x·r·(1 + w); held here as the multiplier 1 + w
        // (added in f32, as transformers does), so the block computes y = gain ⊙ x·r for every family.
        func norm(_ name: String, _ n: Int) throws -> Tensor {
            let t = try fetchVector(name, n)
            return arch.normGainOffset && !normGainsIncludeOne ? t.map { 1 + $0 } : t
        }
        let embedding = try fetchMatrix("model.embed_tokens.weight", [config.vocabSize, d])
        var layers: [Layer] = []
        layers.reserveCapacity(config.numHiddenLayers)
        for l in 0..<config.numHiddenLayers {
            let prefix = "model.layers.\(l)."
            var layer = Layer(
                inputNorm: try norm(prefix + "input_layernorm.weight", d),
                q: try projection(.q, l), k: try projection(.k, l), v: try projection(.v, l), o: try projection(.o, l),
                qBias: try bias(.q, l, arch.qkvBias), kBias: try bias(.k, l, arch.qkvBias),
                vBias: try bias(.v, l, arch.qkvBias), oBias: try bias(.o, l, arch.outputBias),
                mlpNorm: try norm(prefix + (arch.sandwichNorms ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"), d),
                gate: try projection(.gate, l), up: try projection(.up, l), down: try projection(.down, l))
            if arch.queryKeyNorms {
                layer.queryNorm = try norm(prefix + "self_attn.q_norm.weight", config.headDim)
                layer.keyNorm = try norm(prefix + "self_attn.k_norm.weight", config.headDim)
            }
            if arch.sandwichNorms {
                layer.attentionOutputNorm = try norm(prefix + "post_attention_layernorm.weight", d)
                layer.mlpOutputNorm = try norm(prefix + "post_feedforward_layernorm.weight", d)
            }
            layers.append(layer)
        }
        let finalNorm = try norm("model.norm.weight", d)
        let lmHead = config.tieWordEmbeddings ? nil : try fetchMatrix("lm_head.weight", [config.vocabSize, d])
        return LlamaWeights(embedding: embedding, layers: layers, finalNorm: finalNorm, lmHead: lmHead)
    }

    private init(embedding: ProjectionWeight, layers: [Layer], finalNorm: Tensor, lmHead: ProjectionWeight?) {
        self.embedding = embedding; self.layers = layers; self.finalNorm = finalNorm; self.lmHead = lmHead
    }
}
