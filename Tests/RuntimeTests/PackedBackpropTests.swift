import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// Sequences packed into one backward pass (each attending to itself only) give the gradients of
/// running them one at a time: Llama, Gemma-3 (sliding window 8 shorter than the sequences, local
/// and global RoPE, q/k norms) and Qwen3 (q/k norms, head_dim ≠ hidden/heads) with a trainable
/// LoRA on top of the steering adapter.
@Suite struct PackedBackpropTests {
    @Test(arguments: ["tiny/base", "gemma3/tiny", "qwen3/tiny"]) func packedEqualsOneAtATime(path: String) throws {
        let model = try LlamaModel.load(path: Fixtures.path(path))
        let c = model.config, d = c.hiddenSize
        var layers: [Int: SteeringLayer] = [:]
        for l in 0..<c.numHiddenLayers {
            layers[l] = SteeringLayer(down: Tensor.randomNormal([d, 3], std: 0.2, seed: UInt64(10 + l)),
                                      up: Tensor.randomNormal([d, 3], std: 0.2, seed: UInt64(20 + l)),
                                      bias: Tensor.randomNormal([d], std: 0.1, seed: UInt64(30 + l)))
        }
        let adapter = SteeringAdapter(site: .blockOutput, activation: .silu, layers: layers)
        let loraA = Tensor.randomNormal([2, d], std: 0.2, seed: 40), loraB = Tensor.randomNormal([d, 2], std: 0.2, seed: 41)
        let lora = LoRAWeights(name: "t", layers: [1: [.down: LoRAFactors(a: Tensor.randomNormal([2, c.intermediateSize], std: 0.2, seed: 42), b: loraB, scale: 0.5)],
                                                   0: [.q: LoRAFactors(a: loraA, b: Tensor.randomNormal([c.numAttentionHeads * c.headDim, 2], std: 0.2, seed: 43), scale: 1)]])
        var rng = SplitMix64(seed: 7)
        let lengths = [7, 19, 12, 3]
        let sequences = lengths.map { n in (0..<n).map { _ in Int(rng.next() % UInt64(min(c.vocabSize, 90))) + 3 } }
        let objectives: [TrainingObjective] = sequences.map { s in .targetedCrossEntropy(targets: s.indices.map { $0 > 0 && ($0 % 3 != 1) }) }
        let backprop = try SteeringBackprop(model: model)
        let one = try backprop.lossAndGradients(sequences: sequences, objectives: objectives, adapter: adapter, lora: lora, maxPackedRows: 1)
        let packed = try backprop.lossAndGradients(sequences: sequences, objectives: objectives, adapter: adapter, lora: lora)
        #expect(abs(one.loss - packed.loss) <= 1e-6 * abs(one.loss))
        for (a, b) in zip(one.tensors(matching: adapter), packed.tensors(matching: adapter)) {
            #expect(relativeError(b.scalars, a.scalars) <= 1e-5)
        }
        for (l, modules) in one.lora { for (p, f) in modules {
            let g = try #require(packed.lora[l]?[p])
            #expect(relativeError(g.a.scalars, f.a.scalars) <= 1e-5 && relativeError(g.b.scalars, f.b.scalars) <= 1e-5, "LoRA \(l) \(p)")
        } }
        #expect(!one.lora.isEmpty)
    }
}
