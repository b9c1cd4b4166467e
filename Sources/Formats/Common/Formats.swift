/// Formats: safetensors, GGUF, Llama tensor-name mapping, PEFT LoRA adapters, steering-adapter
/// and control-vector files. Depends only on Tensors; knows nothing of the runtime.
public enum FormatsModule {
    /// Format version written into steertool's own files.
    public static let steertoolFormatVersion = 1
}

/// Metadata maps (`SafetensorsFile.metadata`, `GGUFFile.metadata`) are `OrderedDictionary`s;
/// re-exported so clients of Formats need no extra dependency.
@_exported import struct OrderedCollections.OrderedDictionary
