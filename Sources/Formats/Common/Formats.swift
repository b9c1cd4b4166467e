/// Formats: safetensors, GGUF, Llama tensor-name mapping, PEFT LoRA adapters, steering-adapter
/// and control-vector files. Depends only on Tensors; knows nothing of the runtime.
public enum FormatsModule {
    /// Format version written into steertool's own files.
    public static let steertoolFormatVersion = 1
}
