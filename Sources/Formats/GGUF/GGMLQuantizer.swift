import Tensors

/// Float32 → GGML type encoders for the types steertool writes (F32, F16, BF16, Q8_0, Q4_0),
/// bit-exact with gguf-py `quants.quantize` (same float32 operation order, same rounding:
/// `np_roundf` for Q8_0, `trunc(x·id + 8.5)` clipped to 15 for Q4_0, f16 scales rounded to
/// nearest even, BF16 rounded to nearest even with quiet NaNs).
public enum GGMLQuantizer {
    /// Types this quantizer encodes.
    public static let supportedTypes: Set<GGMLType> = [.f32, .f16, .bf16, .q8_0, .q4_0]

    /// Whether `type` can be written.
    public static func supports(_ type: GGMLType) -> Bool { supportedTypes.contains(type) }

    /// Encodes row-major values whose innermost dimension is `rowLength` (a multiple of the
    /// block size for quantized types; callers check with `GGMLType.byteCount`).
    /// Traps on an unsupported type or a count the block size does not divide (programmer errors).
    public static func quantize(_ values: UnsafeBufferPointer<Float>, as type: GGMLType) -> [UInt8] {
        let n = values.count
        precondition(n % type.blockSize == 0, "quantize: \(n) values do not fill \(type) blocks")
        let blocks = n / type.blockSize
        var out = [UInt8](repeating: 0, count: blocks * type.typeSize)
        guard n > 0, let x = values.baseAddress else { return out }
        out.withUnsafeMutableBytes { raw in
            let o = raw.baseAddress!
            switch type {
            case .f32:
                for i in 0..<n { o.storeBytes(of: x[i].bitPattern.littleEndian, toByteOffset: 4 * i, as: UInt32.self) }
            case .f16:
                for i in 0..<n { o.storeBytes(of: FloatBits.half(from: x[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
            case .bf16:
                for i in 0..<n { o.storeBytes(of: FloatBits.bfloat16(from: x[i]).littleEndian, toByteOffset: 2 * i, as: UInt16.self) }
            case .q8_0:
                for b in 0..<blocks {
                    let xb = x + 32 * b, p = o + 34 * b
                    var amax: Float = 0
                    for j in 0..<32 { amax = max(amax, abs(xb[j])) }
                    let d = amax / 127
                    let id: Float = d == 0 ? 0 : 1 / d
                    p.storeBytes(of: FloatBits.half(from: d).littleEndian, as: UInt16.self)
                    for j in 0..<32 {
                        let q = roundHalfAwayFromZero(xb[j] * id)
                        p.storeBytes(of: Int8(clamping: Int(q)), toByteOffset: 2 + j, as: Int8.self)
                    }
                }
            case .q4_0:
                for b in 0..<blocks {
                    let xb = x + 32 * b, p = o + 18 * b
                    // The element of largest magnitude (first one on ties), with its sign.
                    var amax = abs(xb[0]), vmax = xb[0]
                    for j in 1..<32 where abs(xb[j]) > amax {
                        amax = abs(xb[j])
                        vmax = xb[j]
                    }
                    let d = vmax / -8
                    let id: Float = d == 0 ? 0 : 1 / d
                    p.storeBytes(of: FloatBits.half(from: d).littleEndian, as: UInt16.self)
                    func q(_ v: Float) -> UInt8 {
                        let t = (v * id + 8.5).rounded(.towardZero)
                        return t >= 15 ? 15 : (t <= 0 ? 0 : UInt8(t))
                    }
                    for j in 0..<16 {
                        p.storeBytes(of: q(xb[j]) | q(xb[j + 16]) << 4, toByteOffset: 2 + j, as: UInt8.self)
                    }
                }
            default:
                preconditionFailure("quantize: \(type) is not supported")
            }
        }
        return out
    }

    /// gguf-py `np_roundf`: round half away from zero, computed as
    /// `sign(n) · (floor(|n|) + floor(2·(|n| − floor(|n|))))` in float32.
    @inline(__always)
    static func roundHalfAwayFromZero(_ n: Float) -> Float {
        let a = abs(n)
        let f = a.rounded(.down)
        let b = f + (2 * (a - f)).rounded(.down)
        return n > 0 ? b : (n < 0 ? -b : 0)
    }
}
