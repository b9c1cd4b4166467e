import Formats
import Foundation
import Tensors

/// The parts of a PEFT `adapter_config.json` (LoRA) that decide ΔW: r, lora_alpha, use_rslora,
/// fan_in_fan_out, rank_pattern, alpha_pattern, layers_to_transform, target_modules.
///
/// Patterns follow PEFT's `get_pattern_key`: the first key (in the file's order) for which the
/// module name matches the regex `(.*\.)?(key)$` from its start wins; module names are the base
/// model's (`model.layers.1.self_attn.q_proj`, without PEFT's `base_model.model.` prefix).
public struct PEFTLoRAConfig: Sendable, Equatable {
    /// Default rank r.
    public var r: Int
    /// Default lora_alpha.
    public var loraAlpha: Double
    /// rsLoRA: s = alpha/√r instead of alpha/r.
    public var useRSLoRA: Bool
    /// Base weights stored `[in, out]` (GPT-2 Conv1D).
    public var fanInFanOut: Bool
    /// (pattern, rank) in the file's order.
    public var rankPattern: [PatternEntry]
    /// (pattern, alpha) in the file's order.
    public var alphaPattern: [PatternEntry]
    /// Layers the adapter was restricted to (0-based), or nil for all.
    public var layersToTransform: [Int]?
    /// `target_modules` as a list (a regex string is kept as one entry).
    public var targetModules: [String]

    /// One pattern key and its value.
    public struct PatternEntry: Sendable, Equatable {
        /// The key: a regex PEFT matches against a dotted suffix of the module name.
        public var pattern: String
        /// The rank or alpha it sets.
        public var value: Double
        /// Creates an entry.
        public init(pattern: String, value: Double) { self.pattern = pattern; self.value = value }
    }

    /// Creates a config from its parts (PEFT's defaults for the rest).
    public init(r: Int, loraAlpha: Double, useRSLoRA: Bool = false, fanInFanOut: Bool = false,
                rankPattern: [PatternEntry] = [], alphaPattern: [PatternEntry] = [],
                layersToTransform: [Int]? = nil, targetModules: [String] = []) {
        self.r = r; self.loraAlpha = loraAlpha; self.useRSLoRA = useRSLoRA; self.fanInFanOut = fanInFanOut
        self.rankPattern = rankPattern; self.alphaPattern = alphaPattern
        self.layersToTransform = layersToTransform; self.targetModules = targetModules
    }

    /// Parses `adapter_config.json` bytes (Formats' order-keeping JSON parser, so pattern keys
    /// keep the file's order as PEFT's dicts do). Throws `MergeError.invalidConfig` naming the key
    /// when `peft_type` is not LORA, r is missing or not positive, or a pattern is malformed.
    public init(json data: Data, path: String = "adapter_config.json") throws {
        let root: JSONValue
        do { root = try JSONParser.parse([UInt8](data)) } catch {
            throw MergeError.invalidConfig("\(path): \(error)")
        }
        guard let pairs = root.objectValue else { throw MergeError.invalidConfig("\(path): not a JSON object") }
        var obj: [String: JSONValue] = [:]
        for (k, v) in pairs { obj[k] = v }
        if let t = obj["peft_type"]?.stringValue, t.uppercased() != "LORA" {
            throw MergeError.invalidConfig("\(path): peft_type '\(t)' is not LORA")
        }
        guard let r = obj["r"]?.intValue, r > 0 else {
            throw MergeError.invalidConfig("\(path): 'r' missing or not a positive integer")
        }
        let alpha = obj["lora_alpha"]?.doubleValue ?? 8  // PEFT's default lora_alpha
        func patterns(_ key: String) throws -> [PatternEntry] {
            guard let v = obj[key], !v.isNull else { return [] }
            guard let entries = v.objectValue else { throw MergeError.invalidConfig("\(path): '\(key)' is not an object") }
            return try entries.map { (k, x) in
                guard let n = x.doubleValue else { throw MergeError.invalidConfig("\(path): '\(key).\(k)' is not a number") }
                return PatternEntry(pattern: k, value: n)
            }
        }
        var layers: [Int]?
        if let l = obj["layers_to_transform"]?.arrayValue { layers = l.compactMap(\.intValue) }
        else if let l = obj["layers_to_transform"]?.intValue { layers = [l] }
        var targets: [String] = []
        if let t = obj["target_modules"]?.arrayValue { targets = t.compactMap(\.stringValue) }
        else if let t = obj["target_modules"]?.stringValue { targets = [t] }
        self.init(r: r, loraAlpha: alpha, useRSLoRA: obj["use_rslora"]?.boolValue ?? false,
                  fanInFanOut: obj["fan_in_fan_out"]?.boolValue ?? false,
                  rankPattern: try patterns("rank_pattern"), alphaPattern: try patterns("alpha_pattern"),
                  layersToTransform: layers, targetModules: targets)
    }

    /// PEFT `get_pattern_key`: the first pattern that matches the module name, or nil.
    public static func matchingPattern(_ entries: [PatternEntry], module: String) -> PatternEntry? {
        for e in entries {
            guard let re = try? NSRegularExpression(pattern: "^(.*\\.)?(\(e.pattern))$") else { continue }
            let range = NSRange(module.startIndex..., in: module)
            if re.firstMatch(in: module, options: [], range: range) != nil { return e }
        }
        return nil
    }

    /// The rank PEFT gives a module (rank_pattern, else r).
    public func rank(forModule module: String) -> Int {
        Self.matchingPattern(rankPattern, module: module).map { Int($0.value) } ?? r
    }

    /// The alpha PEFT gives a module (alpha_pattern, else lora_alpha).
    public func alpha(forModule module: String) -> Double {
        Self.matchingPattern(alphaPattern, module: module)?.value ?? loraAlpha
    }

    /// s = alpha/r, or alpha/√r with rsLoRA, for a module (base-model name, no `base_model.model.`).
    public func scaling(forModule module: String) -> Float {
        let r = Double(rank(forModule: module))
        let a = alpha(forModule: module)
        return Float(useRSLoRA ? a / r.squareRoot() : a / r)
    }
}
