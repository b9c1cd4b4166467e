import ArgumentParser
import Equivalence
import Foundation
import Runtime
import Tensors

/// `steertool bench equivalence`: the distillation kernels on a SmolLM2-135M-shaped layer
/// (d 576, 9 heads / 3 KV heads, head_dim 64, d_ff 1536), random data: the linear closed-form
/// fit (reduced-rank regression, rank 16) and the block JVP along all seven projections, both in
/// ms per 1k calibration tokens. `bench/peers/equivalence.py` measures the same with numpy and
/// `torch.func.jvp` on transformers' `LlamaDecoderLayer`.
struct BenchEquivalenceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "equivalence", abstract: "Linear fit and block JVP, ms per 1k tokens.")

    @Option(name: .long, help: "BLAS threads.")
    var threads = 1

    @Option(name: .long, help: "Calibration tokens of the linear fit.")
    var tokens = 2048

    @Option(name: .long, help: "Sequence length of the JVP (4 sequences).")
    var sequenceLength = 256

    @Option(name: .long, help: "Repetitions; the best is reported.")
    var repeats = 3

    func run() throws {
        guard threads >= 1, tokens >= 2, sequenceLength >= 1, repeats >= 1 else {
            throw ValidationError("--threads, --sequence-length, --repeats must be ≥ 1 and --tokens ≥ 2")
        }
        BLAS.setThreadCount(threads)
        let c = LlamaConfig(vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: 1,
                            numAttentionHeads: 9, numKeyValueHeads: 3, headDim: 64, rmsNormEps: 1e-5)
        let d = c.hiddenSize
        // Linear fit: H and Δ with a low-rank relation plus noise.
        let h = Tensor.randomNormal([tokens, d], seed: 1)
        let delta = matmul(matmul(h, Tensor.randomNormal([d, 32], std: 0.05, seed: 2)), Tensor.randomNormal([32, d], seed: 3))
            + 0.1 * Tensor.randomNormal([tokens, d], seed: 4)
        var bestFit = Double.infinity
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            _ = try AdapterFit.linear(activations: h, shifts: delta, rank: 16)
            bestFit = min(bestFit, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        emit("equivalence.linear_fit.d576_r16", bestFit * 1000 / Double(tokens))

        // Block JVP along dense deltas on all seven projections.
        var seed: UInt64 = 10
        func rnd(_ dims: [Int], _ std: Float) -> Tensor { seed &+= 1; return Tensor.randomNormal(Shape(dims), std: std, seed: seed) }
        let qw = c.numAttentionHeads * c.headDim, kw = c.numKeyValueHeads * c.headDim, ff = c.intermediateSize
        let w = LlamaWeights.Layer(
            inputNorm: Tensor(shape: [d], repeating: 1), q: .f32(rnd([qw, d], 0.04)), k: .f32(rnd([kw, d], 0.04)),
            v: .f32(rnd([kw, d], 0.04)), o: .f32(rnd([d, qw], 0.04)), mlpNorm: Tensor(shape: [d], repeating: 1),
            gate: .f32(rnd([ff, d], 0.04)), up: .f32(rnd([ff, d], 0.04)), down: .f32(rnd([d, ff], 0.025)))
        let ev = try FirstOrderMap(config: c, weights: w)
        var delta7 = LayerWeightDelta()
        for p in LlamaProjection.allCases { delta7[p] = .dense(rnd(w[p].dims, 0.002)) }
        let inputs = (0..<4).map { _ in rnd([sequenceLength, d], 1) }
        var bestJVP = Double.infinity
        for _ in 0..<repeats {
            let t0 = DispatchTime.now().uptimeNanoseconds
            for x in inputs { _ = try ev.jvp(try ev.forward(x), delta: delta7) }
            bestJVP = min(bestJVP, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        emit("equivalence.block_jvp.d576_t\(sequenceLength)", bestJVP * 1000 / Double(4 * sequenceLength))
    }

    private func emit(_ name: String, _ value: Double) {
        print("{\"name\": \"\(name)\", \"unit\": \"ms per 1k tokens\", \"value\": \(String(format: "%.3f", value)), \"threads\": \(threads)}")
    }
}
