import Foundation
import Tensors

/// steertool's post-block steering adapter file: safetensors with, per adapted 0-based layer N,
/// `layers.N.down` D `[d, r]`, `layers.N.up` U `[d, r]` and `layers.N.bias` b `[d]`
/// (Δh = U·φ(Dᵀh) + b; the fixed-vector kind has the bias only), and `__metadata__` keys
/// `format` ("steertool-steering"), `format_version`, `site`, `kind`, `activation`, `rank`,
/// `layers` (JSON array), `base_model` (fingerprint), `source`, `report` (JSON), and the model it
/// was made for (`ModelSignature`: `model_architecture`, `model_hidden_size`, `model_layers`;
/// absent in files written before them), and `positions` ("last" for an adapter that shifts the
/// last prompt token only; absent means every position). A file whose adapter shifts every
/// position is written as format version 1, one with `positions` as version 2, so that a reader
/// that predates `positions` refuses it instead of steering every token. Plain tensors and
/// strings here; Runtime turns them into its `SteeringAdapter`.
public struct SteeringAdapterFile: Sendable {
    /// One layer's tensors.
    public struct Layer: Sendable, Equatable {
        /// 0-based layer index.
        public var index: Int
        /// D `[d, r]` (nil for the fixed-vector kind).
        public var down: Tensor?
        /// U `[d, r]` (nil for the fixed-vector kind).
        public var up: Tensor?
        /// b `[d]`.
        public var bias: Tensor?

        public init(index: Int, down: Tensor? = nil, up: Tensor? = nil, bias: Tensor? = nil) {
            self.index = index; self.down = down; self.up = up; self.bias = bias
        }
    }

    /// Value of the `format` metadata key.
    public static let formatName = "steertool-steering"
    /// The newest `format_version` read (2: `positions` other than every position).
    public static let newestFormatVersion = 2
    /// `positions` of an adapter that shifts every position (the key is then left out).
    public static let allPositions = "all"

    /// Hook site kind, e.g. "blockOutput".
    public var site: String
    /// "vector", "linear" or "nonlinear" (free text the runtime interprets).
    public var kind: String
    /// φ: "identity" or "silu".
    public var activation: String
    /// Rank r (0 for the fixed-vector kind).
    public var rank: Int
    /// Fingerprint of the base model the adapter was fitted on.
    public var baseModel: String
    /// Where the weight delta came from (a path, a description).
    public var source: String
    /// Fit report (free JSON).
    public var report: JSONValue
    /// Layers in ascending index order.
    public var layers: [Layer]
    /// Format version read from the file (`write` records `writtenVersion`).
    public var formatVersion: Int
    /// The model the adapter was made for (nil: not recorded).
    public var modelSignature: ModelSignature?
    /// The positions shifted: "all" or "last" (free text the runtime interprets).
    public var positions: String

    public init(site: String = "blockOutput", kind: String, activation: String = "identity", rank: Int, baseModel: String,
                source: String, report: JSONValue = .object([]), layers: [Layer], modelSignature: ModelSignature? = nil,
                positions: String = allPositions) {
        self.site = site; self.kind = kind; self.activation = activation; self.rank = rank
        self.baseModel = baseModel; self.source = source; self.report = report
        self.modelSignature = modelSignature; self.positions = positions
        self.layers = layers.sorted { $0.index < $1.index }
        formatVersion = positions == Self.allPositions ? FormatsModule.steertoolFormatVersion : Self.newestFormatVersion
    }

    /// The `format_version` `write` records: 1, or 2 when `positions` is not every position.
    public var writtenVersion: Int {
        positions == Self.allPositions ? FormatsModule.steertoolFormatVersion : Self.newestFormatVersion
    }

    /// Reads and validates a steering file (shapes agree across layers: D and U `[d, r]`, b `[d]`).
    /// - Throws: `FormatsError.invalidModel` / `.invalidShape`, `SafetensorsError`.
    public static func load(path: String) throws -> SteeringAdapterFile {
        let f = try SafetensorsFile(path: path)
        let m = f.metadata
        guard m["format"] == formatName else { throw FormatsError.invalidModel(file: path, reason: "not a steertool steering file (format is \(m["format"] ?? "missing"))") }
        guard let version = m["format_version"].flatMap(Int.init), version >= 1, version <= newestFormatVersion else {
            throw FormatsError.invalidModel(file: path, reason: "unsupported format_version \(m["format_version"] ?? "missing")")
        }
        var byLayer: [Int: Layer] = [:]
        for name in f.tensorNames {
            let parts = name.split(separator: ".")
            guard parts.count == 3, parts[0] == "layers", let l = Int(parts[1]), l >= 0, String(l) == parts[1] else {
                throw FormatsError.invalidModel(file: path, reason: "unexpected tensor '\(name)' (expected layers.N.down/up/bias)")
            }
            var layer = byLayer[l] ?? Layer(index: l)
            let t = try f.tensor(named: name)
            switch parts[2] {
            case "down": layer.down = t
            case "up": layer.up = t
            case "bias": layer.bias = t
            default: throw FormatsError.invalidModel(file: path, reason: "unexpected tensor '\(name)'")
            }
            byLayer[l] = layer
        }
        var d: Int?
        for layer in byLayer.values {
            guard (layer.down == nil) == (layer.up == nil) else { throw FormatsError.missingTensor(file: path, tensor: "layers.\(layer.index).\(layer.down == nil ? "down" : "up")") }
            for (part, t) in [("down", layer.down), ("up", layer.up)] {
                guard let t else { continue }
                guard t.rank == 2, t.shape[0] == (d ?? t.shape[0]), t.shape[1] == layer.down?.shape[1] else {
                    throw FormatsError.invalidShape(file: path, tensor: "layers.\(layer.index).\(part)", shape: t.shape.dims, reason: "expected [d, r] consistent across layers")
                }
                d = t.shape[0]
            }
            if let b = layer.bias {
                guard b.rank == 1, b.shape[0] == (d ?? b.shape[0]) else {
                    throw FormatsError.invalidShape(file: path, tensor: "layers.\(layer.index).bias", shape: b.shape.dims, reason: "expected [d]")
                }
                d = b.shape[0]
            }
        }
        let report: JSONValue = m["report"].flatMap { try? JSONParser.parse(Array($0.utf8)) } ?? .object([])
        var out = SteeringAdapterFile(site: m["site"] ?? "blockOutput", kind: m["kind"] ?? "linear", activation: m["activation"] ?? "identity",
                                      rank: m["rank"].flatMap(Int.init) ?? (byLayer.values.first?.down?.shape[1] ?? 0),
                                      baseModel: m["base_model"] ?? "", source: m["source"] ?? "", report: report,
                                      layers: Array(byLayer.values), modelSignature: try ModelSignature.read(m, file: path),
                                      positions: m["positions"] ?? allPositions)
        if let sig = out.modelSignature, let d, d != sig.hiddenSize {
            throw FormatsError.invalidModel(file: path, reason: "its tensors are \(d) wide but it records \(sig)")
        }
        out.formatVersion = version
        return out
    }

    /// Writes the file (F32 tensors, layer by layer).
    public func write(to path: String, force: Bool = false) throws {
        var records: [TensorRecord] = []
        for l in layers.sorted(by: { $0.index < $1.index }) {
            if let t = l.down { records.append(SafetensorsWriter.record("layers.\(l.index).down", t)) }
            if let t = l.up { records.append(SafetensorsWriter.record("layers.\(l.index).up", t)) }
            if let t = l.bias { records.append(SafetensorsWriter.record("layers.\(l.index).bias", t)) }
        }
        var metadata: OrderedDictionary<String, String> = [
            "format": Self.formatName, "format_version": String(writtenVersion),
            "site": site, "kind": kind, "activation": activation, "rank": String(rank),
            "layers": JSONValue.array(layers.map { .int($0.index) }).description,
            "base_model": baseModel, "source": source, "report": report.description,
        ]
        if positions != Self.allPositions { metadata["positions"] = positions }
        for (k, v) in modelSignature?.metadata ?? [] { metadata[k] = v }
        try SafetensorsWriter.write(records, metadata: metadata, to: path, force: force)
    }
}
