import Tensors

/// A weight matrix `[out, in]` as the forward pass holds it: f32 (multiplied through BLAS or the
/// runtime's f32 kernels), Q8_0 blocks (multiplied by the Q8_0 kernels without an f32 copy), or
/// bf16/f16 values read in place from the file (multiplied by the half kernels without an f32
/// copy). Each computes `x · Wᵀ` on `[tokens, in]` activations.
public enum ProjectionWeight: Sendable, Equatable {
    /// f32 values, PyTorch orientation `[out, in]`.
    case f32(Tensor)
    /// Q8_0 blocks of the same `[out, in]` matrix.
    case q8_0(Q8_0Matrix)
    /// bf16 or f16 values of the same `[out, in]` matrix, normally the file's own bytes.
    case half(HalfMatrix)

    /// Output features.
    public var rows: Int {
        switch self {
        case .f32(let t): t.shape.dims.first ?? 0
        case .q8_0(let m): m.rows
        case .half(let m): m.rows
        }
    }

    /// Input features.
    public var columns: Int {
        switch self {
        case .f32(let t): t.rank == 2 ? t.shape.dims[1] : 0
        case .q8_0(let m): m.columns
        case .half(let m): m.columns
        }
    }

    /// Shape `[rows, columns]` (for f32, the tensor's own shape).
    public var dims: [Int] {
        switch self {
        case .f32(let t): t.shape.dims
        case .q8_0(let m): [m.rows, m.columns]
        case .half(let m): [m.rows, m.columns]
        }
    }

    /// Bytes of weight data held.
    public var byteCount: Int {
        switch self {
        case .f32(let t): 4 * t.count
        case .q8_0(let m): m.byteCount
        case .half(let m): m.byteCount
        }
    }

    /// Drops the matrix's pages of a mapped file from the resident set (bf16/f16 read in place;
    /// see `HalfMatrix.releasePages`); nothing for matrices held in memory (f32, Q8_0).
    public func releasePages() {
        if case .half(let m) = self { m.releasePages() }
    }

    /// The matrix as f32 (the tensor itself, or the Q8_0 / half values widened: a new buffer).
    public var dense: Tensor {
        switch self {
        case .f32(let t): t
        case .q8_0(let m): m.dequantized()
        case .half(let m): m.dequantized()
        }
    }
}

/// How a loaded model holds its weight matrices (the seven projections, the embedding and the
/// output head; norms and biases are always f32).
public enum WeightStorage: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Everything f32 (quantized and 16-bit files are converted at load): the exactness reference.
    case f32
    /// Matrices in Q8_0: a GGUF tensor already stored Q8_0 is kept bit for bit; any other
    /// (F32/F16/BF16 or another quantized type) is quantized to Q8_0 at load, one tensor at a time,
    /// as llama.cpp's `--outtype q8_0` would.
    case q8_0
    /// Each matrix in its file's dtype where a kernel multiplies it: BF16/F16 (safetensors or
    /// GGUF) read in place from the mapped file (`HalfMatrix`), GGUF Q8_0 kept as stored, F32 as
    /// f32; any other type (F64, F8, other GGML quantizations) is converted to f32 at load.
    case native

    public var description: String { rawValue }
}
