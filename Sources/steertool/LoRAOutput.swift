import Formats
import Merge
import Runtime

extension LoRAWeights {
    /// The LoRA as PEFT modules (module path → factors and scaling), for `PEFTAdapterFolder.write`.
    var peftModules: [String: LoRAUpdate] {
        var modules: [String: LoRAUpdate] = [:]
        for (l, ps) in layers { for (p, f) in ps { modules[p.modulePath(layer: l)] = LoRAUpdate(a: f.a, b: f.b, scaling: f.scale) } }
        return modules
    }
}

/// Writes a joint bundle: `steering` and `lora` as a PEFT folder (`alpha`: see
/// `PEFTAdapterFolder.write`), with the manifest's `details`.
func writeJointBundle(to path: String, steering: SteeringAdapterFile, lora: LoRAWeights, baseModel: String, alpha: Float? = nil,
                      details: [String: String], force: Bool) throws {
    try JointAdapterBundle.write(to: path, force: force, details: details, steering: steering) {
        try PEFTAdapterFolder.write(lora.peftModules, to: $0, baseModel: baseModel, alpha: alpha)
    }
}
