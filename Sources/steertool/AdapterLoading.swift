import Foundation
import Formats
import Runtime

/// Reads adapter files for the CLI and adds them to a model (applied unmerged).
/// - a folder with `joint.json`: joint bundle (its LoRA and its steering adapter together);
/// - a folder with `adapter_config.json`: PEFT LoRA;
/// - a `.gguf` file: llama.cpp control vector (post-block, direction.k → block k);
/// - any other file: steertool steering adapter (safetensors).
/// A trailing `:<scale>` (e.g. `vec.safetensors:0.5`) scales steering adapters and control vectors.
enum AdapterLoading {
    static func apply(path spec: String, to model: inout LlamaModel) throws {
        var path = spec
        var scale: Float = 1
        if let colon = spec.lastIndex(of: ":"), let s = Float(spec[spec.index(after: colon)...]),
           !FileManager.default.fileExists(atPath: spec) {
            path = String(spec[..<colon])
            scale = s
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw FormatsError.missingFile(path: path, reason: "adapter not found")
        }
        if isDir.boolValue && JointAdapterBundle.isBundle(path) {
            try model.addJointBundle(path: path, scale: scale)
        } else if isDir.boolValue {
            guard scale == 1 else {
                throw RuntimeError.invalidArgument("\(spec): a scale applies to steering adapters and control vectors, not LoRA")
            }
            try model.add(LoRAWeights.load(directory: path))
        } else if path.lowercased().hasSuffix(".gguf") {
            try model.add(SteeringAdapter(controlVector: ControlVectorFile.load(path: path), scale: scale), name: path)
        } else {
            try model.add(SteeringAdapter.load(path: path, scale: scale), name: path)
        }
    }
}
