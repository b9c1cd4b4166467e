import Testing
import Runtime
import Tensors

@Suite("Loading and validation errors")
struct LoadingTests {
    @Test func unknownArchitectureIsRejectedByName() throws {
        let c = SyntheticModel.config(architecture: "GPTNeoXForCausalLM")
        #expect(throws: RuntimeError.unsupportedArchitecture("GPTNeoXForCausalLM", source: "synthetic")) {
            try SyntheticModel.weights(c)
        }
    }

    @Test func unsupportedRopeTypeIsRejected() throws {
        let c = SyntheticModel.config(rope: .init(ropeType: "yarn", theta: 10000, factor: 4))
        #expect(throws: RuntimeError.unsupportedFeature("rope_type 'yarn'", source: "synthetic")) {
            try SyntheticModel.weights(c)
        }
    }

    @Test func missingTensorPropagatesWithItsName() throws {
        let c = SyntheticModel.config()
        #expect(throws: RuntimeError.missingTensor(name: "model.layers.1.mlp.up_proj.weight", source: "ckpt")) {
            try LlamaWeights.load(config: c, source: "ckpt") { name in
                if name == "model.layers.1.mlp.up_proj.weight" { throw RuntimeError.missingTensor(name: name, source: "ckpt") }
                return Tensor(shape: Shape(SyntheticModel.shape(of: name, c)))
            }
        }
    }

    @Test func shapeMismatchNamesTheTensor() throws {
        let c = SyntheticModel.config()
        #expect(throws: RuntimeError.shapeMismatch(tensor: "model.layers.2.self_attn.k_proj.weight", expected: [16, 32], found: [32, 32], source: "ckpt")) {
            try LlamaWeights.load(config: c, source: "ckpt") { name in
                name == "model.layers.2.self_attn.k_proj.weight"
                    ? Tensor(shape: [32, 32]) : Tensor(shape: Shape(SyntheticModel.shape(of: name, c)))
            }
        }
    }

    @Test func tiedModelDoesNotAskForLMHead() throws {
        let c = SyntheticModel.config(tied: true)
        var asked: [String] = []
        let w = try LlamaWeights.load(config: c) { name in
            asked.append(name)
            return Tensor(shape: Shape(SyntheticModel.shape(of: name, c)))
        }
        #expect(!asked.contains("lm_head.weight"))
        #expect(w.lmHead == nil)
    }

    @Test func qwen2LoadsQKVBiasesButNoOutputBias() throws {
        let c = SyntheticModel.config(architecture: "Qwen2ForCausalLM")
        var asked: Set<String> = []
        _ = try LlamaWeights.load(config: c) { name in
            asked.insert(name)
            return Tensor(shape: Shape(SyntheticModel.shape(of: name, c)))
        }
        #expect(asked.contains("model.layers.0.self_attn.q_proj.bias"))
        #expect(asked.contains("model.layers.0.self_attn.v_proj.bias"))
        #expect(!asked.contains("model.layers.0.self_attn.o_proj.bias"))
    }

    @Test func tokenOutOfRangeNamesPosition() throws {
        let model = try SyntheticModel.model()
        #expect(throws: RuntimeError.tokenOutOfRange(token: 50, position: 2, vocabSize: 50)) {
            try model.forward(tokens: [1, 2, 50])
        }
        #expect(throws: RuntimeError.tokenOutOfRange(token: -1, position: 0, vocabSize: 50)) {
            try model.forward(tokens: [-1])
        }
        #expect(throws: RuntimeError.self) { try model.forward(tokens: []) }
    }
}
