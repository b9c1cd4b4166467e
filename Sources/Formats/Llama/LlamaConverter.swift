import Foundation
import Tensors

/// Converts Llama checkpoints between a Hugging Face folder and a GGUF file, tensor by tensor
/// (peak memory about one tensor), following llama.cpp's `convert_hf_to_gguf.py` in the HF → GGUF
/// direction and inverting it in the other.
public enum LlamaConverter {
    /// Output tensor types of HF → GGUF (`--outtype`).
    public enum OutputType: String, CaseIterable, Sendable {
        case f32, f16, bf16, q8_0, q4_0

        /// GGML type of the 2-D weights.
        public var ggmlType: GGMLType {
            switch self {
            case .f32: .f32
            case .f16: .f16
            case .bf16: .bf16
            case .q8_0: .q8_0
            case .q4_0: .q4_0
            }
        }

        /// `general.file_type` (gguf-py `LlamaFileType`).
        public var fileType: UInt32 {
            switch self {
            case .f32: 0
            case .f16: 1
            case .q4_0: 2
            case .q8_0: 7
            case .bf16: 32
            }
        }
    }

    /// Called after each tensor: (index, total, tensor name).
    public typealias Progress = (Int, Int, String) -> Void

    /// The GGML type convert_hf_to_gguf gives a tensor: F32 for 1-D tensors, norms and
    /// rope_freqs; otherwise `type`, falling back to F16 when the row length is not a multiple of
    /// the block size.
    public static func tensorType(ggufName: String, shape: Shape, type: OutputType) -> GGMLType {
        if shape.rank <= 1 || ggufName.hasSuffix("_norm.weight") || ggufName == LlamaTensorName.ropeFreqs { return .f32 }
        let t = type.ggmlType
        return t.byteCount(elements: shape.count, rowLength: shape.dims.last ?? 1) == nil ? .f16 : t
    }

    /// HF folder (config.json, tokenizer.json, single or sharded safetensors) → GGUF file.
    /// - Parameter name: `general.name` (default: the folder's name).
    /// - Throws: `FormatsError` / `SafetensorsError` for unreadable input or a non-Llama tensor,
    ///   `FormatsError.outputExists` unless `force`.
    public static func hfToGGUF(input: String, output: String, type: OutputType, name: String? = nil,
                                force: Bool = false, progress: Progress? = nil) throws {
        let ck = try Checkpoint(path: input)
        guard let config = ck.configJSON else { throw FormatsError.missingFile(path: ck.directory + "/config.json", reason: "an HF model folder needs config.json") }
        let h = try LlamaMetadata.hyperparameters(fromConfigJSON: config, source: ck.directory + "/config.json")
        let arch = GGUFModelArchitecture(configJSON: config)

        var md = OrderedDictionary<String, GGUFValue>()
        md["general.architecture"] = .string(arch.rawValue)
        md["general.type"] = .string("model")
        md["general.name"] = .string(name ?? URL(fileURLWithPath: ck.directory).lastPathComponent)
        let keys = arch == .gemma3
            ? try Gemma3Metadata.ggufMetadata(fromConfigJSON: config, source: ck.directory + "/config.json")
            : LlamaMetadata.ggufMetadata(h, architecture: arch)
        for (k, v) in keys {
            if k == "\(arch.rawValue).vocab_size" { md["general.file_type"] = .uint32(type.fileType) }
            md[k] = v
        }
        if md["general.file_type"] == nil { md["general.file_type"] = .uint32(type.fileType) }   // after the last key (Qwen)
        let tokenizerPath = ck.directory + "/tokenizer.json"
        if arch == .gemma3, FileManager.default.fileExists(atPath: tokenizerPath) {
            throw FormatsError.invalidModel(file: tokenizerPath, reason: "writing Gemma's SentencePiece vocabulary to GGUF is not supported yet")
        }
        if let tok = FileManager.default.contents(atPath: tokenizerPath) {
            let tc = FileManager.default.contents(atPath: ck.directory + "/tokenizer_config.json")
            for (k, v) in try LlamaTokenizerMetadata.ggufMetadata(tokenizerJSON: tok, vocabSize: h.vocabSize, configJSON: config,
                                                                  tokenizerConfigJSON: tc,
                                                                  source: tokenizerPath) {
                md[k] = v
            }
        }

        var records: [TensorRecord] = []
        if let factors = LlamaMetadata.llama3RopeFactors(h) {
            records.append(GGUFWriter.record(LlamaTensorName.ropeFreqs, Tensor(vector: factors), as: .f32))
        }
        // llama.cpp walks shards in sorted order and each shard's keys sorted (safe_open.keys()).
        for shard in ck.shards {
            for hfName in shard.tensorNames.sorted() where ck.shard(holding: hfName) === shard {
                guard let mapping = LlamaTensorName.gguf(fromHF: hfName, architecture: arch.rawValue), let info = ck.info(hfName) else {
                    throw FormatsError.invalidModel(file: shard.path, reason: "tensor '\(hfName)' is not part of a \(arch.rawValue) model")
                }
                let ggml = tensorType(ggufName: mapping.name, shape: info.shape, type: type)
                let heads = mapping.permutation == .key ? h.kvHeads : h.heads
                // Gemma's norm weights are w in x·r·(1 + w); llama.cpp's GGUF stores 1 + w.
                let addOne = arch.normWeightsHoldOne && mapping.name.hasSuffix("norm.weight")
                records.append(TensorRecord(name: mapping.name, shape: info.shape, storage: .ggml(ggml)) {
                    defer { ck.releasePages(named: hfName) }   // streaming: one input tensor's pages at a time
                    var t = try ck.tensor(named: hfName)
                    if addOne { t = t.map { 1 + $0 } }
                    if mapping.permutation != nil { t = try RopePermutation.permute(t, heads: heads, name: hfName) }
                    return t.withUnsafeBufferPointer { GGMLQuantizer.quantize($0, as: ggml) }
                })
            }
        }
        try GGUFWriter.write(metadata: md, tensors: withProgress(records, progress), to: output, force: force)
    }

    /// GGUF file → HF folder: `model.safetensors` (tensors sorted by name, as the Python
    /// library writes them, with `{"format": "pt"}` metadata), `config.json`, and
    /// `tokenizer.json` when the GGUF has a gpt2-style vocabulary. Q/K rows are un-permuted and
    /// `rope_freqs.weight` is dropped. Tensors keep F16/BF16 storage; everything else
    /// (F32 and quantized types) is written as F32 unless `dtype` forces one type.
    /// - Throws: `GGUFError` for unreadable input or types without a dequantizer,
    ///   `FormatsError.outputExists` unless `force`.
    public static func ggufToHF(input: String, output: String, dtype: DType? = nil, force: Bool = false, progress: Progress? = nil) throws {
        let g = try GGUFFile(path: input)
        if !force {
            for f in [Checkpoint.singleFileName, "config.json", "tokenizer.json"] where FileManager.default.fileExists(atPath: output + "/" + f) {
                throw FormatsError.outputExists(path: output + "/" + f)
            }
        }
        let arch = GGUFModelArchitecture(metadata: g.metadata) ?? .llama   // .llama's reader names a wrong architecture
        let config = try arch.configJSON(of: g, source: input)
        let h = try LlamaMetadata.hyperparameters(fromConfigJSON: config, source: input)
        var records: [TensorRecord] = []
        for name in g.tensorNames where name != LlamaTensorName.ropeFreqs {
            guard let mapping = LlamaTensorName.hf(fromGGUF: name, architecture: arch.rawValue), let info = g.info(name),
                  case .ggml(let type) = info.storage else {
                throw FormatsError.invalidModel(file: input, reason: "tensor '\(name)' is not part of a \(arch.rawValue) model")
            }
            // Gemma: the GGUF's norm weights are 1 + w, Hugging Face's w (this is a plain f32 subtraction).
            let subtractOne = arch.normWeightsHoldOne && name.hasSuffix("norm.weight")
            let out: DType = dtype ?? (type == .f16 ? .f16 : type == .bf16 ? .bf16 : .f32)
            let heads = mapping.permutation == .key ? h.kvHeads : h.heads
            records.append(TensorRecord(name: mapping.name, shape: info.shape, storage: .safetensors(out)) {
                defer { g.releasePages(named: name) }
                var t = try g.tensor(named: name)
                if subtractOne { t = t.map { $0 - 1 } }
                if mapping.permutation != nil { t = try RopePermutation.unpermute(t, heads: heads, name: name) }
                do { return try t.withUnsafeBufferPointer { try ElementCodec.encode($0, as: out) } } catch {
                    throw FormatsError.unsupportedConversion(file: input, tensor: name, type: out.rawValue, reason: "\(error)")
                }
            })
        }
        records.sort { $0.name < $1.name }
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        try SafetensorsWriter.write(withProgress(records, progress), metadata: ["format": "pt"], to: output + "/" + Checkpoint.singleFileName, force: force)
        let c = try AtomicFileWriter(path: output + "/config.json", force: force)
        try c.write([UInt8](config))
        try c.commit()
        if g.metadata["tokenizer.ggml.model"]?.stringValue == "gpt2" {
            let t = try AtomicFileWriter(path: output + "/tokenizer.json", force: force)
            try t.write([UInt8](try LlamaTokenizerMetadata.tokenizerJSON(fromGGUF: g.metadata, source: input)))
            try t.commit()
        }
    }

    /// `records` with each producer reporting to `progress` after it runs (unchanged when nil).
    static func withProgress(_ records: [TensorRecord], _ progress: Progress?) -> [TensorRecord] {
        guard let progress else { return records }
        let total = records.count
        return records.enumerated().map { i, r in
            var r = r
            let produce = r.bytes
            r.bytes = {
                let b = try produce()
                progress(i + 1, total, r.name)
                return b
            }
            return r
        }
    }
}
