import ArgumentParser
import Foundation
import Runtime
import Tensors

/// `steertool bench runtime`: prefill and decode tokens/s of the forward pass, on a model file or
/// on a random ~100M-parameter Llama built in memory (same shape as `bench/peers/runtime.py`'s).
struct BenchRuntimeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "runtime", abstract: "Prefill and decode tokens/s (f32, then Q8_0 kept quantized, then the file's own matrices in place, or bf16; KV cache).")

    @Option(name: .long, help: "Model folder or GGUF (default: random ~100M-parameter Llama).")
    var model: String?

    @Option(name: .long, help: "Name used in the JSON lines (default: the model's folder or file name, or random-100m).")
    var label: String?

    @Option(name: .long, help: "BLAS threads.")
    var threads = 1

    @Option(name: .long, help: "Prompt length for prefill.")
    var promptTokens = 128

    @Option(name: .long, help: "Tokens decoded one at a time after the prompt.")
    var decodeTokens = 32

    @Option(name: .long, help: "Repetitions; the best is reported.")
    var repeats = 3

    @Flag(name: .long, help: "Only the --model file as --weights native holds it (no f32 or Q8_0 copy: large files).")
    var nativeOnly = false

    func run() throws {
        guard threads >= 1, promptTokens >= 1, decodeTokens >= 1, repeats >= 1 else {
            throw ValidationError("--threads, --prompt-tokens, --decode-tokens and --repeats must be ≥ 1")
        }
        if nativeOnly, model == nil { throw ValidationError("--native-only needs --model") }
        BLAS.setThreadCount(threads)
        let name = label ?? model.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "random-100m"
        let peak = Self.sgemmPeak(threads: threads), copy = Self.copyBandwidth()
        emit("runtime.sgemm_peak", peak, unit: "GFLOP/s")
        emit("runtime.copy_bandwidth", copy, unit: "GB/s")
        if nativeOnly, let model {
            try measure(try LlamaModel.load(path: model, storage: .native), name: name + ".native", peak: peak, copy: copy)
            return
        }
        let f32 = try model.map { try LlamaModel.load(path: $0) } ?? RandomLlama.make()
        try measure(f32, name: name, peak: peak, copy: copy)
        // The same model with its matrices kept in Q8_0 (quantized from the f32 weights in
        // memory, as `--weights q8_0` does at load); the f32 copy is released first.
        let q8 = try model.map { try LlamaModel.load(path: $0, storage: .q8_0) } ?? f32.converted(to: .q8_0)
        try measure(q8, name: name + ".q8_0", peak: peak, copy: copy)
        // And as `--weights native` holds it when the file's matrices are not all f32 (BF16/F16
        // or GGUF Q4_0 … Q6_K and Q8_0 read in place: reported as `.native`, whatever
        // the types; the figure llama.cpp is held against), else with its matrices rounded to bf16
        // in memory and multiplied by the half kernels.
        if let native = try model.map({ try LlamaModel.load(path: $0, storage: .native) }), native.weightStorage != .f32 {
            try measure(native, name: name + ".native", peak: peak, copy: copy)
        } else {
            try measure(try f32.rounded(to: .bf16), name: name + ".bf16", peak: peak, copy: copy)
        }
    }

    /// Prefill and decode tokens/s of `m`, with the achieved fraction of sgemm peak (prefill) and
    /// of copy bandwidth (decode).
    private func measure(_ m: LlamaModel, name: String, peak: Double, copy: Double) throws {
        var rng = SplitMix64(seed: 1)
        let prompt = (0..<promptTokens).map { _ in Int(rng.next() % UInt64(m.config.vocabSize)) }

        _ = try m.forward(tokens: Array(prompt.prefix(8)), options: ForwardOptions(logits: .lastPosition))  // warm-up
        var bestPrefill = Double.infinity, bestDecode = Double.infinity
        for _ in 0..<repeats {
            let cache = KVCache(config: m.config, capacity: promptTokens + decodeTokens)
            let t0 = DispatchTime.now().uptimeNanoseconds
            var logits = try m.forward(tokens: prompt, cache: cache, options: ForwardOptions(logits: .lastPosition)).logits
            let t1 = DispatchTime.now().uptimeNanoseconds
            for _ in 0..<decodeTokens {
                let next = logits.withUnsafeBufferPointer { Sampler.argmax($0) }
                logits = try m.forward(tokens: [next], cache: cache, options: ForwardOptions(logits: .lastPosition)).logits
            }
            let t2 = DispatchTime.now().uptimeNanoseconds
            bestPrefill = min(bestPrefill, Double(t1 - t0) / 1e9)
            bestDecode = min(bestDecode, Double(t2 - t1) / 1e9)
        }
        let prefill = Double(promptTokens) / bestPrefill, decode = Double(decodeTokens) / bestDecode
        emit("runtime.prefill.\(name)", prefill)
        emit("runtime.decode.\(name)", decode)

        // Against the machine: prefill is compute-bound (2 FLOPs per projection weight per token;
        // attention scores and lm_head of the last position left out, so this undercounts a little),
        // decode is bandwidth-bound (every weight byte of the layers and lm_head read once per token,
        // 4 bytes per weight in f32, 34/32 in Q8_0, 2 in bf16, the block size in GGML formats).
        let w = m.weights
        let layerMatrices = w.layers.flatMap { l in LlamaProjection.allCases.map { l[$0] } }
        let layerWeights = layerMatrices.reduce(0) { $0 + $1.rows * $1.columns }
        let layerBytes = layerMatrices.reduce(0) { $0 + $1.byteCount }
        let prefillFLOPs = prefill * 2 * Double(layerWeights) / 1e9
        let decodeBytes = decode * Double(layerBytes + w.outputProjection.byteCount) / 1e9
        emit("runtime.prefill.\(name).compute", prefillFLOPs, unit: "GFLOP/s")
        emit("runtime.prefill.\(name).fraction_of_sgemm_peak", prefillFLOPs / peak, unit: "fraction")
        emit("runtime.decode.\(name).weight_traffic", decodeBytes, unit: "GB/s")
        emit("runtime.decode.\(name).fraction_of_copy_bandwidth", decodeBytes / copy, unit: "fraction")
    }

    private func emit(_ name: String, _ value: Double, unit: String = "tokens/s") {
        print("{\"name\": \"\(name)\", \"unit\": \"\(unit)\", \"value\": \(String(format: "%.4g", value)), \"threads\": \(threads)}")
    }

    /// Best GFLOP/s of a 1536³ single-precision gemm on this thread count, 10 tries (~50 ms
    /// each; on a shared host 3 tries read below what the model's own gemms reached): OpenBLAS's
    /// sgemm, or where the forward pass uses it (`TokenPanelGemm.preferred`) the token-panel gemm
    /// when that is faster (panels packed inside the timing), so that a fraction of peak stays a
    /// fraction of the best gemm this machine runs.
    static func sgemmPeak(threads: Int) -> Double {
        let n = 1536
        let a = Tensor.randomNormal([n, n], seed: 1), b = Tensor.randomNormal([n, n], seed: 2)
        func best(_ body: () -> Void) -> Double {
            var best = Double.infinity
            for _ in 0..<10 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                body()
                best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            return 2 * Double(n * n * n) / best / 1e9
        }
        let blas = best { _ = matmul(a, b) }
        guard TokenPanelGemm.preferred else { return blas }
        let panels = UnsafeMutablePointer<Float>.allocate(capacity: TokenPanelGemm.panelFloats(rows: n, columns: n))
        let out = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        defer { panels.deallocate(); out.deallocate() }
        let own = a.withUnsafeBufferPointer { ap in
            b.withUnsafeBufferPointer { bp in
                best {
                    let x = TokenPanelGemm.pack(ap.baseAddress!, rows: n, columns: n, ldx: n, into: panels)
                    TokenPanelGemm.multiply(x, weight: bp.baseAddress!, outFeatures: n, out: out, ldo: n, threads: threads)
                }
            }
        }
        return max(blas, own)
    }

    /// Best GB/s (bytes copied per second) of a 256 MiB memcpy between pre-touched buffers, 5 tries.
    static func copyBandwidth() -> Double {
        let count = 256 << 20
        let src = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
        let dst = UnsafeMutableRawPointer.allocate(byteCount: count, alignment: 64)
        defer { src.deallocate(); dst.deallocate() }
        memset(src, 1, count); memset(dst, 0, count)
        var best = Double.infinity
        for _ in 0..<5 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            memcpy(dst, src, count)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
        }
        return Double(count) / best / 1e9
    }
}

/// The benchmark's random Llama: d 768, 12 layers, 12 heads (4 KV heads), d_ff 2048,
/// vocab 32000, untied: ≈ 100M parameters. Weights N(0, 0.02²), norms 1.
enum RandomLlama {
    static let config = LlamaConfig(
        vocabSize: 32000, hiddenSize: 768, intermediateSize: 2048, numHiddenLayers: 12,
        numAttentionHeads: 12, numKeyValueHeads: 4, rmsNormEps: 1e-5, maxPositionEmbeddings: 2048)

    static func make() throws -> LlamaModel {
        var seed: UInt64 = 0
        let c = config
        let weights = try LlamaWeights.load(config: c, source: "random-100m") { name in
            seed &+= 1
            let dims = shape(name, c)
            return name.hasSuffix("norm.weight")
                ? Tensor(shape: Shape(dims), repeating: 1)
                : Tensor.randomNormal(Shape(dims), std: 0.02, seed: seed)
        }
        return try LlamaModel(config: c, weights: weights, source: "random-100m")
    }

    private static func shape(_ name: String, _ c: LlamaConfig) -> [Int] {
        if name == "model.embed_tokens.weight" || name == "lm_head.weight" { return [c.vocabSize, c.hiddenSize] }
        if name.hasSuffix("norm.weight") { return [c.hiddenSize] }
        for p in LlamaProjection.allCases where name.contains("." + p.rawValue + ".") {
            return name.hasSuffix(".bias") ? [p.outputSize(c)] : [p.outputSize(c), p.inputSize(c)]
        }
        return []
    }
}
