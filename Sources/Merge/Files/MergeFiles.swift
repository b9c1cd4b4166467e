import Foundation
import Formats
import Tensors

/// File-level merges: folders in, folders out, streaming tensor by tensor.
public enum MergeFiles {
    /// What a file-level merge did.
    public struct Summary: Sendable {
        /// Output files written (names inside the output folder).
        public var files: [String]
        /// Tensors written.
        public var tensorCount: Int
        /// Tensors that were changed (LoRA modules merged, …).
        public var changedCount: Int
        /// Bytes of tensor data written.
        public var bytes: Int
    }

    /// Folds a PEFT LoRA adapter folder into an HF checkpoint (`merge_and_unload`), writing an
    /// HF folder with the base's shard layout (same file names and index), dtypes and side files
    /// (config.json, tokenizer). Untouched tensors are copied byte for byte; merged ones are
    /// decoded to Float32, W + s·B·A is added, and encoded back to the base's dtype. Every LoRA
    /// module must have a `<module>.weight` of matching shape in the base; nothing is written
    /// otherwise.
    public static func mergeLoRA(base basePath: String, adapter adapterPath: String, output: String,
                                 force: Bool = false) throws -> Summary {
        let base = try Checkpoint(path: basePath)
        let adapter = try PEFTAdapterFolder.read(adapterPath)
        // validate everything before writing
        for (m, f) in adapter.modules {
            let name = m + ".weight"
            guard let info = base.info(name) else { throw MergeError.missingTensor(name: name, source: basePath) }
            let expected = f.fanInFanOut ? [f.inFeatures, f.outFeatures] : [f.outFeatures, f.inFeatures]
            guard info.shape.dims == expected else { throw MergeError.shapeMismatch(tensor: name, expected: expected, found: info.shape.dims) }
            guard case .safetensors(let dt) = info.storage, [.f32, .f16, .bf16, .f64].contains(dt) else {
                throw MergeError.unsupported("merging into \(name) stored as \(info.storage)")
            }
        }
        try OutputFolder.prepare(output, force: force)
        var files: [String] = []
        var changed = 0, count = 0, bytes = 0
        for shard in base.shards {
            let fileName = (shard.path as NSString).lastPathComponent
            var records: [TensorRecord] = []
            for name in shard.tensorNames where base.shard(holding: name) === shard {
                guard let info = shard.info(name) else { continue }
                count += 1
                bytes += info.byteCount
                let module = name.hasSuffix(".weight") ? String(name.dropLast(".weight".count)) : nil
                if let module, let f = adapter.modules[module], case .safetensors(let dt) = info.storage {
                    changed += 1
                    records.append(TensorRecord(name: name, shape: info.shape, storage: info.storage) {
                        defer { shard.releasePages(named: name) }   // streaming: one tensor's pages at a time
                        var merged = try shard.tensor(named: name)
                        try f.apply(to: &merged, name: name)   // in place: the decoded tensor is ours
                        do { return try merged.withUnsafeBufferPointer { try ElementCodec.encode($0, as: dt) } } catch {
                            throw MergeError.numerical(tensor: name, reason: "cannot store as \(dt.rawValue): \(error)")
                        }
                    })
                } else {
                    records.append(TensorRecord(name: name, shape: info.shape, storage: info.storage) {
                        defer { shard.releasePages(named: name) }
                        return Array(try shard.rawBytes(named: name))
                    })
                }
            }
            try SafetensorsWriter.write(records, metadata: shard.metadata.isEmpty ? nil : shard.metadata,
                                        to: output + "/" + fileName, force: force)
            files.append(fileName)
        }
        if base.shards.count > 1 {
            let idx = base.directory + "/" + Checkpoint.indexFileName
            let data = try Data(contentsOf: URL(fileURLWithPath: idx))
            let out = try AtomicFileWriter(path: output + "/" + Checkpoint.indexFileName, force: force)
            try out.write([UInt8](data))
            try out.commit()
            files.append(Checkpoint.indexFileName)
        }
        try OutputFolder.copySideFiles(from: base.directory, to: output, force: force)
        return Summary(files: files, tensorCount: count, changedCount: changed, bytes: bytes)
    }

    /// Folds a joint bundle's LoRA part into `base` (as `mergeLoRAAnyFormat`) and keeps its
    /// steering part next to the output: `<output>/steering.safetensors` for an HF folder,
    /// `<output without .gguf>.steering.safetensors` for a GGUF. Applying that steering file to
    /// the merged model reproduces the bundle applied unmerged.
    /// - Returns: the merge summary and the path of the kept steering file.
    public static func mergeJointBundle(base: String, bundle: String, output: String,
                                        ggufType: LlamaConverter.OutputType = .f32,
                                        force: Bool = false) throws -> (summary: Summary, steeringPath: String) {
        let parts = try JointAdapterBundle.read(bundle)
        let steeringPath = output.lowercased().hasSuffix(".gguf")
            ? String(output.dropLast(5)) + ".steering.safetensors" : output + "/steering.safetensors"
        if !force && FileManager.default.fileExists(atPath: steeringPath) { throw MergeError.outputExists(steeringPath) }
        let steering = try SteeringAdapterFile.load(path: parts.steeringPath)   // validated before anything is written
        let summary = try mergeLoRAAnyFormat(base: base, adapter: parts.loraPath, output: output, ggufType: ggufType, force: force)
        try steering.write(to: steeringPath, force: force)
        return (summary, steeringPath)
    }

    /// `mergeLoRA` for any pairing of HF folders and GGUF files: a `.gguf` base is first
    /// converted to an HF folder by Formats' `LlamaConverter` (Q/K rows un-permuted, quantized
    /// types dequantized to F32), and a `.gguf` output is converted from the merged HF folder
    /// (Q/K rows permuted as `convert_hf_to_gguf.py` does) with `ggufType`. Intermediate folders
    /// live next to the output and are removed afterwards.
    public static func mergeLoRAAnyFormat(base: String, adapter: String, output: String,
                                          ggufType: LlamaConverter.OutputType = .f32, force: Bool = false) throws -> Summary {
        let baseIsGGUF = base.lowercased().hasSuffix(".gguf"), outIsGGUF = output.lowercased().hasSuffix(".gguf")
        if !baseIsGGUF && !outIsGGUF { return try mergeLoRA(base: base, adapter: adapter, output: output, force: force) }
        if outIsGGUF && !force && FileManager.default.fileExists(atPath: output) { throw MergeError.outputExists(output) }
        let parent = (output as NSString).deletingLastPathComponent
        let scratch = (parent.isEmpty ? "." : parent) + "/.steertool-merge-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        var hfBase = base
        if baseIsGGUF {
            hfBase = scratch + "/base"
            try LlamaConverter.ggufToHF(input: base, output: hfBase)
        }
        let hfOut = outIsGGUF ? scratch + "/merged" : output
        var summary = try mergeLoRA(base: hfBase, adapter: adapter, output: hfOut, force: force)
        if outIsGGUF {
            try LlamaConverter.hfToGGUF(input: hfOut, output: output, type: ggufType,
                                        name: ((output as NSString).lastPathComponent as NSString).deletingPathExtension, force: force)
            summary.files = [(output as NSString).lastPathComponent]
        }
        return summary
    }

    /// Runs a mergekit YAML config on HF checkpoint folders. Model references are paths,
    /// resolved as mergekit does, relative to the working directory, and otherwise relative to
    /// `relativeTo` (the config's folder) when that exists; Hub IDs are not fetched. The output is a
    /// single `model.safetensors` (sharded above `maxShardBytes`) in the config's `out_dtype` /
    /// `dtype` (default: the reference model's dtype per tensor), plus the reference model's side
    /// files. DARE draws from `SplitMix64(seed:)`.
    public static func mergeCheckpoints(config: MergekitConfig, relativeTo: String, output: String, seed: UInt64 = 0,
                                        maxShardBytes: Int = 5_000_000_000, force: Bool = false) throws -> Summary {
        var sources: [String: any TensorSource] = [:]
        var checkpoints: [String: Checkpoint] = [:]
        for ref in Set(config.models.map(\.model) + (config.baseModel.map { [$0] } ?? [])) {
            var path = ref
            if !ref.hasPrefix("/") && !FileManager.default.fileExists(atPath: ref) { path = relativeTo + "/" + ref }
            let c = try Checkpoint(path: path)
            checkpoints[ref] = c
            sources[ref] = c
        }
        let merge = CheckpointMerge(config: config, seed: seed)
        let plan = try merge.plan(sources: sources)
        let reference = checkpoints[plan.referenceModel]!
        let outType: DType? = try (config.outDtype ?? config.dtype).map { s in
            switch s {
            case "float32", "fp32": return .f32
            case "float16", "fp16": return .f16
            case "bfloat16", "bf16": return .bf16
            default: throw MergeError.invalidConfig("unsupported dtype '\(s)'")
            }
        }
        var state = CheckpointMerge.RunState(seed: seed)
        var records: [TensorRecord] = []
        var bytes = 0
        for name in plan.tensorNames {
            guard let info = reference.info(name), case .safetensors(let refType) = info.storage else {
                throw MergeError.unsupported("tensor '\(name)' of \(plan.referenceModel) is not a plain safetensors dtype")
            }
            let dt = outType ?? refType
            let rec = TensorRecord(name: name, shape: info.shape, storage: .safetensors(dt)) {
                // streaming: each input's pages of this tensor leave memory once it is merged
                defer { for source in sources.values { source.doneReading(name) } }
                let t = try merge.mergedTensor(named: name, plan: plan, sources: sources, state: &state)
                do { return try t.withUnsafeBufferPointer { try ElementCodec.encode($0, as: dt) } } catch {
                    throw MergeError.numerical(tensor: name, reason: "cannot store as \(dt.rawValue): \(error)")
                }
            }
            bytes += rec.byteCount ?? 0
            records.append(rec)
        }
        try OutputFolder.prepare(output, force: force)
        let files = try SafetensorsWriter.writeSharded(records, metadata: ["format": "pt"], to: output, maxShardBytes: maxShardBytes, force: force)
        try OutputFolder.copySideFiles(from: reference.directory, to: output, force: force)
        return Summary(files: files, tensorCount: records.count, changedCount: records.count, bytes: bytes)
    }

    /// Extracts a LoRA from two HF checkpoints (fine-tuned − base) for every 2-D projection
    /// weight of the decoder layers (`…_proj.weight` under `layers.N.`), and writes a PEFT adapter
    /// folder. Returns each module's relative Frobenius truncation error.
    public static func extractLoRA(base basePath: String, finetuned ftPath: String, rank: ExtractionRank,
                                   output: String, force: Bool = false) throws -> [String: Double] {
        let base = try Checkpoint(path: basePath), ft = try Checkpoint(path: ftPath)
        var modules: [String: LoRAUpdate] = [:]
        var errors: [String: Double] = [:]
        for name in base.tensorNames where name.hasSuffix("_proj.weight") && CheckpointMerge.layerIndex(of: name) != nil {
            guard let fi = ft.info(name), let bi = base.info(name) else { throw MergeError.missingTensor(name: name, source: ftPath) }
            guard fi.shape == bi.shape, bi.shape.rank == 2 else {
                throw MergeError.shapeMismatch(tensor: name, expected: bi.shape.dims, found: fi.shape.dims)
            }
            let e = try LoRAExtraction.extract(base: try base.tensor(named: name), finetuned: try ft.tensor(named: name), rank: rank, name: name)
            let module = String(name.dropLast(".weight".count))
            modules[module] = e.factors
            errors[module] = e.relativeError
        }
        try PEFTAdapterFolder.write(modules, to: output, baseModel: basePath, force: force)
        return errors
    }

    /// Combines PEFT adapter folders with `add_weighted_adapter` semantics into one adapter
    /// folder (r = lora_alpha = the new rank). A module absent from some adapters is combined from
    /// those that have it, as PEFT does.
    ///
    /// PEFT copies `use_rslora` from the first adapter into the combined config, so when that
    /// adapter uses rsLoRA PEFT's combined adapter acts with scaling √r instead of 1. With
    /// `matchPEFTRSLoRA` (default) the folder reproduces that exactly; without it the folder has
    /// scaling 1 (the combination as the method defines it).
    public static func combineAdapters(_ paths: [String], weights: [Float], combination: LoRACombination,
                                       output: String, matchPEFTRSLoRA: Bool = true, force: Bool = false) throws -> [String: Int] {
        guard paths.count == weights.count, !paths.isEmpty else {
            throw MergeError.incompatibleInputs("\(paths.count) adapters and \(weights.count) weights")
        }
        try combination.validate()
        let adapters = try paths.map { try PEFTAdapterFolder.read($0) }
        var rng = SplitMix64(seed: combination.seed)
        var out: [String: LoRAUpdate] = [:]
        for module in Set(adapters.flatMap { $0.modules.keys }).sorted() {
            var inputs: [LoRAUpdate] = [], ws: [Float] = []
            for (a, w) in zip(adapters, weights) { if let f = a.modules[module] { inputs.append(f); ws.append(w) } }
            out[module] = try combination.combine(inputs, weights: ws, module: module, adapterCount: adapters.count, rng: &rng)
        }
        if combination.type == .cat && adapters.count > 1 {
            // PEFT allocates cat's factors with rank Σ (max of r and rank_pattern) over the adapters
            // and leaves the unused rows/columns zero; pad the same way so the folder's config has
            // one r (this matters for the scaling PEFT derives under rsLoRA).
            let total = adapters.reduce(0) { $0 + max($1.config.r, $1.config.rankPattern.map { Int($0.value) }.max() ?? 0) }
            out = out.mapValues { $0.zeroPadded(toRank: max(total, $0.rank)) }
        }
        let rs = matchPEFTRSLoRA && adapters[0].config.useRSLoRA
        try PEFTAdapterFolder.write(out, to: output, useRSLoRA: rs, force: force)
        return out.mapValues(\.rank)
    }
}
