import Tensors

/// Dequantization of GGML tensor data to Float32, ported from the block layouts of gguf-py
/// `quants.py` (itself following ggml-quants.c). Each block decodes independently; the float
/// operations are performed in the same order and precision as gguf-py's numpy code
/// (float32 products, no fused multiply-add), so results equal gguf-py's bit for bit.
public enum GGMLDequantizer {
    /// Types this dequantizer decodes.
    public static let supportedTypes: Set<GGMLType> = [
        .f32, .f16, .bf16, .f64, .i8, .i16, .i32, .i64,
        .q4_0, .q4_1, .q5_0, .q5_1, .q8_0, .q2_K, .q3_K, .q4_K, .q5_K, .q6_K, .q8_K,
    ]

    /// Whether `type` can be dequantized.
    public static func supports(_ type: GGMLType) -> Bool { supportedTypes.contains(type) }

    /// Decodes `out.count` values stored as `type` from `raw`, which must hold exactly
    /// `type.byteCount(elements: out.count, …)` bytes (callers validated the tensor's size).
    /// Traps on an unsupported type (check `supports` first; programmer error).
    public static func dequantize(_ raw: UnsafeRawBufferPointer, type: GGMLType, into out: UnsafeMutableBufferPointer<Float>) {
        let n = out.count
        guard n > 0, let src = raw.baseAddress, let dst = out.baseAddress else { return }
        let blocks = n / type.blockSize
        precondition(blocks * type.blockSize == n && raw.count == blocks * type.typeSize, "dequantize: \(raw.count) bytes for \(n) \(type) values")
        switch type {
        case .f32: ElementCodec.decode(raw, dtype: .f32, into: out)
        case .f16: ElementCodec.decode(raw, dtype: .f16, into: out)
        case .bf16: ElementCodec.decode(raw, dtype: .bf16, into: out)
        case .f64: ElementCodec.decode(raw, dtype: .f64, into: out)
        case .i8: ElementCodec.decode(raw, dtype: .i8, into: out)
        case .i16: ElementCodec.decode(raw, dtype: .i16, into: out)
        case .i32: ElementCodec.decode(raw, dtype: .i32, into: out)
        case .i64: ElementCodec.decode(raw, dtype: .i64, into: out)
        case .q4_0: q4_0(src, blocks, dst)
        case .q4_1: q4_1(src, blocks, dst)
        case .q5_0: q5_0(src, blocks, dst)
        case .q5_1: q5_1(src, blocks, dst)
        case .q8_0: q8_0(src, blocks, dst)
        case .q2_K: q2_K(src, blocks, dst)
        case .q3_K: q3_K(src, blocks, dst)
        case .q4_K: q4_K(src, blocks, dst)
        case .q5_K: q5_K(src, blocks, dst)
        case .q6_K: q6_K(src, blocks, dst)
        case .q8_K: q8_K(src, blocks, dst)
        default: preconditionFailure("dequantize: \(type) is not supported")
        }
    }

    @inline(__always)
    private static func half(_ p: UnsafeRawPointer, _ offset: Int, _ table: UnsafePointer<Float>) -> Float {
        table[Int(p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))]
    }

    @inline(__always)
    private static func withHalfTable<R>(_ body: (UnsafePointer<Float>) -> R) -> R {
        FloatBits.halfTable.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    // Q4_0: d f16 | qs[16]; x[j] = d·((qs[j] & 15) − 8), x[j+16] = d·((qs[j] >> 4) − 8).
    private static func q4_0(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        withHalfTable { t in
            for b in 0..<blocks {
                let p = src + b * 18, y = dst + b * 32
                let d = half(p, 0, t)
                let qs = (p + 2).assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 {
                    y[j] = d * Float(Int8(qs[j] & 0x0f) - 8)
                    y[j + 16] = d * Float(Int8(qs[j] >> 4) - 8)
                }
            }
        }
    }

    // Q4_1: d f16 | m f16 | qs[16]; x = d·q + m.
    private static func q4_1(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        withHalfTable { t in
            for b in 0..<blocks {
                let p = src + b * 20, y = dst + b * 32
                let d = half(p, 0, t), m = half(p, 2, t)
                let qs = (p + 4).assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 {
                    y[j] = d * Float(qs[j] & 0x0f) + m
                    y[j + 16] = d * Float(qs[j] >> 4) + m
                }
            }
        }
    }

    // Q5_0: d f16 | qh u32 | qs[16]; bit j of qh is the 5th bit of element j; x = d·(q − 16).
    private static func q5_0(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        withHalfTable { t in
            for b in 0..<blocks {
                let p = src + b * 22, y = dst + b * 32
                let d = half(p, 0, t)
                let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
                let qs = (p + 6).assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 {
                    let lo = (qs[j] & 0x0f) | UInt8((qh >> UInt32(j)) & 1) << 4
                    let hi = (qs[j] >> 4) | UInt8((qh >> UInt32(j + 16)) & 1) << 4
                    y[j] = d * Float(Int8(lo) - 16)
                    y[j + 16] = d * Float(Int8(hi) - 16)
                }
            }
        }
    }

    // Q5_1: d f16 | m f16 | qh u32 | qs[16]; x = d·q + m.
    private static func q5_1(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        withHalfTable { t in
            for b in 0..<blocks {
                let p = src + b * 24, y = dst + b * 32
                let d = half(p, 0, t), m = half(p, 2, t)
                let qh = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                let qs = (p + 8).assumingMemoryBound(to: UInt8.self)
                for j in 0..<16 {
                    let lo = (qs[j] & 0x0f) | UInt8((qh >> UInt32(j)) & 1) << 4
                    let hi = (qs[j] >> 4) | UInt8((qh >> UInt32(j + 16)) & 1) << 4
                    y[j] = d * Float(lo) + m
                    y[j + 16] = d * Float(hi) + m
                }
            }
        }
    }

    // Q8_0: d f16 | qs int8[32]; x = q·d.
    private static func q8_0(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        withHalfTable { t in
            for b in 0..<blocks {
                let p = src + b * 34, y = dst + b * 32
                let d = half(p, 0, t)
                let qs = (p + 2).assumingMemoryBound(to: Int8.self)
                for j in 0..<32 { y[j] = Float(qs[j]) * d }
            }
        }
    }

    // Q2_K: scales[16] | qs[64] | d f16 | dmin f16. Element i = h·128 + s·32 + l (h < 2, s < 4,
    // l < 32) has q = (qs[h·32 + l] >> 2s) & 3 and group g = i / 16: x = (d·(sc[g] & 15))·q − dmin·(sc[g] >> 4).
    private static func q2_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        withHalfTable { t in
            for b in 0..<blocks {
                let p = src + b * 84, y = dst + b * 256
                let sc = p.assumingMemoryBound(to: UInt8.self)
                let qs = (p + 16).assumingMemoryBound(to: UInt8.self)
                let d = half(p, 80, t), dmin = half(p, 82, t)
                for h in 0..<2 {
                    for s in 0..<4 {
                        for half16 in 0..<2 {
                            let i0 = h * 128 + s * 32 + half16 * 16
                            let g = i0 / 16
                            let dl = d * Float(sc[g] & 0x0f), ml = dmin * Float(sc[g] >> 4)
                            for l in (half16 * 16)..<(half16 * 16 + 16) {
                                let q = (qs[h * 32 + l] >> UInt8(2 * s)) & 3
                                y[h * 128 + s * 32 + l] = dl * Float(q) - ml
                            }
                        }
                    }
                }
            }
        }
    }

    // Q3_K: hmask[32] | qs[64] | scales[12] | d f16. Element i = h·128 + s·32 + l has low bits
    // (qs[h·32 + l] >> 2s) & 3 and high bit (hmask[l] >> (i / 32)) & 1 (a set bit means no −4);
    // 6-bit signed scales per group of 16: x = (d·(scale − 32))·q.
    private static func q3_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        withHalfTable { t in
            var scales = [Float](repeating: 0, count: 16)
            scales.withUnsafeMutableBufferPointer { dl in
                for b in 0..<blocks {
                    let p = src + b * 110, y = dst + b * 256
                    let hmask = p.assumingMemoryBound(to: UInt8.self)
                    let qs = (p + 32).assumingMemoryBound(to: UInt8.self)
                    let sc = (p + 96).assumingMemoryBound(to: UInt8.self)
                    let d = half(p, 108, t)
                    for i in 0..<16 {
                        let low = (sc[i % 8] >> UInt8(4 * (i / 8))) & 0x0f
                        let high = (sc[8 + i % 4] >> UInt8(2 * (i / 4))) & 0x03
                        dl[i] = d * Float(Int8(bitPattern: low | high << 4) - 32)
                    }
                    for h in 0..<2 {
                        for s in 0..<4 {
                            let i0 = h * 128 + s * 32
                            let bit = UInt8(i0 / 32)
                            for l in 0..<32 {
                                let ql = Int8((qs[h * 32 + l] >> UInt8(2 * s)) & 3)
                                let qh = Int8(((hmask[l] >> bit) & 1) ^ 1)
                                y[i0 + l] = dl[(i0 + l) / 16] * Float(ql - (qh << 2))
                            }
                        }
                    }
                }
            }
        }
    }

    /// The 6-bit scale and min of sub-block `j` (0..<8) of a Q4_K / Q5_K block.
    @inline(__always)
    private static func scaleMin(_ s: UnsafePointer<UInt8>, _ j: Int) -> (UInt8, UInt8) {
        if j < 4 { return (s[j] & 63, s[j + 4] & 63) }
        return ((s[j + 4] & 0x0f) | ((s[j - 4] >> 2) & 0x30), (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30))
    }

    // Q4_K: d f16 | dmin f16 | scales[12] | qs[128]. Sub-block g = 2c + k (c < 4, k < 2) holds
    // (qs[32c + l] >> 4k) & 15: x = (d·sc[g])·q − dmin·m[g].
    private static func q4_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        withHalfTable { t in
            for b in 0..<blocks {
                let p = src + b * 144, y = dst + b * 256
                let d = half(p, 0, t), dmin = half(p, 2, t)
                let s = (p + 4).assumingMemoryBound(to: UInt8.self)
                let qs = (p + 16).assumingMemoryBound(to: UInt8.self)
                for c in 0..<4 {
                    let (sc0, m0) = scaleMin(s, 2 * c), (sc1, m1) = scaleMin(s, 2 * c + 1)
                    let d0 = d * Float(sc0), dm0 = dmin * Float(m0)
                    let d1 = d * Float(sc1), dm1 = dmin * Float(m1)
                    let q = qs + 32 * c, out = y + 64 * c
                    for l in 0..<32 {
                        out[l] = d0 * Float(q[l] & 0x0f) - dm0
                        out[l + 32] = d1 * Float(q[l] >> 4) - dm1
                    }
                }
            }
        }
    }

    // Q5_K: d f16 | dmin f16 | scales[12] | qh[32] | qs[128]; as Q4_K with the 5th bit of
    // sub-block g's element l in (qh[l] >> g) & 1.
    private static func q5_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        withHalfTable { t in
            for b in 0..<blocks {
                let p = src + b * 176, y = dst + b * 256
                let d = half(p, 0, t), dmin = half(p, 2, t)
                let s = (p + 4).assumingMemoryBound(to: UInt8.self)
                let qh = (p + 16).assumingMemoryBound(to: UInt8.self)
                let qs = (p + 48).assumingMemoryBound(to: UInt8.self)
                for c in 0..<4 {
                    let (sc0, m0) = scaleMin(s, 2 * c), (sc1, m1) = scaleMin(s, 2 * c + 1)
                    let d0 = d * Float(sc0), dm0 = dmin * Float(m0)
                    let d1 = d * Float(sc1), dm1 = dmin * Float(m1)
                    let q = qs + 32 * c, out = y + 64 * c
                    let b0 = UInt8(2 * c), b1 = UInt8(2 * c + 1)
                    for l in 0..<32 {
                        out[l] = d0 * Float((q[l] & 0x0f) | ((qh[l] >> b0) & 1) << 4) - dm0
                        out[l + 32] = d1 * Float((q[l] >> 4) | ((qh[l] >> b1) & 1) << 4) - dm1
                    }
                }
            }
        }
    }

    // Q6_K: ql[128] | qh[64] | scales int8[16] | d f16. Element i = h·128 + j (j < 128): low 4
    // bits (ql[64h + j % 64] >> 4·(j / 64)) & 15, high 2 bits (qh[32h + j % 32] >> 2·(j / 32)) & 3;
    // x = (d·scales[i / 16])·(q − 32). The loop visits j = l, l+32, l+64, l+96 together (ggml's order).
    private static func q6_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        withHalfTable { t in
            for b in 0..<blocks {
                let p = src + b * 210
                let sc = (p + 192).assumingMemoryBound(to: Int8.self)
                let d = half(p, 208, t)
                var dl = (Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0),
                          Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0), Float(0))
                withUnsafeMutableBytes(of: &dl) { raw in
                    let s = raw.baseAddress!.assumingMemoryBound(to: Float.self)
                    for k in 0..<16 { s[k] = d * Float(sc[k]) }
                    for h in 0..<2 {
                        let ql = (p + 64 * h).assumingMemoryBound(to: UInt8.self)
                        let qh = (p + 128 + 32 * h).assumingMemoryBound(to: UInt8.self)
                        let y = dst + b * 256 + 128 * h
                        let g = s + 8 * h
                        for l in 0..<32 {
                            let hi = qh[l], gi = l >> 4
                            let q1 = Int8(bitPattern: (ql[l] & 0x0f) | (hi & 3) << 4) - 32
                            let q2 = Int8(bitPattern: (ql[l + 32] & 0x0f) | ((hi >> 2) & 3) << 4) - 32
                            let q3 = Int8(bitPattern: (ql[l] >> 4) | ((hi >> 4) & 3) << 4) - 32
                            let q4 = Int8(bitPattern: (ql[l + 32] >> 4) | ((hi >> 6) & 3) << 4) - 32
                            y[l] = g[gi] * Float(q1)
                            y[l + 32] = g[gi + 2] * Float(q2)
                            y[l + 64] = g[gi + 4] * Float(q3)
                            y[l + 96] = g[gi + 6] * Float(q4)
                        }
                    }
                }
            }
        }
    }

    // Q8_K: d f32 | qs int8[256] | bsums int16[16]; x = d·q.
    private static func q8_K(_ src: UnsafeRawPointer, _ blocks: Int, _ dst: UnsafeMutablePointer<Float>) {
        for b in 0..<blocks {
            let p = src + b * 292, y = dst + b * 256
            let d = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)))
            let qs = (p + 4).assumingMemoryBound(to: Int8.self)
            for j in 0..<256 { y[j] = d * Float(qs[j]) }
        }
    }
}
