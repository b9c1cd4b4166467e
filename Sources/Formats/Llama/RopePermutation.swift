import Tensors

/// llama.cpp's RoPE row permutation of q/k projections (`LlamaModel.permute` in
/// `convert_hf_to_gguf.py`). HF Llama rotates halves of each head (`rotate_half`); GGML rotates
/// adjacent pairs. The conversion views the rows of a `[heads·head_dim, …]` tensor as
/// `(heads, 2, head_dim/2)` and swaps the last two axes, so GGUF row `h·hd + 2j + i` is HF row
/// `h·hd + i·hd/2 + j`. Works on weights `[out, in]` and biases `[out]` alike (rows = first dim).
public enum RopePermutation {
    /// HF order → GGUF order. `heads` is `num_attention_heads` for q, `num_key_value_heads` for k.
    /// - Throws: `FormatsError.invalidShape` unless the rows split into `heads` heads of even size.
    public static func permute(_ t: Tensor, heads: Int, name: String = "") throws -> Tensor {
        try apply(t, heads: heads, name: name, inverse: false)
    }

    /// GGUF order → HF order (the inverse of `permute`).
    public static func unpermute(_ t: Tensor, heads: Int, name: String = "") throws -> Tensor {
        try apply(t, heads: heads, name: name, inverse: true)
    }

    /// For a permuted (`inverse` false: HF → GGUF) or un-permuted (`inverse` true) matrix of
    /// `rows` rows, the source row of each destination row: `destination[r] = source[map[r]]`.
    /// Row permutations act on whole rows, so they apply to quantized rows (blocks run along a
    /// row) as well as to f32 ones.
    /// - Throws: `FormatsError.invalidShape` unless the rows split into `heads` heads of even size.
    public static func sourceRows(rows: Int, heads: Int, inverse: Bool, name: String = "") throws -> [Int] {
        guard rows >= 0, heads > 0, rows % heads == 0, (rows / heads) % 2 == 0 else {
            throw FormatsError.invalidShape(file: "", tensor: name, shape: [rows],
                                            reason: "rows do not split into \(heads) heads of even size for the RoPE permutation")
        }
        let hd = rows / heads, half = hd / 2
        var map = [Int](repeating: 0, count: rows)
        for h in 0..<heads {
            for i in 0..<2 {
                for j in 0..<half {
                    let hfRow = h * hd + i * half + j
                    let ggRow = h * hd + 2 * j + i
                    if inverse { map[hfRow] = ggRow } else { map[ggRow] = hfRow }
                }
            }
        }
        return map
    }

    private static func apply(_ t: Tensor, heads: Int, name: String, inverse: Bool) throws -> Tensor {
        let rows = t.shape.dims.first ?? 0
        guard t.rank >= 1, heads > 0, rows % heads == 0, (rows / heads) % 2 == 0 else {
            throw FormatsError.invalidShape(file: "", tensor: name, shape: t.shape.dims,
                                            reason: "rows do not split into \(heads) heads of even size for the RoPE permutation")
        }
        let map = try sourceRows(rows: rows, heads: heads, inverse: inverse, name: name)
        let cols = rows == 0 ? 0 : t.count / rows
        return Tensor(shape: t.shape) { out in
            t.withUnsafeBufferPointer { src in
                guard let s = src.baseAddress, let d = out.baseAddress else { return }
                for (to, from) in map.enumerated() { (d + to * cols).update(from: s + from * cols, count: cols) }
            }
        }
    }
}
