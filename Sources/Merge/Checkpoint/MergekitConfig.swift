import Yams

/// A mergekit parameter value: a scalar, a gradient (list of numbers interpolated over the layer
/// position t ∈ [0, 1]), or a list of conditions `{filter, value}` where the first whose filter is
/// absent, `*`, or a substring of the tensor name applies (mergekit `evaluate_setting`).
public indirect enum MergekitParameter: Sendable, Equatable {
    case number(Double)
    case bool(Bool)
    case gradient([Double])
    case conditional([(filter: String?, value: MergekitParameter)])

    public static func == (l: MergekitParameter, r: MergekitParameter) -> Bool {
        switch (l, r) {
        case let (.number(a), .number(b)): return a == b
        case let (.bool(a), .bool(b)): return a == b
        case let (.gradient(a), .gradient(b)): return a == b
        case let (.conditional(a), .conditional(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.filter == $1.filter && $0.value == $1.value }
        default: return false
        }
    }

    /// The numeric value for a tensor at layer position `t`: gradients interpolate linearly
    /// between neighbouring entries at t·(n−1); booleans count as 0/1; nil when no condition
    /// matches.
    public func number(tensor: String, t: Double) -> Double? {
        switch self {
        case let .number(x): return x
        case let .bool(b): return b ? 1 : 0
        case let .gradient(v):
            guard !v.isEmpty else { return nil }
            let scaled = t * Double(v.count - 1)
            let i0 = Int(scaled)
            let i1 = min(v.count - 1, i0 + 1)
            let frac = scaled - Double(i0)
            return (1 - frac) * v[i0] + frac * v[i1]
        case let .conditional(conds):
            for c in conds where c.filter == nil || c.filter == "*" || tensor.contains(c.filter!) {
                return c.value.number(tensor: tensor, t: t)
            }
            return nil
        }
    }

    /// The boolean value (numbers: non-zero is true; gradients select the entry at ⌊t·(n−1)⌋).
    public func bool(tensor: String, t: Double) -> Bool? {
        switch self {
        case let .bool(b): return b
        case let .number(x): return x != 0
        case let .gradient(v): return v.isEmpty ? nil : v[Int(t * Double(v.count - 1))] != 0
        case let .conditional(conds):
            for c in conds where c.filter == nil || c.filter == "*" || tensor.contains(c.filter!) {
                return c.value.bool(tensor: tensor, t: t)
            }
            return nil
        }
    }
}

/// One `models:` entry: a model reference (a path, as written) and its parameters.
public struct MergekitModelEntry: Sendable, Equatable {
    /// The model reference (a path, relative to the config's folder or absolute).
    public var model: String
    /// Parameters (per model, or top-level shared ones).
    public var parameters: [String: MergekitParameter]
}

/// A mergekit YAML merge configuration, restricted to what steertool implements: `merge_method`
/// (linear, task_arithmetic, ties, dare_ties, dare_linear, slerp), `base_model`, `models:` with
/// per-model `parameters` (weight, density), top-level `parameters` (weight, density, normalize,
/// lambda, rescale, t, int8_mask) and `dtype`/`out_dtype`. Anything else (slices, modules,
/// tokenizer options, unknown keys, unknown methods) is an error that names it.
///
/// `int8_mask` is accepted and ignored: in mergekit it only changes the dtype the sign mask is
/// held in, never a value.
public struct MergekitConfig: Sendable, Equatable {
    /// The `merge_method` values steertool implements.
    public static let methods = ["linear", "task_arithmetic", "ties", "dare_ties", "dare_linear", "slerp"]
    static let topLevelKeys: Set<String> = ["merge_method", "base_model", "models", "parameters", "dtype", "out_dtype"]
    static let modelKeys: Set<String> = ["model", "parameters"]
    static let parameterKeys: [String: Set<String>] = [
        "linear": ["weight", "normalize"],
        "task_arithmetic": ["weight", "density", "normalize", "lambda", "rescale", "int8_mask"],
        "ties": ["weight", "density", "normalize", "lambda", "rescale", "int8_mask"],
        "dare_ties": ["weight", "density", "normalize", "lambda", "rescale", "int8_mask"],
        "dare_linear": ["weight", "density", "normalize", "lambda", "rescale", "int8_mask"],
        "slerp": ["t"],
    ]

    /// `merge_method`.
    public var mergeMethod: String
    /// `base_model`, required by every method but `linear`.
    public var baseModel: String?
    /// `models:` in order.
    public var models: [MergekitModelEntry]
    /// Parameters (per model, or top-level shared ones).
    public var parameters: [String: MergekitParameter]
    /// `dtype` as written (float32, float16, bfloat16), or nil.
    public var dtype: String?
    /// `out_dtype` as written, or nil (then `dtype` applies to the output).
    public var outDtype: String?

    /// Parses and validates a config. Throws `MergeError.invalidConfig` / `.unknownMethod` naming
    /// the offending key or value.
    public init(yaml: String) throws {
        let root: Node?
        do { root = try Yams.compose(yaml: yaml) } catch {
            throw MergeError.invalidConfig("not valid YAML: \(error)")
        }
        guard let map = root?.mapping else { throw MergeError.invalidConfig("the document is not a mapping") }
        var method: String?
        var base: String?
        var models: [MergekitModelEntry] = []
        var params: [String: MergekitParameter] = [:]
        var dtype: String?, outDtype: String?
        for (k, v) in map {
            guard let key = k.string else { throw MergeError.invalidConfig("a key is not a string") }
            switch key {
            case "merge_method": method = v.string
            case "base_model": base = v.string
            case "dtype": dtype = v.string
            case "out_dtype": outDtype = v.string
            case "parameters": params = try Self.parseParameters(v, context: "parameters")
            case "models":
                guard let seq = v.sequence else { throw MergeError.invalidConfig("'models' must be a list") }
                for (i, item) in seq.enumerated() {
                    guard let m = item.mapping else { throw MergeError.invalidConfig("models[\(i)] must be a mapping") }
                    var name: String?
                    var p: [String: MergekitParameter] = [:]
                    for (mk, mv) in m {
                        switch mk.string ?? "" {
                        case "model": name = mv.string
                        case "parameters": p = try Self.parseParameters(mv, context: "models[\(i)].parameters")
                        default: throw MergeError.invalidConfig("unknown key 'models[\(i)].\(mk.string ?? "?")' (steertool supports model, parameters)")
                        }
                    }
                    guard let name, !name.isEmpty else { throw MergeError.invalidConfig("models[\(i)] has no 'model'") }
                    models.append(MergekitModelEntry(model: name, parameters: p))
                }
            default:
                let supported = Self.topLevelKeys.sorted().joined(separator: ", ")
                throw MergeError.invalidConfig("unknown or unsupported key '\(key)' (steertool supports \(supported))")
            }
        }
        guard let method else { throw MergeError.invalidConfig("'merge_method' is missing") }
        guard let allowed = Self.parameterKeys[method] else { throw MergeError.unknownMethod(method) }
        guard !models.isEmpty else { throw MergeError.invalidConfig("'models' is missing or empty") }
        for k in params.keys where !allowed.contains(k) {
            throw MergeError.invalidConfig("unknown parameter '\(k)' for \(method) (allowed: \(allowed.sorted().joined(separator: ", ")))")
        }
        for m in models {
            for k in m.parameters.keys where !allowed.contains(k) {
                throw MergeError.invalidConfig("unknown parameter '\(k)' of model '\(m.model)' for \(method)")
            }
        }
        for d in [dtype, outDtype].compactMap({ $0 }) where !["float32", "float16", "bfloat16", "fp32", "fp16", "bf16"].contains(d) {
            throw MergeError.invalidConfig("unsupported dtype '\(d)' (float32, float16, bfloat16)")
        }
        if method != "linear" && base == nil {
            throw MergeError.invalidConfig("\(method) needs 'base_model'")
        }
        if method == "slerp" {
            let others = models.filter { $0.model != base }
            guard others.count == 1 else {
                throw MergeError.invalidConfig("slerp needs the base model and exactly one other model, got \(others.count) others")
            }
        }
        self.mergeMethod = method; self.baseModel = base; self.models = models
        self.parameters = params; self.dtype = dtype; self.outDtype = outDtype
    }

    static func parseParameters(_ node: Node, context: String) throws -> [String: MergekitParameter] {
        guard let m = node.mapping else { throw MergeError.invalidConfig("'\(context)' must be a mapping") }
        var out: [String: MergekitParameter] = [:]
        for (k, v) in m {
            guard let key = k.string else { throw MergeError.invalidConfig("a key of '\(context)' is not a string") }
            out[key] = try parseValue(v, context: "\(context).\(key)")
        }
        return out
    }

    static func parseScalar(_ node: Node, context: String) throws -> MergekitParameter {
        if let s = node.string, s == "true" || s == "false" || s == "True" || s == "False" {
            return .bool(s.lowercased() == "true")
        }
        if let x = node.float { return .number(x) }
        throw MergeError.invalidConfig("'\(context)' must be a number or boolean, got '\(node.string ?? "?")'")
    }

    static func parseValue(_ node: Node, context: String) throws -> MergekitParameter {
        if node.scalar != nil { return try parseScalar(node, context: context) }
        guard let seq = node.sequence else { throw MergeError.invalidConfig("'\(context)' must be a value, list or conditions") }
        if seq.allSatisfy({ $0.scalar != nil }) {
            var xs: [Double] = []
            for (i, e) in seq.enumerated() {
                guard case let .number(x) = try parseScalar(e, context: "\(context)[\(i)]") else {
                    throw MergeError.invalidConfig("'\(context)[\(i)]' must be a number")
                }
                xs.append(x)
            }
            return .gradient(xs)
        }
        var conds: [(filter: String?, value: MergekitParameter)] = []
        for (i, e) in seq.enumerated() {
            guard let m = e.mapping else { throw MergeError.invalidConfig("'\(context)[\(i)]' must be {filter, value}") }
            var filter: String?
            var value: MergekitParameter?
            for (ck, cv) in m {
                switch ck.string ?? "" {
                case "filter": filter = cv.string
                case "value": value = try parseValue(cv, context: "\(context)[\(i)].value")
                default: throw MergeError.invalidConfig("unknown key '\(context)[\(i)].\(ck.string ?? "?")' (filter, value)")
                }
            }
            guard let value else { throw MergeError.invalidConfig("'\(context)[\(i)]' has no value") }
            conds.append((filter, value))
        }
        return .conditional(conds)
    }
}
