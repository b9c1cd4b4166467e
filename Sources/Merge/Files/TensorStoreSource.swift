import Formats
import Tensors

/// Formats' stores (a safetensors file, an HF checkpoint folder, a GGUF) are tensor sources of
/// merges: names in file order, tensors decoded to Float32 one at a time.
extension Checkpoint: TensorSource {
    public func doneReading(_ name: String) { releasePages(named: name) }
}
extension SafetensorsFile: TensorSource {
    public func doneReading(_ name: String) { releasePages(named: name) }
}
