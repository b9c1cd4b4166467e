import Tensors

/// The weights of one Llama decoder layer, PyTorch orientation `[out, in]` (a projection
/// computes `x · Wᵀ` on `[tokens, in]` activations). Plain values; the runtime never copies
/// them per forward pass.
public struct LlamaLayerWeights: Sendable {
    /// RMSNorm₁ gain `[d]` (`input_layernorm.weight`).
    public var inputNorm: Tensor
    /// `[heads·head_dim, d]` (rows in Hugging Face order, i.e. GGUF's permutation undone).
    public var q: Tensor
    /// `[kv_heads·head_dim, d]`.
    public var k: Tensor
    /// `[kv_heads·head_dim, d]`.
    public var v: Tensor
    /// `[d, heads·head_dim]`.
    public var o: Tensor
    /// Optional biases `[out]` (Qwen2-style `attention_bias`); nil for Llama.
    public var qBias: Tensor?, kBias: Tensor?, vBias: Tensor?, oBias: Tensor?
    /// RMSNorm₂ gain `[d]` (`post_attention_layernorm.weight`).
    public var postAttentionNorm: Tensor
    /// `[d_ff, d]`.
    public var gate: Tensor
    /// `[d_ff, d]`.
    public var up: Tensor
    /// `[d, d_ff]`.
    public var down: Tensor

    public init(inputNorm: Tensor, q: Tensor, k: Tensor, v: Tensor, o: Tensor,
                qBias: Tensor? = nil, kBias: Tensor? = nil, vBias: Tensor? = nil, oBias: Tensor? = nil,
                postAttentionNorm: Tensor, gate: Tensor, up: Tensor, down: Tensor) {
        self.inputNorm = inputNorm; self.q = q; self.k = k; self.v = v; self.o = o
        self.qBias = qBias; self.kBias = kBias; self.vBias = vBias; self.oBias = oBias
        self.postAttentionNorm = postAttentionNorm; self.gate = gate; self.up = up; self.down = down
    }
}
