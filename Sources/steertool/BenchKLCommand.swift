import ArgumentParser
import Foundation
import Runtime
import Tensors

/// `steertool bench kl`: one end-to-end (KL) distillation training step — forward with tape,
/// backward to rank-16 linear post-block adapters on every layer, Adam update — on a random
/// model of SmolLM2-135M's layer shape (d 576, 9 heads / 3 KV heads, head_dim 64, d_ff 1536,
/// vocab 49152) with 4 layers, minibatches of 2 sequences of 128 tokens, reference log-probs
/// precomputed. Reports training tokens per second. `bench/peers/kl.py` runs the same step with
/// torch autograd on transformers' LlamaForCausalLM (forward hooks for the adapters).
struct BenchKLCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "kl", abstract: "KL-distillation training step, tokens/s.")

    @Option(name: .long, help: "BLAS threads.")
    var threads = 1

    @Option(name: .long, help: "Unused (the model is random); accepted for the bench driver.")
    var work: String?

    @Option(name: .long, help: "Timed steps (after one warm-up step).")
    var steps = 3

    func run() throws {
        guard threads >= 1, steps >= 1 else { throw ValidationError("--threads and --steps must be ≥ 1") }
        BLAS.setThreadCount(threads)
        let c = LlamaConfig(vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: 4,
                            numAttentionHeads: 9, numKeyValueHeads: 3, headDim: 64, rmsNormEps: 1e-5)
        let model = try BenchModel.random(config: c)
        var rng = SplitMix64(seed: 7)
        let seqs = (0..<2).map { _ in (0..<128).map { _ in Int(rng.next() % UInt64(c.vocabSize)) } }
        let refs = seqs.map { s in
            logSoftmaxRows(Tensor.randomNormal([s.count, c.vocabSize], seed: UInt64(s[0])))
        }
        let d = c.hiddenSize, r = 16
        var layers: [Int: SteeringLayer] = [:]
        for l in 0..<c.numHiddenLayers {
            layers[l] = SteeringLayer(down: .randomNormal([d, r], std: 0.02, seed: UInt64(100 + l)),
                                      up: .randomNormal([d, r], std: 0.02, seed: UInt64(200 + l)), bias: Tensor(shape: [d]))
        }
        var adapter = SteeringAdapter(site: .blockOutput, activation: .identity, layers: layers)
        let bp = try SteeringBackprop(model: model)
        var adam = AdamOptimizer(options: AdamOptions(learningRate: 1e-3))
        var params = adapter.parameterTensors
        let objectives = refs.map { TrainingObjective.kl(referenceLogProbs: $0) }
        var best = Double.infinity
        for i in 0...steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            let g = try bp.lossAndGradients(sequences: seqs, objectives: objectives, adapter: adapter)
            _ = adam.update(parameters: &params, gradients: g.tensors(matching: adapter))
            adapter = adapter.replacingParameters(params)
            let s = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            if i > 0 { best = min(best, s) }
        }
        let tokens = seqs.reduce(0) { $0 + $1.count }
        print("{\"name\": \"kl.train_step.d576_l4_t128_b2\", \"unit\": \"tokens/s\", \"value\": \(String(format: "%.1f", Double(tokens) / best)), \"threads\": \(threads)}")
    }
}

/// Random models of a given shape for the training benchmarks (weights N(0, 0.04²), norms 1,
/// untied lm_head), the same for every run.
enum BenchModel {
    static func random(config c: LlamaConfig) throws -> LlamaModel {
        var seed: UInt64 = 1
        let w = try LlamaWeights.load(config: c, source: "bench") { name in
            seed &+= 1
            if name == "model.embed_tokens.weight" || name == "lm_head.weight" { return Tensor.randomNormal([c.vocabSize, c.hiddenSize], std: 0.04, seed: seed) }
            if name.hasSuffix("norm.weight") { return Tensor(shape: [c.hiddenSize], repeating: 1) }
            for p in LlamaProjection.allCases where name.contains(p.rawValue) {
                return Tensor.randomNormal([p.outputSize(c), p.inputSize(c)], std: 0.04, seed: seed)
            }
            throw ValidationError("unexpected tensor \(name)")
        }
        return try LlamaModel(config: c, weights: w, source: "bench")
    }
}
