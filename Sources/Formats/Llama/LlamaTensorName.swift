/// The one table mapping Hugging Face Llama tensor names to llama.cpp GGUF names
/// (`convert_hf_to_gguf.py`, `MODEL_ARCH.LLAMA` in gguf-py's `tensor_mapping.py`), and which
/// tensors llama.cpp stores with the RoPE row permutation (`LlamaModel.permute`); Gemma-3's,
/// Qwen2's and Qwen3's per-layer names beside it.
public enum LlamaTensorName {
    /// Which head count a RoPE-permuted tensor is permuted with.
    public enum RopePermutation: Sendable, Equatable {
        /// q_proj: permuted with `num_attention_heads`.
        case query
        /// k_proj: permuted with `num_key_value_heads`.
        case key
    }

    /// One row of the table: names without the `model.layers.N.` / `blk.N.` prefix for
    /// per-layer tensors, and whether the tensor is RoPE-permuted in GGUF.
    public struct Entry: Sendable, Equatable {
        public let hf: String
        public let gguf: String
        public let permutation: RopePermutation?
    }

    /// Tensors outside the layers.
    public static let globalEntries: [Entry] = [
        Entry(hf: "model.embed_tokens.weight", gguf: "token_embd.weight", permutation: nil),
        Entry(hf: "model.norm.weight", gguf: "output_norm.weight", permutation: nil),
        Entry(hf: "lm_head.weight", gguf: "output.weight", permutation: nil),
    ]

    /// Per-layer tensors (prefix `model.layers.N.` in HF, `blk.N.` in GGUF).
    public static let layerEntries: [Entry] = [
        Entry(hf: "input_layernorm.weight", gguf: "attn_norm.weight", permutation: nil),
        Entry(hf: "self_attn.q_proj.weight", gguf: "attn_q.weight", permutation: .query),
        Entry(hf: "self_attn.q_proj.bias", gguf: "attn_q.bias", permutation: .query),
        Entry(hf: "self_attn.k_proj.weight", gguf: "attn_k.weight", permutation: .key),
        Entry(hf: "self_attn.k_proj.bias", gguf: "attn_k.bias", permutation: .key),
        Entry(hf: "self_attn.v_proj.weight", gguf: "attn_v.weight", permutation: nil),
        Entry(hf: "self_attn.v_proj.bias", gguf: "attn_v.bias", permutation: nil),
        Entry(hf: "self_attn.o_proj.weight", gguf: "attn_output.weight", permutation: nil),
        Entry(hf: "self_attn.o_proj.bias", gguf: "attn_output.bias", permutation: nil),
        Entry(hf: "post_attention_layernorm.weight", gguf: "ffn_norm.weight", permutation: nil),
        Entry(hf: "mlp.gate_proj.weight", gguf: "ffn_gate.weight", permutation: nil),
        Entry(hf: "mlp.up_proj.weight", gguf: "ffn_up.weight", permutation: nil),
        Entry(hf: "mlp.down_proj.weight", gguf: "ffn_down.weight", permutation: nil),
        Entry(hf: "mlp.gate_proj.bias", gguf: "ffn_gate.bias", permutation: nil),
        Entry(hf: "mlp.up_proj.bias", gguf: "ffn_up.bias", permutation: nil),
        Entry(hf: "mlp.down_proj.bias", gguf: "ffn_down.bias", permutation: nil),
    ]

    /// Gemma-3's per-layer tensors (`MODEL_ARCH.GEMMA3`): its four norms and q/k norms, the same
    /// projections, and no RoPE permutation (llama.cpp's converter permutes Llama's Q/K only).
    /// GGUF norm weights hold 1 + w where Hugging Face holds w (the converter adds 1).
    public static let gemma3LayerEntries: [Entry] = [
        Entry(hf: "input_layernorm.weight", gguf: "attn_norm.weight", permutation: nil),
        Entry(hf: "self_attn.q_proj.weight", gguf: "attn_q.weight", permutation: nil),
        Entry(hf: "self_attn.k_proj.weight", gguf: "attn_k.weight", permutation: nil),
        Entry(hf: "self_attn.v_proj.weight", gguf: "attn_v.weight", permutation: nil),
        Entry(hf: "self_attn.o_proj.weight", gguf: "attn_output.weight", permutation: nil),
        Entry(hf: "self_attn.q_norm.weight", gguf: "attn_q_norm.weight", permutation: nil),
        Entry(hf: "self_attn.k_norm.weight", gguf: "attn_k_norm.weight", permutation: nil),
        Entry(hf: "post_attention_layernorm.weight", gguf: "post_attention_norm.weight", permutation: nil),
        Entry(hf: "pre_feedforward_layernorm.weight", gguf: "ffn_norm.weight", permutation: nil),
        Entry(hf: "post_feedforward_layernorm.weight", gguf: "post_ffw_norm.weight", permutation: nil),
        Entry(hf: "mlp.gate_proj.weight", gguf: "ffn_gate.weight", permutation: nil),
        Entry(hf: "mlp.up_proj.weight", gguf: "ffn_up.weight", permutation: nil),
        Entry(hf: "mlp.down_proj.weight", gguf: "ffn_down.weight", permutation: nil),
    ]

    /// Qwen2's per-layer tensors (`MODEL_ARCH.QWEN2`): Llama's names (q/k/v biases among them)
    /// without the RoPE permutation, which llama.cpp's converter applies to Llama-named files only.
    public static let qwen2LayerEntries: [Entry] = layerEntries.map { Entry(hf: $0.hf, gguf: $0.gguf, permutation: nil) }

    /// Qwen3's per-layer tensors (`MODEL_ARCH.QWEN3`): Qwen2's and the per-head q/k norms.
    public static let qwen3LayerEntries: [Entry] = qwen2LayerEntries + [
        Entry(hf: "self_attn.q_norm.weight", gguf: "attn_q_norm.weight", permutation: nil),
        Entry(hf: "self_attn.k_norm.weight", gguf: "attn_k_norm.weight", permutation: nil),
    ]

    /// The per-layer table of a GGUF `general.architecture` ("llama", "gemma3", "qwen2",
    /// "qwen3"); nil for others.
    public static func layerEntries(architecture: String) -> [Entry]? {
        switch GGUFModelArchitecture(rawValue: architecture) {
        case .llama: layerEntries
        case .gemma3: gemma3LayerEntries
        case .qwen2: qwen2LayerEntries
        case .qwen3: qwen3LayerEntries
        case nil: nil
        }
    }

    /// The GGUF-only tensor of llama3 RoPE scaling (frequency divisors, `[head_dim / 2]`).
    public static let ropeFreqs = "rope_freqs.weight"

    /// A resolved name: the other side's name, the layer (nil for global tensors) and the permutation.
    public struct Mapping: Sendable, Equatable {
        public let name: String
        public let layer: Int?
        public let permutation: RopePermutation?

        /// Creates a mapping.
        public init(name: String, layer: Int?, permutation: RopePermutation?) {
            self.name = name
            self.layer = layer
            self.permutation = permutation
        }
    }

    /// The GGUF name for an HF name, or nil if the tensor is not part of a model of the GGUF
    /// `architecture` ("llama" unless given; "gemma3").
    public static func gguf(fromHF name: String, architecture: String = LlamaMetadata.architecture) -> Mapping? {
        if let e = globalEntries.first(where: { $0.hf == name }) { return Mapping(name: e.gguf, layer: nil, permutation: nil) }
        guard let (layer, rest) = split(name, prefix: "model.layers."),
              let e = layerEntries(architecture: architecture)?.first(where: { $0.hf == rest }) else { return nil }
        return Mapping(name: "blk.\(layer).\(e.gguf)", layer: layer, permutation: e.permutation)
    }

    /// The HF name for a GGUF name, or nil (also nil for `rope_freqs.weight`, which HF derives
    /// from config.json).
    public static func hf(fromGGUF name: String, architecture: String = LlamaMetadata.architecture) -> Mapping? {
        if let e = globalEntries.first(where: { $0.gguf == name }) { return Mapping(name: e.hf, layer: nil, permutation: nil) }
        guard let (layer, rest) = split(name, prefix: "blk."),
              let e = layerEntries(architecture: architecture)?.first(where: { $0.gguf == rest }) else { return nil }
        return Mapping(name: "model.layers.\(layer).\(e.hf)", layer: layer, permutation: e.permutation)
    }

    private static func split(_ name: String, prefix: String) -> (Int, String)? {
        guard name.hasPrefix(prefix) else { return nil }
        let tail = name.dropFirst(prefix.count)
        guard let dot = tail.firstIndex(of: "."), let layer = Int(tail[..<dot]), layer >= 0,
              String(layer) == tail[..<dot] else { return nil }
        return (layer, String(tail[tail.index(after: dot)...]))
    }
}
