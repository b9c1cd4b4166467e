import OrderedCollections
import Tensors

/// Converts files of arbitrary named tensors (not whole models: control vectors, LoRA GGUFs
/// seen as plain tensors, files of quantized tensors) between GGUF and safetensors, keeping
/// names, order and metadata and making no assumption about what the tensors mean.
///
/// Shapes: GGUF stores `ne` innermost-first; `GGUFFile` already reverses it, so a GGUF tensor
/// with `ne = [64, 3]` becomes the safetensors shape `[3, 64]` (row-major, outermost first) and
/// back. Metadata travels through `GGUFMetadataText` (GGUF values rendered as strings in
/// `__metadata__`, their types in `GGUFMetadataText.typesKey`).
public enum TensorFileConverter {
    /// Float types a GGUF tensor file's float and quantized tensors may be written as.
    public static let floatOutputTypes: [DType] = [.f32, .f16, .bf16]

    /// What a conversion did, for the CLI's summary line.
    public struct Report: Sendable, Equatable {
        /// Tensors written.
        public var tensors: Int
        /// Metadata keys carried.
        public var metadataKeys: Int
        /// Metadata keys left out (values too long for a string map; GGUF → safetensors only).
        public var omittedKeys: [String]
    }

    /// GGUF file → safetensors file. Every float or quantized tensor (F32, F16, BF16, F64 and the
    /// types `GGMLDequantizer` decodes: Q4_0 … Q8_0, Q2_K … Q8_K) is dequantized to Float32 as
    /// gguf-py's `quants.dequantize` does, then stored as `dtype` (F16/BF16 rounded to nearest
    /// even); integer tensors (I8 … I64) keep their type and bytes. Names and file order are kept;
    /// the metadata goes to `__metadata__` as `GGUFMetadataText` renders it.
    /// - Parameters:
    ///   - dtype: F32, F16 or BF16.
    /// - Throws: `GGUFError.unsupportedTensorType` naming the file and tensor for a type without a
    ///   dequantizer (checked for every tensor before anything is written), the reader's errors
    ///   for a malformed file, `FormatsError.outputExists` unless `force`. Nothing is written on error.
    @discardableResult
    public static func ggufToSafetensors(input: String, output: String, dtype: DType = .f32, force: Bool = false,
                                         progress: LlamaConverter.Progress? = nil) throws -> Report {
        precondition(floatOutputTypes.contains(dtype), "ggufToSafetensors: dtype must be F32, F16 or BF16")
        let g = try GGUFFile(path: input)
        var records: [TensorRecord] = []
        for name in g.tensorNames {
            guard let info = g.info(name), case .ggml(let type) = info.storage else { continue }
            guard GGMLDequantizer.supports(type) else {
                throw GGUFError.unsupportedTensorType(file: input, tensor: name, type: type.name)
            }
            if let plain = type.plainDType, !plain.isFloatingPoint {
                records.append(TensorRecord(name: name, shape: info.shape, storage: .safetensors(plain)) {
                    defer { g.releasePages(named: name) }
                    return Array(try g.rawBytes(named: name))
                })
                continue
            }
            records.append(TensorRecord(name: name, shape: info.shape, storage: .safetensors(dtype)) {
                defer { g.releasePages(named: name) }
                let t = try g.tensor(named: name)
                do { return try t.withUnsafeBufferPointer { try ElementCodec.encode($0, as: dtype) } } catch {
                    throw FormatsError.unsupportedConversion(file: input, tensor: name, type: dtype.rawValue, reason: "\(error)")
                }
            })
        }
        let (metadata, omitted) = GGUFMetadataText.strings(from: g.metadata)
        try SafetensorsWriter.write(LlamaConverter.withProgress(records, progress), metadata: metadata, to: output, force: force)
        return Report(tensors: records.count, metadataKeys: g.metadata.count - omitted.count, omittedKeys: omitted)
    }

    /// The GGML type that stores a safetensors dtype unchanged, or nil (unsigned integers, BOOL
    /// and the f8 types have none).
    public static func ggmlType(storing dtype: DType) -> GGMLType? {
        GGMLType.allCases.first { $0.plainDType == dtype }
    }

    /// Safetensors file → GGUF file: every tensor keeps its name, order, shape and type (F32,
    /// F16, BF16, F64, I8, I16, I32, I64; bytes copied), and `__metadata__` comes back as GGUF
    /// metadata (`GGUFMetadataText.metadata(from:source:)`: typed where the file says so, else
    /// STRING).
    /// - Throws: `FormatsError.unsupportedConversion` naming the file and tensor for a dtype GGUF
    ///   cannot store, `FormatsError.invalidShape` for more than 4 dimensions, the reader's
    ///   errors, `FormatsError.outputExists` unless `force`. Nothing is written on error.
    @discardableResult
    public static func safetensorsToGGUF(input: String, output: String, force: Bool = false,
                                         progress: LlamaConverter.Progress? = nil) throws -> Report {
        let st = try SafetensorsFile(path: input)
        var records: [TensorRecord] = []
        for name in st.tensorNames {
            guard let info = st.info(name), case .safetensors(let dtype) = info.storage else { continue }
            guard let type = ggmlType(storing: dtype) else {
                throw FormatsError.unsupportedConversion(file: input, tensor: name, type: dtype.rawValue, reason: "GGUF has no \(dtype) tensor type")
            }
            guard info.shape.rank <= GGUFFile.maxDimensions else {
                throw FormatsError.invalidShape(file: input, tensor: name, shape: info.shape.dims, reason: "GGUF tensors have at most \(GGUFFile.maxDimensions) dimensions")
            }
            records.append(TensorRecord(name: name, shape: info.shape, storage: .ggml(type)) {
                defer { st.releasePages(named: name) }
                return Array(try st.rawBytes(named: name))
            })
        }
        let metadata = try GGUFMetadataText.metadata(from: st.metadata, source: input)
        try GGUFWriter.write(metadata: metadata, tensors: LlamaConverter.withProgress(records, progress), to: output, force: force)
        return Report(tensors: records.count, metadataKeys: metadata.count, omittedKeys: [])
    }
}
