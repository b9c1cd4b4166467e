import Foundation
import OrderedCollections
import Tensors

/// llama.cpp's LoRA adapter GGUF, as its `convert_lora_to_gguf.py` writes it, and its mapping to
/// and from a PEFT adapter (`PEFTAdapter`).
///
/// Layout (from the converter's `LoraModel` and `LoraTorchTensor`):
/// - metadata `general.architecture` the base model's (`llama` for Llama and Mistral, `qwen2`,
///   `qwen3`, `gemma3`), `general.type = "adapter"`,
///   `adapter.type = "lora"`, `general.name`, `adapter.lora.alpha` (FLOAT32, PEFT's `lora_alpha`),
///   `general.quantization_version = 2`; no `llama.*` hyperparameters.
/// - per adapted weight `blk.N.<tensor>.weight` two tensors: `….weight.lora_a` = PEFT's A
///   `[r, in]` (GGUF `ne = [in, r]`) and `….weight.lora_b` = PEFT's B `[out, r]`
///   (`ne = [r, out]`), in the order of the PEFT file's tensor names, a before b.
/// - in `llama` files, q_proj and k_proj carry the RoPE row permutation of `convert_hf_to_gguf.py`
///   (`LlamaModel.permute`); `LoraTorchTensor.reshape/swapaxes` apply it to the rows of B only
///   (num_attention_heads for q, num_key_value_heads for k), A is unchanged. So the heads of the
///   base model are needed in both directions.
/// - llama.cpp scales each adapted weight by `alpha / r` with `r = lora_a.ne[1]`
///   (`llama_adapter_lora`), one alpha per file. PEFT configs whose scale differs (rsLoRA,
///   alpha_pattern) are written with that ratio folded into B, so ΔW is the same.
/// Embedding, output and norm tensors (mergekit-extract-lora's extras) are refused.
public enum LlamaCppLoRAFile {
    /// `general.type` of adapter GGUFs.
    public static let generalType = "adapter"
    /// `adapter.type` of LoRA GGUFs.
    public static let adapterType = "lora"
    /// The key holding alpha.
    public static let alphaKey = "adapter.lora.alpha"

    /// What a conversion needs from the base model: its GGUF architecture (the adapter's
    /// `general.architecture`, its tensor names, and whether B's q/k rows are RoPE-permuted:
    /// for `llama` only, as `convert_hf_to_gguf.py` permutes llama-named files only) and its head
    /// counts (for that permutation).
    public struct BaseModel: Sendable, Equatable {
        /// The GGUF architecture (Mistral is `llama`, as llama.cpp writes it).
        public var architecture: GGUFModelArchitecture
        /// num_attention_heads.
        public var heads: Int
        /// num_key_value_heads.
        public var kvHeads: Int

        /// A base model's description.
        public init(architecture: GGUFModelArchitecture = .llama, heads: Int, kvHeads: Int) {
            self.architecture = architecture
            self.heads = heads
            self.kvHeads = kvHeads
        }

        /// The base model at `path`: an HF folder (its config.json), a config.json, or a model
        /// GGUF (`general.architecture`, `<arch>.attention.head_count`, `…head_count_kv`).
        /// - Throws: `FormatsError` when none of these is found, a key is missing, or the GGUF's
        ///   architecture is not one steertool maps.
        public init(path: String) throws {
            var isDir: ObjCBool = false
            if path.lowercased().hasSuffix(".gguf") {
                let g = try GGUFFile(path: path)
                let arch = try LlamaCppLoRAFile.architecture(of: g, what: "the base model")
                let name = arch.rawValue
                guard let h = g.metadata["\(name).attention.head_count"]?.intValue, h > 0 else {
                    throw FormatsError.invalidModel(file: path, reason: "missing integer key \(name).attention.head_count (the base model's heads)")
                }
                self.init(architecture: arch, heads: h, kvHeads: g.metadata["\(name).attention.head_count_kv"]?.intValue ?? h)
                return
            }
            let config = FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && isDir.boolValue ? path + "/config.json" : path
            guard let data = FileManager.default.contents(atPath: config) else {
                throw FormatsError.missingFile(path: config, reason: "the base model's config.json (its architecture and heads) is missing")
            }
            let hp = try LlamaMetadata.hyperparameters(fromConfigJSON: data, source: config)
            self.init(architecture: GGUFModelArchitecture(configJSON: data), heads: hp.heads, kvHeads: hp.kvHeads)
        }
    }

    /// The `general.architecture` of `g` (`GGUFModelArchitecture(metadata:)`).
    /// - Throws: `FormatsError.invalidModel` naming the file and `what` it is for one steertool
    ///   does not map.
    static func architecture(of g: GGUFFile, what: String) throws -> GGUFModelArchitecture {
        guard let arch = GGUFModelArchitecture(metadata: g.metadata) else {
            let name = g.metadata["general.architecture"]?.stringValue ?? "(none)"
            throw FormatsError.invalidModel(file: g.path, reason: "\(what) has general.architecture '\(name)', which steertool does not map (llama, qwen2, qwen3, gemma3)")
        }
        return arch
    }

    /// Whether GGUF metadata describes a LoRA adapter (`general.type = adapter`, `adapter.type = lora`).
    public static func isLoRA(_ metadata: OrderedDictionary<String, GGUFValue>) -> Bool {
        metadata["general.type"]?.stringValue == generalType && metadata["adapter.type"]?.stringValue == adapterType
    }

    /// Reads a LoRA GGUF as a PEFT adapter: the file's `general.architecture` (llama, qwen2,
    /// qwen3, gemma3) names its tensors; A and B dequantized to Float32, B's q/k rows un-permuted
    /// with the base's heads in `llama` files, `lora_alpha` from `adapter.lora.alpha` (llama.cpp's alpha 0 means
    /// scale 1: alpha = rank), `r` the most common rank with `rank_pattern` (and, for alpha 0,
    /// `alpha_pattern`) for the others; `target_modules` the projection names (e.g. "q_proj") when
    /// every layer that has adapters adapts the same set, else the full module names.
    /// - Parameters:
    ///   - base: the base model; its architecture must be the file's, and a `llama` file that
    ///     adapts q_proj or k_proj needs its heads (nil: refuse those).
    ///   - baseModelNameOrPath: written as `base_model_name_or_path`.
    /// - Throws: `FormatsError` naming the file and tensor for a non-LoRA file, an architecture
    ///   steertool does not map or other than the base's, an unpaired or unmapped tensor, shapes
    ///   that do not form B·A, missing heads; `GGUFError` for types without a dequantizer.
    public static func peftAdapter(from g: GGUFFile, base: BaseModel?, baseModelNameOrPath: String? = nil) throws -> PEFTAdapter {
        let file = g.path
        guard isLoRA(g.metadata) else {
            throw FormatsError.invalidModel(file: file, reason: "not a LoRA adapter GGUF (general.type = adapter, adapter.type = lora)")
        }
        let architecture = try Self.architecture(of: g, what: "the LoRA")
        if let base, base.architecture != architecture {
            throw FormatsError.invalidModel(file: file, reason: "LoRA made for a \(architecture.rawValue) model; the base model is \(base.architecture.rawValue)")
        }
        let alpha = g.metadata[alphaKey]?.doubleValue ?? 0
        var pairs: [String: (a: String?, b: String?)] = [:]
        var order: [String] = []
        for name in g.tensorNames {
            let isA = name.hasSuffix(".lora_a"), isB = name.hasSuffix(".lora_b")
            guard isA || isB else {
                throw FormatsError.invalidModel(file: file, reason: "tensor '\(name)' is neither a .lora_a nor a .lora_b tensor (only LoRA pairs convert to PEFT)")
            }
            let base = String(name.dropLast(".lora_a".count))
            if pairs[base] == nil { order.append(base); pairs[base] = (nil, nil) }
            if isA { pairs[base]?.a = name } else { pairs[base]?.b = name }
        }
        var modules: [LoRAModule] = []
        for tensor in order {
            guard let p = pairs[tensor], let aName = p.a else { throw FormatsError.missingTensor(file: file, tensor: tensor + ".lora_a") }
            guard let bName = p.b else { throw FormatsError.missingTensor(file: file, tensor: tensor + ".lora_b") }
            guard let mapping = LlamaTensorName.hf(fromGGUF: tensor, architecture: architecture.rawValue), mapping.layer != nil,
                  tensor.hasSuffix(".weight") else {
                throw FormatsError.invalidModel(file: file, reason: "tensor '\(aName)': '\(tensor)' is not an adaptable \(architecture.rawValue) projection")
            }
            let a = try g.tensor(named: aName)
            var b = try g.tensor(named: bName)
            guard a.rank == 2, b.rank == 2, a.shape[0] == b.shape[1], a.shape[0] > 0 else {
                throw FormatsError.invalidShape(file: file, tensor: aName, shape: a.shape.dims, reason: "A \(a.shape) and B \(b.shape) do not form B·A")
            }
            if let perm = mapping.permutation {
                guard let base else {
                    throw FormatsError.invalidModel(file: file, reason: "tensor '\(bName)' is RoPE-permuted: the base model's head counts are needed (--base)")
                }
                do { b = try RopePermutation.unpermute(b, heads: perm == .key ? base.kvHeads : base.heads, name: bName) } catch {
                    throw FormatsError.invalidShape(file: file, tensor: bName, shape: b.shape.dims, reason: "\(error)")
                }
            }
            let module = String(mapping.name.dropLast(".weight".count))
            let rank = a.shape[0]
            modules.append(LoRAModule(name: module, a: a, b: b, scale: Float(alpha == 0 ? 1 : alpha / Double(rank))))
        }
        guard !modules.isEmpty else { throw FormatsError.invalidModel(file: file, reason: "the adapter has no LoRA tensors") }
        modules.sort { $0.name < $1.name }

        var counts: [Int: Int] = [:]
        for m in modules { counts[m.rank, default: 0] += 1 }
        let r = counts.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }?.key ?? modules[0].rank
        let rankPattern = modules.filter { $0.rank != r }.map { ($0.name, $0.rank) }
        let alphaPattern = alpha == 0 ? rankPattern.map { ($0.0, Double($0.1)) } : []
        let short = Set(modules.map { $0.name.split(separator: ".").last.map(String.init) ?? $0.name })
        var perLayer: [Int: Set<String>] = [:]
        for m in modules { perLayer[m.layer ?? -1, default: []].insert(m.name.split(separator: ".").last.map(String.init) ?? m.name) }
        let uniform = perLayer.values.allSatisfy { $0 == short }
        let layers = perLayer.keys.sorted()
        let targets = uniform ? short.sorted() : modules.map(\.name)
        let config = PEFTAdapterConfig(r: r, loraAlpha: alpha == 0 ? Double(r) : alpha, targetModules: targets,
                                       rankPattern: rankPattern, alphaPattern: alphaPattern,
                                       layersToTransform: uniform ? layers : nil, baseModelNameOrPath: baseModelNameOrPath)
        return PEFTAdapter(config: config, modules: modules)
    }

    /// Writes `adapter` for `base` as llama.cpp's converter would (see the type's documentation):
    /// `general.architecture` the base's, modules in the order of their PEFT tensor names under
    /// that architecture's GGUF names, `lora_a` then `lora_b`, B's q/k rows permuted with the
    /// base's heads for `llama` only, each tensor stored as `type` (F32 default; F16, BF16, Q8_0 as
    /// `LlamaConverter.tensorType` chooses, falling back to F16 for rows the block size does not divide).
    /// - Throws: `FormatsError` naming the module for a module the architecture does not have,
    ///   `fan_in_fan_out`, or an existing output without `force`.
    public static func write(_ adapter: PEFTAdapter, base: BaseModel, to path: String, type: LlamaConverter.OutputType = .f32,
                             name: String = "Lora", force: Bool = false) throws {
        guard !adapter.config.fanInFanOut else {
            throw FormatsError.invalidModel(file: path, reason: "fan_in_fan_out adapters (GPT-2 Conv1D layout) have no llama.cpp form")
        }
        let alpha = adapter.config.loraAlpha
        var md = OrderedDictionary<String, GGUFValue>()
        md["general.architecture"] = .string(base.architecture.rawValue)
        md["general.type"] = .string(generalType)
        md["adapter.type"] = .string(adapterType)
        md["general.name"] = .string(name)
        md[alphaKey] = .float32(Float(alpha))
        md["general.quantization_version"] = .uint32(2)
        var records: [TensorRecord] = []
        for m in adapter.modules.sorted(by: { $0.name < $1.name }) {
            guard let mapping = LlamaTensorName.gguf(fromHF: m.name + ".weight", architecture: base.architecture.rawValue),
                  mapping.layer != nil else {
                throw FormatsError.invalidModel(file: path, reason: "module '\(m.name)' is not an adaptable \(base.architecture.rawValue) projection")
            }
            var b = m.b
            // llama.cpp applies alpha / r; fold any other PEFT scale (rsLoRA, alpha_pattern) into B.
            let llamaScale = alpha == 0 ? 1 : Float(alpha / Double(m.rank))
            if m.scale != llamaScale, llamaScale != 0 {
                let f = m.scale / llamaScale
                b = Tensor(shape: b.shape, scalars: b.scalars.map { $0 * f })
            }
            if let perm = mapping.permutation {
                b = try RopePermutation.permute(b, heads: perm == .key ? base.kvHeads : base.heads, name: m.name + ".lora_B.weight")
            }
            for (suffix, t) in [(".lora_a", m.a), (".lora_b", b)] {
                let tensorName = mapping.name + suffix
                records.append(GGUFWriter.record(tensorName, t, as: LlamaConverter.tensorType(ggufName: tensorName, shape: t.shape, type: type)))
            }
        }
        try GGUFWriter.write(metadata: md, tensors: records, to: path, force: force)
    }
}
