import ArgumentParser
import Foundation
import Formats
import Merge
import Tensors

/// `steertool bench merge`: LoRA-into-weights throughput as JSON lines (peer: `bench/peers/merge.py`,
/// PEFT merge_and_unload + save_pretrained on the same folders). Register under `BenchCommand`.
struct BenchMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "LoRA merge (PEFT adapter, r 16 on all projections) into a ~155 MB f32 Llama checkpoint, in GB/s of base read.")

    @Option(help: "Folder for the synthetic base and adapter (created on first use under <work>/merge).")
    var work: String = "bench/work"
    @Option(help: "BLAS threads.") var threads: Int = 1
    @Option(help: "Repetitions; the best is reported.") var repeats: Int = 3

    /// The synthetic model: Llama shapes, hidden 1024, 2 layers, vocab 8000 (~38.8 M parameters).
    static let config = #"""
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": 8000, "hidden_size": 1024,
         "intermediate_size": 2816, "num_hidden_layers": 2, "num_attention_heads": 16, "num_key_value_heads": 4,
         "max_position_embeddings": 2048, "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "tie_word_embeddings": false,
         "hidden_act": "silu", "torch_dtype": "float32"}
        """#

    func prepare(_ folder: String) throws {
        let base = folder + "/base", lora = folder + "/lora"
        if FileManager.default.fileExists(atPath: base + "/model.safetensors"),
           FileManager.default.fileExists(atPath: lora + "/adapter_model.safetensors") { return }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let d = 1024, ff = 2816, kv = 256, vocab = 8000
        var shapes: [(String, [Int])] = [("model.embed_tokens.weight", [vocab, d]), ("model.norm.weight", [d]), ("lm_head.weight", [vocab, d])]
        var modules: [String: LoRAUpdate] = [:]
        var seed: UInt64 = 1
        for l in 0..<2 {
            let p = "model.layers.\(l)."
            let projections: [(String, [Int])] = [
                ("self_attn.q_proj", [d, d]), ("self_attn.k_proj", [kv, d]), ("self_attn.v_proj", [kv, d]), ("self_attn.o_proj", [d, d]),
                ("mlp.gate_proj", [ff, d]), ("mlp.up_proj", [ff, d]), ("mlp.down_proj", [d, ff]),
            ]
            shapes += [(p + "input_layernorm.weight", [d]), (p + "post_attention_layernorm.weight", [d])]
            for (m, s) in projections {
                shapes.append((p + m + ".weight", s))
                seed += 2
                modules[p + m] = LoRAUpdate(a: .randomNormal([16, s[1]], std: 0.02, seed: seed), b: .randomNormal([s[0], 16], std: 0.02, seed: seed + 1), scaling: 1)
            }
        }
        let records = shapes.enumerated().map { (i, e) in
            SafetensorsWriter.record(e.0, Tensor.randomNormal(Shape(e.1), std: 0.02, seed: 1000 + UInt64(i)))
        }
        try SafetensorsWriter.write(records, metadata: ["format": "pt"], to: base + "/model.safetensors", force: true)
        try Data(Self.config.utf8).write(to: URL(fileURLWithPath: base + "/config.json"))
        try PEFTAdapterFolder.write(modules, to: lora, force: true)
    }

    func run() throws {
        BLAS.setThreadCount(max(1, threads))
        let folder = work + "/merge"
        try prepare(folder)
        var best = Double.infinity
        var bytes = 0
        for _ in 0..<max(1, repeats) {
            sync()   // earlier benchmarks' dirty pages are written back before the clock starts (the peer does the same)
            let start = Date()
            let s = try MergeFiles.mergeLoRA(base: folder + "/base", adapter: folder + "/lora", output: folder + "/out", force: true)
            best = min(best, Date().timeIntervalSince(start))
            bytes = s.bytes
        }
        let gbps = Double(bytes) / best / 1e9
        emit("merge lora into f32 weights (155 MB, r 16)", gbps, unit: "GB/s")
        // What the merge is held to: the same file copied through user space (read, write to a
        // temporary file, rename), i.e. the machine's bandwidth for this file-to-file job.
        var bestCopy = Double.infinity
        for _ in 0..<max(1, repeats) {
            sync()
            let start = Date()
            try Self.copyFile(folder + "/base/model.safetensors", to: folder + "/copy.safetensors")
            bestCopy = min(bestCopy, Date().timeIntervalSince(start))
        }
        let copyGBps = Double(bytes) / bestCopy / 1e9
        emit("file copy of the same checkpoint (read + write)", copyGBps, unit: "GB/s")
        emit("merge lora into f32 weights (155 MB, r 16).fraction_of_file_copy", gbps / copyGBps, unit: "fraction")

        // The merge arithmetic alone, on weights already in memory (W + s·B·A for every module),
        // against the machine's memcpy bandwidth (it reads and writes each weight once, as a copy).
        let adapter = try PEFTAdapterFolder.read(folder + "/lora")
        let base = try Checkpoint(path: folder + "/base")
        var weights = try adapter.modules.keys.sorted().map { try base.tensor(named: $0 + ".weight") }
        let updates = adapter.modules.keys.sorted().map { adapter.modules[$0]! }
        let weightBytes = weights.reduce(0) { $0 + 4 * $1.count }
        var bestKernel = Double.infinity
        for _ in 0..<max(1, repeats) {   // in place, as the file merge does; values drift, speed does not
            let start = Date()
            for j in weights.indices { try updates[j].apply(to: &weights[j]) }
            bestKernel = min(bestKernel, Date().timeIntervalSince(start))
        }
        let kernelGBps = Double(weightBytes) / bestKernel / 1e9
        let memcpy = BenchRuntimeCommand.copyBandwidth()
        emit("merge lora arithmetic in memory (r 16)", kernelGBps, unit: "GB/s")
        emit("merge lora arithmetic in memory (r 16).fraction_of_memcpy", kernelGBps / memcpy, unit: "fraction")
    }

    private func emit(_ name: String, _ value: Double, unit: String) {
        print(#"{"name": "\#(name)", "unit": "\#(unit)", "value": \#((value * 1000).rounded() / 1000), "threads": \#(threads)}"#)
    }

    /// Copies `source` to `destination` in 8 MiB reads and writes through `AtomicFileWriter`
    /// (the path every steertool output takes).
    static func copyFile(_ source: String, to destination: String) throws {
        let input = try MappedFile(path: source)
        let out = try AtomicFileWriter(path: destination, force: true)
        let bytes = input.bytes
        var offset = 0
        while offset < bytes.count {
            let n = min(8 << 20, bytes.count - offset)
            try out.write(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + n]))
            input.advise(.dontNeed, range: offset..<offset + n)
            offset += n
        }
        try out.commit()
    }
}
