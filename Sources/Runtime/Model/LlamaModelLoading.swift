import Foundation
import Formats
import Tensors

extension LlamaModel {
    /// Loads a model from a Hugging Face folder (`config.json` with `model.safetensors` or a
    /// sharded `model.safetensors.index.json`), a bare `.safetensors` file next to a
    /// `config.json`, or a GGUF file (`.gguf`). With `.f32` storage every weight is converted
    /// to f32 at load; with `.q8_0` the weight matrices are held in Q8_0 (read in place when the
    /// GGUF has them in Q8_0, quantized one tensor at a time otherwise); with `.native` BF16/F16
    /// and GGUF Q4_0 … Q6_K and Q8_0 matrices are used in place from the mapped file, F32 (and a
    /// safetensors checkpoint's other dtypes) as f32, and a GGUF matrix of any
    /// other type refused by name (see `WeightStorage`).
    /// - Throws: `FormatsError`/`SafetensorsError`/`GGUFError` for unreadable files,
    ///   `RuntimeError` for configs the runtime cannot run and missing or misshapen tensors
    ///   (naming the tensor and the path).
    public static func load(path: String, storage: WeightStorage = .f32) throws -> LlamaModel {
        if path.lowercased().hasSuffix(".gguf") { return try loadGGUF(path: path, storage: storage) }
        let checkpoint = try Checkpoint(path: path)
        let configPath = checkpoint.directory + "/config.json"
        guard let json = checkpoint.configJSON else {
            throw RuntimeError.invalidConfig(source: configPath, reason: "config.json not found next to the weights")
        }
        var config = try LlamaConfig.load(configJSON: json, source: configPath)
        try LoadMemoryCheck.check(checkpoint.tensorNames.compactMap(checkpoint.info), storage: storage, source: path)
        // transformers 5 unties when a checkpoint of a tied config still holds an lm_head.weight
        // that differs from the embedding (it warns and keeps both); do the same.
        if config.tieWordEmbeddings, checkpoint.info("lm_head.weight") != nil,
           try checkpoint.tensor(named: "lm_head.weight") != checkpoint.tensor(named: "model.embed_tokens.weight") {
            config.tieWordEmbeddings = false
        }
        func tensor(_ name: String) throws -> Tensor {
            guard checkpoint.info(name) != nil else { throw RuntimeError.missingTensor(name: name, source: path) }
            return try checkpoint.tensor(named: name)
        }
        let weights = try LlamaWeights.load(config: config, source: path, matrix: { name in
            if storage == .native, let shard = checkpoint.shard(holding: name), let info = shard.info(name),
               info.shape.rank == 2, let format = HalfMatrix.Format(info.storage) {
                // Used in place: the shard's mapped bytes, no copy.
                return .half(try HalfMatrix(file: shard.file, byteRange: info.byteRange, format: format,
                                            rows: info.shape.dims[0], columns: info.shape.dims[1],
                                            name: name, source: shard.path))
            }
            let t = try tensor(name)
            return storage == .q8_0 ? .quantized(try GGMLMatrix(quantizing: t, as: .q8_0, name: name, source: path)) : .f32(t)
        }, vector: tensor)
        return try LlamaModel(config: config, weights: weights, source: path)
    }

    /// A llama.cpp GGUF (`general.architecture` "llama", "qwen2", "qwen3" or "gemma3"):
    /// hyperparameters through Formats' `<arch>.*` → config.json mapping (decoded by `LlamaConfig`, so there is
    /// one decoding path; Gemma-3's norm weights already hold 1 + w),
    /// tensors by the HF⇄GGUF name table with the Q/K RoPE row permutation undone, and llama3
    /// scaling from `rope_freqs.weight` when present. Matrices per `storage`: `.f32` dequantizes
    /// every type gguf-py decodes; `.q8_0` reads Q8_0 in place and quantizes the rest; `.native`
    /// reads F16/BF16, Q8_0 and Q4_0 … Q6_K in place and refuses any other type (Q2_K, Q3_K, IQ*,
    /// TQ*, …) by name.
    static func loadGGUF(path: String, storage: WeightStorage) throws -> LlamaModel {
        let gguf = try GGUFFile(path: path)
        guard let arch = GGUFModelArchitecture(metadata: gguf.metadata) else {
            throw RuntimeError.unsupportedArchitecture("GGUF general.architecture '\(gguf.architecture ?? "missing")'", source: path)
        }
        let json = try arch.configJSON(of: gguf, source: path)
        let config = try LlamaConfig.load(configJSON: json, source: path)
        try LoadMemoryCheck.check(gguf.tensorNames.compactMap(gguf.info), storage: storage, source: path)
        func locate(_ hfName: String) throws -> LlamaTensorName.Mapping {
            guard let mapping = LlamaTensorName.gguf(fromHF: hfName, architecture: arch.rawValue), gguf.info(mapping.name) != nil else {
                let ggufName = LlamaTensorName.gguf(fromHF: hfName, architecture: arch.rawValue)?.name ?? "?"
                throw RuntimeError.missingTensor(name: "\(ggufName) (HF \(hfName))", source: path)
            }
            return mapping
        }
        func heads(_ p: LlamaTensorName.RopePermutation) -> Int {
            p == .query ? config.numAttentionHeads : config.numKeyValueHeads
        }
        /// The tensor in f32 and Hugging Face row order.
        func tensor(_ hfName: String) throws -> Tensor {
            let mapping = try locate(hfName)
            let t = try gguf.tensor(named: mapping.name)
            guard let p = mapping.permutation else { return t }
            return try RopePermutation.unpermute(t, heads: heads(p), name: mapping.name)
        }
        let weights = try LlamaWeights.load(config: config, source: path, normGainsIncludeOne: arch.normWeightsHoldOne,
                                            matrix: { hfName in
            guard storage != .f32 else { return .f32(try tensor(hfName)) }
            let mapping = try locate(hfName)
            guard let info = gguf.info(mapping.name), info.shape.rank == 2, case .ggml(let type) = info.storage else {
                return .f32(try tensor(hfName))  // LlamaWeights.load reports the shape
            }
            let (rows, columns) = (info.shape.dims[0], info.shape.dims[1])
            /// Row r of the Hugging Face matrix is stored row `sourceRows[r]` (nil: in order).
            let sourceRows = try mapping.permutation.map {
                try RopePermutation.sourceRows(rows: rows, heads: heads($0), inverse: true, name: mapping.name)
            }
            if storage == .q8_0, type != .q8_0 {
                return .quantized(try GGMLMatrix(quantizing: try tensor(hfName), as: .q8_0, name: mapping.name, source: path))
            }
            // Used in place from the file's mapped bytes, Q/K rows read through the inverse permutation.
            if let format = HalfMatrix.Format(info.storage) {
                let m = try HalfMatrix(file: gguf.file, byteRange: info.byteRange, format: format, rows: rows, columns: columns,
                                       name: mapping.name, source: path)
                return .half(sourceRows.map { m.permutingRows($0) } ?? m)
            }
            if let block = GGMLMatrix.BlockType(type) {
                let m = try GGMLMatrix(file: gguf.file, byteRange: info.byteRange, type: block, rows: rows, columns: columns,
                                       name: mapping.name, source: path)
                return .quantized(sourceRows.map { m.permutingRows($0) } ?? m)
            }
            guard type == .f32 else {
                throw RuntimeError.unsupportedTensorType(
                    tensor: mapping.name, type: type.description, source: path,
                    held: "F32, F16, BF16, " + GGMLMatrix.BlockType.allCases.map(\.rawValue).joined(separator: ", "))
            }
            return .f32(try tensor(hfName))
        }, vector: tensor)
        var divisors: [Float]?
        if gguf.info(LlamaTensorName.ropeFreqs) != nil {
            divisors = try gguf.tensor(named: LlamaTensorName.ropeFreqs).scalars
        }
        return try LlamaModel(config: config, weights: weights, ropeFrequencyDivisors: divisors, source: path)
    }
}
