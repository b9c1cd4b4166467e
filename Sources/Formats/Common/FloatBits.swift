/// Exact conversions between Float32 and the narrow float formats stored in checkpoints.
/// Hand-written because they define file contents bit for bit: f32→bf16 rounds to nearest even
/// and quiets NaNs exactly as gguf-py's `quants.BF16` does; f32→f16 uses Swift's `Float16`
/// (IEEE round-to-nearest-even, as numpy's `astype(float16)`); the f8 formats decode as OCP
/// E4M3FN (no infinities) and E5M2 (IEEE-like), as PyTorch's `float8_e4m3fn` / `float8_e5m2`.
public enum FloatBits {
    /// f16 bit pattern → Float32 (exact).
    @inline(__always)
    public static func float(fromHalf bits: UInt16) -> Float {
        halfTable.withUnsafeBufferPointer { $0[Int(bits)] }
    }

    /// Float32 → f16 bit pattern, round to nearest even (overflow gives ±inf, NaN stays NaN).
    @inline(__always)
    public static func half(from x: Float) -> UInt16 { Float16(x).bitPattern }

    /// bf16 bit pattern → Float32 (exact: the top 16 bits of a Float32).
    @inline(__always)
    public static func float(fromBFloat16 bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }

    /// Float32 → bf16 bit pattern: round to nearest even; a NaN keeps its sign and top mantissa
    /// bits and gets the quiet bit (gguf-py `__compute_fp32_to_bf16`).
    @inline(__always)
    public static func bfloat16(from x: Float) -> UInt16 {
        var n = x.bitPattern
        if n & 0x7fff_ffff > 0x7f80_0000 { n = (n & 0xffff_0000) | (64 << 16) }
        let rounded = (UInt64(n) + UInt64(0x7fff + ((n >> 16) & 1))) >> 16
        return UInt16(truncatingIfNeeded: rounded)
    }

    /// F8_E4M3 (E4M3FN: bias 7, no infinities, S.1111.111 is NaN) → Float32 (exact).
    public static func float(fromF8E4M3 b: UInt8) -> Float {
        let sign: Float = b & 0x80 != 0 ? -1 : 1
        let e = Int((b >> 3) & 0xf), m = Float(b & 0x7)
        if e == 0xf && b & 0x7 == 0x7 { return .nan }
        if e == 0 { return sign * m / 8 * Float(sign: .plus, exponent: -6, significand: 1) }
        return sign * (1 + m / 8) * Float(sign: .plus, exponent: e - 7, significand: 1)
    }

    /// F8_E5M2 → Float32 (exact: an E5M2 byte is the top byte of an f16).
    public static func float(fromF8E5M2 b: UInt8) -> Float { float(fromHalf: UInt16(b) << 8) }

    /// All 65 536 f16 values as Float32, so decoding f16 is one load.
    static let halfTable: [Float] = (0...0xffff).map { Float(Float16(bitPattern: UInt16($0))) }
}
