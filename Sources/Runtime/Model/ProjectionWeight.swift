import Tensors

/// A weight matrix `[out, in]` as the forward pass holds it: f32 (multiplied through BLAS or the
/// runtime's f32 kernels), bf16/f16 values read in place from the file (multiplied by the half
/// kernels without an f32 copy), or GGML quantized blocks (Q4_0 … Q6_K and Q8_0, `GGMLMatrix`),
/// read in place or quantized at load. Each computes `x · Wᵀ` on `[tokens, in]` activations.
public enum ProjectionWeight: Sendable, Equatable {
    /// f32 values, PyTorch orientation `[out, in]`.
    case f32(Tensor)
    /// bf16 or f16 values of the same `[out, in]` matrix, normally the file's own bytes.
    case half(HalfMatrix)
    /// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K or Q6_K blocks of the same matrix, normally the
    /// file's own bytes.
    case quantized(GGMLMatrix)

    /// Output features.
    public var rows: Int {
        switch self {
        case .f32(let t): t.shape.dims.first ?? 0
        case .half(let m): m.rows
        case .quantized(let m): m.rows
        }
    }

    /// Input features.
    public var columns: Int {
        switch self {
        case .f32(let t): t.rank == 2 ? t.shape.dims[1] : 0
        case .half(let m): m.columns
        case .quantized(let m): m.columns
        }
    }

    /// Shape `[rows, columns]` (for f32, the tensor's own shape).
    public var dims: [Int] {
        switch self {
        case .f32(let t): t.shape.dims
        case .half(let m): [m.rows, m.columns]
        case .quantized(let m): [m.rows, m.columns]
        }
    }

    /// Bytes of weight data held.
    public var byteCount: Int {
        switch self {
        case .f32(let t): 4 * t.count
        case .half(let m): m.byteCount
        case .quantized(let m): m.byteCount
        }
    }

    /// Drops the matrix's pages of a mapped file from the resident set (bf16/f16 and GGML blocks
    /// read in place; see `MatrixBytes.releasePages`); nothing for matrices held in memory.
    public func releasePages() {
        switch self {
        case .half(let m): m.releasePages()
        case .quantized(let m): m.releasePages()
        case .f32: break
        }
    }

    /// The matrix as f32 (the tensor itself, or the half or block values widened: a new buffer).
    public var dense: Tensor {
        switch self {
        case .f32(let t): t
        case .half(let m): m.dequantized()
        case .quantized(let m): m.dequantized()
        }
    }
}

/// How a loaded model holds its weight matrices (the seven projections, the embedding and the
/// output head; norms and biases are always f32).
public enum WeightStorage: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Everything f32 (quantized and 16-bit files are converted at load): the exactness reference.
    case f32
    /// Matrices in Q8_0: a GGUF tensor stored Q8_0 is read in place; any other (F32/F16/BF16 or
    /// another quantized type) is quantized to Q8_0 at load, one tensor at a time, as llama.cpp's
    /// `--outtype q8_0` would.
    case q8_0
    /// Each matrix in its file's dtype where a kernel multiplies it: BF16/F16 (safetensors or
    /// GGUF) read in place from the mapped file (`HalfMatrix`), GGUF Q4_0, Q4_1, Q5_0, Q5_1, Q8_0,
    /// Q4_K, Q5_K and Q6_K read in place (`GGMLMatrix`), F32 as f32. A
    /// safetensors checkpoint's other dtypes (F64, F8, …) are converted to f32; a GGUF matrix of
    /// any other type (Q2_K, Q3_K, IQ*, TQ*, …) is refused by name (`.f32` or `.q8_0` load it).
    case native

    public var description: String { rawValue }
}
