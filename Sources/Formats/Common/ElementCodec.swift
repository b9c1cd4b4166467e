import Tensors

/// Decodes and encodes the plain (non-quantized) element types of `DType` between raw
/// little-endian bytes and Float32. Reads are unaligned-safe: a tensor's data offset in a file
/// need not be a multiple of its element size.
public enum ElementCodec {
    /// Decodes `out.count` elements of `dtype` from `raw` (which holds exactly
    /// `out.count · dtype.byteSize` bytes) into `out`. Integers convert to the nearest Float32,
    /// BOOL to 0/1.
    public static func decode(_ raw: UnsafeRawBufferPointer, dtype: DType, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(raw.count == out.count * dtype.byteSize, "decode: byte count does not match element count")
        let n = out.count
        guard n > 0, let src = raw.baseAddress, let dst = out.baseAddress else { return }
        switch dtype {
        case .f32:
            UnsafeMutableRawPointer(dst).copyMemory(from: src, byteCount: n * 4)
        case .f64:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
        case .f16:
            FloatBits.halfTable.withUnsafeBufferPointer { table in
                for i in 0..<n { dst[i] = table[Int(src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self))] }
            }
        case .bf16:
            for i in 0..<n {
                dst[i] = Float(bitPattern: UInt32(src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16)
            }
        case .i64:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: Int64.self)) }
        case .u64:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) }
        case .i32:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * 4, as: Int32.self)) }
        case .u32:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self)) }
        case .i16:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * 2, as: Int16.self)) }
        case .u16:
            for i in 0..<n { dst[i] = Float(src.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
        case .i8:
            for i in 0..<n { dst[i] = Float(Int8(bitPattern: src.load(fromByteOffset: i, as: UInt8.self))) }
        case .u8:
            for i in 0..<n { dst[i] = Float(src.load(fromByteOffset: i, as: UInt8.self)) }
        case .bool:
            for i in 0..<n { dst[i] = src.load(fromByteOffset: i, as: UInt8.self) != 0 ? 1 : 0 }
        case .f8e4m3:
            for i in 0..<n { dst[i] = FloatBits.float(fromF8E4M3: src.load(fromByteOffset: i, as: UInt8.self)) }
        case .f8e5m2:
            for i in 0..<n { dst[i] = FloatBits.float(fromF8E5M2: src.load(fromByteOffset: i, as: UInt8.self)) }
        }
    }

    /// Why `encode` refused a value.
    public enum EncodeFailure: Error, Equatable, CustomStringConvertible {
        /// The type cannot be written from Float32 (the f8 types).
        case unsupportedType(DType)
        /// Element `index` (value `value`) is not an integer in the type's range.
        case notRepresentable(index: Int, value: Float)

        public var description: String {
            switch self {
            case .unsupportedType(let d): "writing \(d) from Float32 is not supported"
            case let .notRepresentable(i, v): "element \(i) (\(v)) is not representable"
            }
        }
    }

    /// Encodes Float32 values as little-endian `dtype` bytes. Float types round to nearest even;
    /// integer types and BOOL require integral values in range (no silent rounding).
    public static func encode(_ values: UnsafeBufferPointer<Float>, as dtype: DType) throws(EncodeFailure) -> [UInt8] {
        let n = values.count
        var out = [UInt8](repeating: 0, count: n * dtype.byteSize)
        var failure: EncodeFailure?
        out.withUnsafeMutableBytes { raw in
            func put<T: FixedWidthInteger>(_ i: Int, _ v: T) { raw.storeBytes(of: v.littleEndian, toByteOffset: i * MemoryLayout<T>.size, as: T.self) }
            func integral<T: FixedWidthInteger>(_ i: Int, _ type: T.Type) -> T? {
                let v = values[i]
                guard let t = T(exactly: v) else { failure = .notRepresentable(index: i, value: v); return nil }
                return t
            }
            switch dtype {
            case .f32: for i in 0..<n { put(i, values[i].bitPattern) }
            case .f64: for i in 0..<n { put(i, Double(values[i]).bitPattern) }
            case .f16: for i in 0..<n { put(i, FloatBits.half(from: values[i])) }
            case .bf16: for i in 0..<n { put(i, FloatBits.bfloat16(from: values[i])) }
            case .i64: for i in 0..<n { guard let v = integral(i, Int64.self) else { return }; put(i, v) }
            case .u64: for i in 0..<n { guard let v = integral(i, UInt64.self) else { return }; put(i, v) }
            case .i32: for i in 0..<n { guard let v = integral(i, Int32.self) else { return }; put(i, v) }
            case .u32: for i in 0..<n { guard let v = integral(i, UInt32.self) else { return }; put(i, v) }
            case .i16: for i in 0..<n { guard let v = integral(i, Int16.self) else { return }; put(i, v) }
            case .u16: for i in 0..<n { guard let v = integral(i, UInt16.self) else { return }; put(i, v) }
            case .i8: for i in 0..<n { guard let v = integral(i, Int8.self) else { return }; put(i, v) }
            case .u8: for i in 0..<n { guard let v = integral(i, UInt8.self) else { return }; put(i, v) }
            case .bool:
                for i in 0..<n {
                    guard values[i] == 0 || values[i] == 1 else { failure = .notRepresentable(index: i, value: values[i]); return }
                    put(i, UInt8(values[i] == 1 ? 1 : 0))
                }
            case .f8e4m3, .f8e5m2: failure = .unsupportedType(dtype)
            }
        }
        if let failure { throw failure }
        return out
    }
}
