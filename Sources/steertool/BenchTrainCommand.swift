import ArgumentParser
import Foundation
import Runtime
import Tensors

/// `steertool bench train`: `steertool train` steps (SteeringTrainer: completion-masked
/// cross-entropy, backward, AdamW) on a random float32 model of SmolLM2-135M's shape (30 layers,
/// d 576, 9 / 3 heads, head_dim 64, d_ff 1536, vocab 49152), batches of 8 sequences of 64 tokens
/// whose last 16 are the completion; two kinds: a rank-8 linear post-block adapter on every layer
/// and a rank-8 LoRA (alpha 16) on all seven projections of every layer. Reports training tokens
/// per second (best step of 3 after one warm-up). `bench/peers/train.py` runs the same steps with
/// PyTorch autograd + AdamW (transformers' LlamaForCausalLM, forward hooks / PEFT).
struct BenchTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "train", abstract: "Training steps of steertool train (linear adapter, LoRA), tokens/s.")

    @Option(name: .long, help: "BLAS threads.")
    var threads = 1

    @Option(name: .long, help: "Decoder layers of the random model (SmolLM2-135M has 30).")
    var layers = 30

    @Option(name: .long, help: "Timed steps (after one warm-up step).")
    var steps = 3

    /// The shape every row and its peer use.
    static let batch = 8, length = 64, completion = 16

    func run() throws {
        guard threads >= 1, steps >= 1, layers >= 1 else { throw ValidationError("--threads, --steps and --layers must be ≥ 1") }
        BLAS.setThreadCount(threads)
        let c = LlamaConfig(vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, numHiddenLayers: layers,
                            numAttentionHeads: 9, numKeyValueHeads: 3, headDim: 64, rmsNormEps: 1e-5)
        let model = try BenchModel.random(config: c)
        var rng = SplitMix64(seed: 11)
        let examples = (0..<(Self.batch * (steps + 1))).map { i in
            TrainingExample(tokens: (0..<Self.length).map { _ in Int(rng.next() % UInt64(c.vocabSize)) },
                            targets: (0..<Self.length).map { $0 >= Self.length - Self.completion }, line: i + 1)
        }
        let data = TrainingData(path: "bench", kind: .promptCompletion, examples: examples)
        for kind in [TrainingKind.linear, .lora] {
            var options = SteeringTrainingOptions()
            options.kind = kind; options.batchSize = Self.batch; options.gradientAccumulation = 1
            options.learningRate = 1e-4; options.warmupFraction = 0
            let result = try SteeringTrainer.train(model: model, data: data, options: options)
            let best = result.steps.dropFirst().map(\.seconds).min() ?? .infinity
            let name = "train.step.\(kind == .lora ? "lora_r8_all7" : "linear_r8").d576_l\(layers)_b\(Self.batch)_t\(Self.length)"
            print("{\"name\": \"\(name)\", \"unit\": \"tokens/s\", \"value\": \(String(format: "%.1f", Double(Self.batch * Self.length) / best)), \"threads\": \(threads)}")
        }
    }
}
