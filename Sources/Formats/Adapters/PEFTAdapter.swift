import Foundation
import Tensors

/// The fields of a PEFT LoRA `adapter_config.json` that define the weight update.
public struct PEFTAdapterConfig: Sendable, Equatable {
    /// Default rank r.
    public var r: Int
    /// Default alpha.
    public var loraAlpha: Double
    /// rsLoRA: scale = alpha / √r instead of alpha / r.
    public var useRSLoRA: Bool
    /// The base layer stores its weight `[in, out]` (GPT-2 Conv1D); A/B keep PEFT's orientation.
    public var fanInFanOut: Bool
    /// Module-name suffixes LoRA was applied to (a list) — or nil when `targetModulesRegex` is used.
    public var targetModules: [String]?
    /// `target_modules` given as a single regular expression string.
    public var targetModulesRegex: String?
    /// Per-module rank overrides (keys match a module name or its dotted suffix; first match wins).
    public var rankPattern: [(String, Int)]
    /// Per-module alpha overrides (same matching).
    public var alphaPattern: [(String, Double)]
    /// Only these 0-based layers were adapted (nil: all).
    public var layersToTransform: [Int]?
    /// `base_model_name_or_path`, if stated.
    public var baseModelNameOrPath: String?
    /// The whole document, so a writer can round-trip fields steertool does not model.
    public var raw: JSONValue

    public static func == (a: Self, b: Self) -> Bool { a.raw == b.raw }

    /// Creates a config for a new adapter (the other keys get PEFT's defaults when written).
    public init(r: Int, loraAlpha: Double, useRSLoRA: Bool = false, fanInFanOut: Bool = false, targetModules: [String],
                rankPattern: [(String, Int)] = [], alphaPattern: [(String, Double)] = [], layersToTransform: [Int]? = nil,
                baseModelNameOrPath: String? = nil) {
        self.r = r; self.loraAlpha = loraAlpha; self.useRSLoRA = useRSLoRA; self.fanInFanOut = fanInFanOut
        self.targetModules = targetModules; self.targetModulesRegex = nil
        self.rankPattern = rankPattern; self.alphaPattern = alphaPattern; self.layersToTransform = layersToTransform
        self.baseModelNameOrPath = baseModelNameOrPath
        raw = .object([
            ("peft_type", .string("LORA")), ("task_type", .string("CAUSAL_LM")),
            ("base_model_name_or_path", baseModelNameOrPath.map { .string($0) } ?? .null),
            ("r", .int(r)), ("lora_alpha", .double(loraAlpha)), ("use_rslora", .bool(useRSLoRA)),
            ("fan_in_fan_out", .bool(fanInFanOut)), ("target_modules", .array(targetModules.map { .string($0) })),
            ("rank_pattern", .object(rankPattern.map { ($0.0, .int($0.1)) })),
            ("alpha_pattern", .object(alphaPattern.map { ($0.0, .double($0.1)) })),
            ("layers_to_transform", layersToTransform.map { .array($0.map { .int($0) }) } ?? .null),
            ("lora_dropout", .double(0)), ("bias", .string("none")), ("inference_mode", .bool(true)),
            ("use_dora", .bool(false)), ("modules_to_save", .null),
        ])
    }

    /// Parses adapter_config.json.
    /// - Throws: `FormatsError.invalidJSON` for malformed JSON, a non-LORA `peft_type`, or missing `r`/`lora_alpha`.
    public init(json data: Data, source: String = "adapter_config.json") throws {
        let j: JSONValue
        do { j = try JSONParser.parse([UInt8](data)) } catch { throw FormatsError.invalidJSON(file: source, reason: "\(error)") }
        guard j.objectValue != nil else { throw FormatsError.invalidJSON(file: source, reason: "not an object") }
        if let t = j["peft_type"]?.stringValue, t != "LORA" {
            throw FormatsError.invalidJSON(file: source, reason: "peft_type \(t) is not LORA")
        }
        if j["use_dora"]?.boolValue == true { throw FormatsError.invalidJSON(file: source, reason: "DoRA adapters are not supported") }
        guard let r = j["r"]?.intValue, r > 0 else { throw FormatsError.invalidJSON(file: source, reason: "missing or non-positive \"r\"") }
        guard let alpha = j["lora_alpha"]?.doubleValue else { throw FormatsError.invalidJSON(file: source, reason: "missing \"lora_alpha\"") }
        self.r = r
        loraAlpha = alpha
        useRSLoRA = j["use_rslora"]?.boolValue ?? false
        fanInFanOut = j["fan_in_fan_out"]?.boolValue ?? false
        targetModules = j["target_modules"]?.arrayValue?.compactMap(\.stringValue)
        targetModulesRegex = j["target_modules"]?.stringValue
        var ranks: [(String, Int)] = []
        for (k, v) in j["rank_pattern"]?.objectValue ?? [] {
            guard let n = v.intValue, n > 0 else { throw FormatsError.invalidJSON(file: source, reason: "rank_pattern[\"\(k)\"] is not a positive integer") }
            ranks.append((k, n))
        }
        rankPattern = ranks
        var alphas: [(String, Double)] = []
        for (k, v) in j["alpha_pattern"]?.objectValue ?? [] {
            guard let a = v.doubleValue else { throw FormatsError.invalidJSON(file: source, reason: "alpha_pattern[\"\(k)\"] is not a number") }
            alphas.append((k, a))
        }
        alphaPattern = alphas
        if let one = j["layers_to_transform"]?.intValue { layersToTransform = [one] }
        else { layersToTransform = j["layers_to_transform"]?.arrayValue?.compactMap(\.intValue) }
        baseModelNameOrPath = j["base_model_name_or_path"]?.stringValue
        raw = j
    }

    /// PEFT's `get_pattern_key`: the first pattern key equal to `module` or to a dotted suffix of it.
    static func patternKey<T>(_ patterns: [(String, T)], _ module: String) -> T? {
        patterns.first { module == $0.0 || module.hasSuffix("." + $0.0) }?.1
    }

    /// Rank of `module` (e.g. "model.layers.3.mlp.down_proj").
    public func rank(for module: String) -> Int { Self.patternKey(rankPattern, module) ?? r }
    /// Alpha of `module`.
    public func alpha(for module: String) -> Double { Self.patternKey(alphaPattern, module) ?? loraAlpha }
    /// Scale s of ΔW = s·B·A for `module`: alpha/r, or alpha/√r with rsLoRA.
    public func scale(for module: String) -> Double {
        let rk = Double(rank(for: module)), a = alpha(for: module)
        return useRSLoRA ? a / rk.squareRoot() : a / rk
    }

    /// The JSON document to write (the parsed original, or the one built by the memberwise init).
    public var jsonData: Data { Data((raw.serialized(indent: 2) + "\n").utf8) }
}

/// One LoRA-adapted linear layer: ΔW = scale · B · A with A `[r, in]`, B `[out, r]` (PEFT
/// orientation; ΔW is `[out, in]` like the base weight, y = x·Wᵀ). With `fan_in_fan_out` the base
/// weight is stored transposed and the update applies as (B·A)ᵀ.
public struct LoRAModule: Sendable, Equatable {
    /// Module path without PEFT's prefix, e.g. "model.layers.0.self_attn.q_proj".
    public var name: String
    /// 0-based layer parsed from `layers.N.` (nil if none).
    public var layer: Int? { LoRAModule.layerIndex(name) }
    /// A `[r, in]`.
    public var a: Tensor
    /// B `[out, r]`.
    public var b: Tensor
    /// s of ΔW = s·B·A.
    public var scale: Float

    public init(name: String, a: Tensor, b: Tensor, scale: Float) {
        self.name = name; self.a = a; self.b = b; self.scale = scale
    }

    /// Rank r.
    public var rank: Int { a.shape[0] }

    /// ΔW = s·B·A, `[out, in]`.
    public var delta: Tensor { matmul(b, a, alpha: scale) }

    static func layerIndex(_ name: String) -> Int? {
        guard let r = name.range(of: "layers.") else { return nil }
        return Int(name[r.upperBound...].prefix { $0.isNumber })
    }
}

/// A PEFT LoRA adapter folder: `adapter_config.json` plus `adapter_model.safetensors` (or the
/// legacy `adapter_model.bin`, read with `TorchPickleReader`, which executes nothing). Tensor names
/// are `base_model.model.<module>.lora_A.weight` / `.lora_B.weight`.
public struct PEFTAdapter: Sendable {
    public var config: PEFTAdapterConfig
    /// Adapted modules in name order.
    public var modules: [LoRAModule]

    public init(config: PEFTAdapterConfig, modules: [LoRAModule]) {
        self.config = config
        self.modules = modules
    }

    /// PEFT's prefix in saved tensor names.
    public static let prefix = "base_model.model."

    /// Loads an adapter folder.
    /// - Throws: `FormatsError` (missing files, an A without its B, shapes that disagree with the
    ///   config's rank), `SafetensorsError`, `PickleError`.
    public static func load(directory: String) throws -> PEFTAdapter {
        let configPath = directory + "/adapter_config.json"
        guard let data = FileManager.default.contents(atPath: configPath) else {
            throw FormatsError.missingFile(path: configPath, reason: "a PEFT adapter folder needs adapter_config.json")
        }
        let config = try PEFTAdapterConfig(json: data, source: configPath)
        let st = directory + "/adapter_model.safetensors", bin = directory + "/adapter_model.bin"
        var tensors: [String: Tensor] = [:]
        var source = st
        if FileManager.default.fileExists(atPath: st) {
            let f = try SafetensorsFile(path: st)
            for n in f.tensorNames { tensors[n] = try f.tensor(named: n) }
        } else if FileManager.default.fileExists(atPath: bin) {
            source = bin
            tensors = try TorchPickleReader.load(path: bin)
        } else {
            throw FormatsError.missingFile(path: st, reason: "neither adapter_model.safetensors nor adapter_model.bin exists")
        }
        var modules: [LoRAModule] = []
        for name in tensors.keys.sorted() where name.hasSuffix(".lora_A.weight") {
            let module = String(name.dropLast(".lora_A.weight".count))
            guard let a = tensors[name], let b = tensors[module + ".lora_B.weight"] else {
                throw FormatsError.missingTensor(file: source, tensor: module + ".lora_B.weight")
            }
            let short = module.hasPrefix(prefix) ? String(module.dropFirst(prefix.count)) : module
            guard a.rank == 2, b.rank == 2, a.shape[0] == b.shape[1] else {
                throw FormatsError.invalidShape(file: source, tensor: name, shape: a.shape.dims, reason: "A \(a.shape) and B \(b.shape) do not form B·A")
            }
            let r = config.rank(for: short)
            guard a.shape[0] == r else {
                throw FormatsError.invalidShape(file: source, tensor: name, shape: a.shape.dims, reason: "rank \(a.shape[0]) but the config gives \(r)")
            }
            modules.append(LoRAModule(name: short, a: a, b: b, scale: Float(config.scale(for: short))))
        }
        for name in tensors.keys where name.hasSuffix(".lora_B.weight") {
            let module = String(name.dropLast(".lora_B.weight".count))
            guard tensors[module + ".lora_A.weight"] != nil else { throw FormatsError.missingTensor(file: source, tensor: module + ".lora_A.weight") }
        }
        return PEFTAdapter(config: config, modules: modules)
    }

    /// Writes `adapter_config.json` and `adapter_model.safetensors` (F32, `{"format": "pt"}`).
    /// Without `force`, neither file is written when either exists.
    public func write(to directory: String, force: Bool = false) throws {
        if !force {
            for f in ["adapter_model.safetensors", "adapter_config.json"] where FileManager.default.fileExists(atPath: directory + "/" + f) {
                throw FormatsError.outputExists(path: directory + "/" + f)
            }
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        var records: [TensorRecord] = []
        for m in modules {
            records.append(SafetensorsWriter.record(Self.prefix + m.name + ".lora_A.weight", m.a))
            records.append(SafetensorsWriter.record(Self.prefix + m.name + ".lora_B.weight", m.b))
        }
        records.sort { $0.name < $1.name }
        try SafetensorsWriter.write(records, metadata: ["format": "pt"], to: directory + "/adapter_model.safetensors", force: force)
        let c = try AtomicFileWriter(path: directory + "/adapter_config.json", force: force)
        try c.write([UInt8](config.jsonData))
        try c.commit()
    }
}
