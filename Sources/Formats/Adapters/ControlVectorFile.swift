import Foundation
import Tensors

/// A llama.cpp control vector: GGUF with `general.architecture = "controlvector"`,
/// `controlvector.model_hint`, `controlvector.layer_count`, and 1-D F32 tensors `direction.<il>`.
///
/// Layer convention, from llama.cpp's own code: `common_control_vector_load_one` (common.cpp)
/// rejects `direction.0` ("invalid (zero) direction tensor layer index") and stores
/// `direction.k` at offset `n_embd·(k−1)`; `llama_adapter_cvec::apply` (llama-adapter.cpp) copies
/// offset `n_embd·(il−1)` into `tensors[il]` for `il = 1 ..< n_layer`; and the graph adds
/// `tensors[il]` to the output of block `il` (0-based) after its MLP residual add (`build_cvec`).
/// So `direction.k` is a post-block shift of steertool's 0-based layer k, and layer 0 cannot be
/// steered through a control vector. The loader ignores the metadata keys.
public struct ControlVectorFile: Sendable {
    /// Architecture string of control-vector files.
    public static let architecture = "controlvector"

    /// `controlvector.model_hint` (the base architecture, e.g. "llama").
    public var modelHint: String
    /// Direction vectors `[d]` keyed by 0-based layer (≥ 1, see the type's documentation).
    public var directions: [Int: [Float]]
    /// `controlvector.layer_count` as stored (llama.cpp's generator writes the number of directions).
    public var layerCount: Int

    public init(modelHint: String = "llama", directions: [Int: [Float]], layerCount: Int? = nil) {
        self.modelHint = modelHint
        self.directions = directions
        self.layerCount = layerCount ?? directions.count
    }

    /// Reads a control vector with llama.cpp's checks (names `direction.k`, k ≥ 1; F32; 1-D; equal lengths).
    public static func load(path: String) throws -> ControlVectorFile {
        let g = try GGUFFile(path: path)
        var dirs: [Int: [Float]] = [:]
        var d: Int?
        for name in g.tensorNames {
            guard name.hasPrefix("direction."), let k = Int(name.dropFirst("direction.".count)), k >= 0 else {
                throw FormatsError.invalidModel(file: path, reason: "tensor '\(name)' is not direction.<layer>")
            }
            guard k != 0 else { throw FormatsError.invalidModel(file: path, reason: "direction.0 is invalid (llama.cpp never steers layer 0)") }
            guard let info = g.info(name), info.storage == .ggml(.f32), info.shape.rank == 1 else {
                throw FormatsError.invalidModel(file: path, reason: "'\(name)' must be a 1-D F32 tensor")
            }
            guard info.shape[0] == (d ?? info.shape[0]) else {
                throw FormatsError.invalidShape(file: path, tensor: name, shape: info.shape.dims, reason: "length differs from the other directions")
            }
            d = info.shape[0]
            let v = try g.tensor(named: name).scalars
            if let old = dirs[k] { dirs[k] = zip(old, v).map(+) } else { dirs[k] = v }  // duplicates are summed, as llama.cpp does
        }
        return ControlVectorFile(modelHint: g.metadata["controlvector.model_hint"]?.stringValue ?? "",
                                 directions: dirs, layerCount: g.metadata["controlvector.layer_count"]?.intValue ?? dirs.count)
    }

    /// Writes the file as llama.cpp's cvector-generator does (directions in ascending layer order).
    /// - Throws: `FormatsError.invalidModel` for a direction at layer 0 or of unequal length.
    public func write(to path: String, force: Bool = false) throws {
        let d = directions.values.first?.count ?? 0
        for (k, v) in directions {
            guard k >= 1 else { throw FormatsError.invalidModel(file: path, reason: "llama.cpp cannot apply a direction to layer \(k)") }
            guard v.count == d else { throw FormatsError.invalidShape(file: path, tensor: "direction.\(k)", shape: [v.count], reason: "length differs") }
        }
        let md: OrderedDictionary<String, GGUFValue> = [
            "general.architecture": .string(Self.architecture),
            "controlvector.model_hint": .string(modelHint),
            "controlvector.layer_count": .int32(Int32(clamping: layerCount)),
        ]
        try GGUFWriter.write(metadata: md, tensors: directions.keys.sorted().map { k in
            GGUFWriter.record("direction.\(k)", Tensor(vector: directions[k] ?? []), as: .f32)
        }, to: path, force: force)
    }
}
