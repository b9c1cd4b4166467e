import Foundation
import Formats
import Tensors

/// Import of post-block adapters trained with the paper authors' released code: a full-model
/// `pytorch_model.bin` (torch.save) holding, per 0-based decoder layer i,
/// `adapters.layer{i}_block.down.weight` `[r, d]` and `adapters.layer{i}_block.up.weight` `[d, r]`
/// (Δh = α·W_up·act(W_down·h), no bias, added to the layer's output). In steertool's convention
/// D = W_downᵀ `[d, r]`, U = α·W_up `[d, r]`, b = 0; the site is the block output. α and the
/// activation are training hyper-parameters the file does not hold (the authors' default: SiLU).
/// The file is read by Formats' restricted pickle reader, which executes nothing.
public enum AuthorsAdapterImport {
    /// Parses `…adapters.layer{i}_block.{down|up}.weight` (any prefix) into (layer, part).
    public static func parse(_ name: String) -> (layer: Int, part: String)? {
        guard let r = name.range(of: "adapters.layer") else { return nil }
        let rest = name[r.upperBound...]
        let digits = rest.prefix { $0.isNumber }
        guard !digits.isEmpty, let layer = Int(digits) else { return nil }
        let tail = rest.dropFirst(digits.count)
        for part in ["down", "up"] where tail == "_block.\(part).weight" { return (layer, part) }
        return nil
    }

    /// Converts a state dict. Throws `SteeringAdapterError` when no adapter tensors are present, a layer
    /// has only one of down/up, shapes do not pair ([r, d] and [d, r]), widths differ across
    /// layers, or a bias tensor is present (the authors' adapter has none).
    public static func adapter(from tensors: [String: Tensor], alpha: Float, activation: SteeringActivation,
                               source: String = "pytorch_model.bin") throws -> SteeringAdapter {
        var downs: [Int: Tensor] = [:], ups: [Int: Tensor] = [:]
        for (name, t) in tensors {
            if name.contains("adapters.layer") && name.hasSuffix(".bias") {
                throw SteeringAdapterError.unsupported("\(source): '\(name)' is a bias; the authors' adapter has none")
            }
            guard let (l, part) = parse(name) else { continue }
            guard t.rank == 2 else { throw SteeringAdapterError.shapeMismatch(tensor: name, expected: [-1, -1], found: t.shape.dims) }
            if part == "down" { downs[l] = t } else { ups[l] = t }
        }
        guard !downs.isEmpty || !ups.isEmpty else {
            throw SteeringAdapterError.missingTensor(name: "adapters.layer{i}_block.down.weight", source: source)
        }
        var layers: [Int: SteeringLayer] = [:]
        var width: Int?
        for l in Set(downs.keys).union(ups.keys).sorted() {
            guard let down = downs[l], let up = ups[l] else {
                throw SteeringAdapterError.missingTensor(name: "adapters.layer\(l)_block.\(downs[l] == nil ? "down" : "up").weight", source: source)
            }
            guard up.rows == down.columns, up.columns == down.rows else {
                throw SteeringAdapterError.shapeMismatch(tensor: "adapters.layer\(l)_block.up.weight", expected: [down.columns, down.rows], found: up.shape.dims)
            }
            if let width, width != down.columns {
                throw SteeringAdapterError.shapeMismatch(tensor: "adapters.layer\(l)_block.down.weight", expected: [down.rows, width], found: down.shape.dims)
            }
            width = down.columns
            layers[l] = SteeringLayer(down: down.transposed(), up: alpha * up)
        }
        return SteeringAdapter(site: .blockOutput, activation: activation, layers: layers, scale: 1)
    }

    /// Reads the authors' `pytorch_model.bin` and converts it (see `adapter(from:…)`).
    public static func load(path: String, alpha: Float, activation: SteeringActivation = .silu) throws -> SteeringAdapter {
        try adapter(from: try TorchPickleReader.load(path: path), alpha: alpha, activation: activation, source: path)
    }
}
