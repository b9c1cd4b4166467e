import Foundation
import Testing
import Formats
import Runtime
import Tensors
import TestSupport

/// The Gemma-3 text block against transformers (fixtures/gemma3/, recorded by
/// fixtures/generate/extra/gemma3.py: Gemma3ForCausalLM in f32, eager attention): a tiny random
/// model whose sliding window (8) is shorter than two of the three test sequences, with GQA, a
/// score scale from `query_pre_attn_scalar` 20 ≠ head_dim, two RoPE bases, GELU-tanh, q/k norms,
/// four norms per layer with gains 1 + w and √d-scaled tied embeddings. Tolerance as for the Llama
/// reference tests: 1e-4 relative (max|a − b| / max|b|).
@Suite("Gemma-3 vs transformers")
struct Gemma3ReferenceTests {
    static let folder = "gemma3/tiny", reference = "gemma3/reference.safetensors"

    /// The HF folder resolves to the Gemma-3 layer descriptions the config asks for.
    @Test func configBecomesLayerDescriptions() throws {
        let model = try LlamaModel.load(path: Fixtures.path(Self.folder))
        #expect(model.architecture.name == "Gemma3ForCausalLM")
        #expect(model.architecture.queryKeyNorms && model.architecture.sandwichNorms && model.architecture.scalesEmbeddings)
        #expect(model.blocks.map(\.slidingWindow) == [8, 8, nil, 8])
        #expect(model.blocks.map(\.rotary) == [.local, .local, .global, .local])
        #expect(model.blocks.allSatisfy { $0.activation == .geluTanh && $0.attentionScale == Float(1 / 20.0.squareRoot()) })
        #expect(model.config.localRope?.theta == 10_000 && model.config.rope.theta == 1_000_000)
        // Gains are held as 1 + w.
        let w = model.weights.layers[0]
        #expect(w.queryNorm?.count == 16 && w.keyNorm?.count == 16 && w.attentionOutputNorm?.count == 64 && w.mlpOutputNorm?.count == 64)
        #expect((w.queryNorm?.scalars ?? []).allSatisfy { $0 > 0.75 && $0 < 1.25 })
    }

    /// Every position's logits and every layer's block output of the three sequences, all tokens
    /// at once, on 1 and 3 threads.
    @Test(arguments: [1, 3]) func prefillMatchesTransformers(threads: Int) throws {
        let model = try LlamaModel.load(path: Fixtures.path(Self.folder))
        BLAS.setThreadCount(threads)
        defer { BLAS.setThreadCount(1) }
        let runs = try ReferenceRun.load(Self.reference, layers: model.config.numHiddenLayers)
        #expect(runs.map(\.tokens.count) == [5, 19, 30])
        var worst = 0.0
        defer { print("Gemma-3 tiny vs transformers, \(threads) threads: largest relative error \(worst)") }
        for (i, run) in runs.enumerated() {
            let r = try model.forward(tokens: run.tokens, options: ForwardOptions(blockOutputs: true))
            let e = maxAbsoluteDifferenceScaled(r.logits.scalars, run.logits.scalars)
            #expect(e <= 1e-4, "sequence \(i): logits error \(e)")
            worst = max(worst, e)
            for (l, ref) in run.hidden.enumerated() {
                let eh = maxAbsoluteDifferenceScaled(r.blockOutputs[l].scalars, ref.scalars)
                #expect(eh <= 1e-4, "sequence \(i): hidden \(l) error \(eh)")
                worst = max(worst, eh)
            }
        }
    }

    /// The three sequences packed into one pass: sliding windows and both RoPE bases restart
    /// with each sequence, so each gets its transformers reference.
    @Test func packedSequencesMatchTransformers() throws {
        BLAS.setThreadCount(1)
        let model = try LlamaModel.load(path: Fixtures.path(Self.folder))
        let runs = try ReferenceRun.load(Self.reference, layers: model.config.numHiddenLayers)
        let e = try ReferenceRun.packedError(model: model, runs: runs)
        print("Gemma-3 tiny packed vs transformers: largest relative error \(e)")
        #expect(e <= 1e-4)
    }

    /// The folder converted to a gemma3 GGUF by `LlamaConverter` (norms stored as 1 + w, the
    /// layer pattern and score scale in `gemma3.attention.*`) loads to the same model: every
    /// sequence's logits bit for bit as the folder's, so within 1e-4 of transformers; converted
    /// back to a folder it holds the original tensors (norms to rounding) and the same model.
    @Test func ourGGUFMatchesTheFolder() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-gemma3-\(UUID().uuidString).gguf").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try LlamaConverter.hfToGGUF(input: Fixtures.path(Self.folder), output: path, type: .f32)
        let gguf = try LlamaModel.load(path: path), folder = try LlamaModel.load(path: Fixtures.path(Self.folder))
        #expect(gguf.blocks == folder.blocks && gguf.config.localRope == folder.config.localRope)
        // And back: GGUF → HF folder (norm weights w again: (1 + w) − 1 is exact in f32 for
        // |w| < 1, so the model loads to the same gains).
        let back = FileManager.default.temporaryDirectory.appendingPathComponent("steertool-gemma3-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: back) }
        try LlamaConverter.ggufToHF(input: path, output: back)
        let roundTrip = try LlamaModel.load(path: back)
        #expect(roundTrip.architecture.name == "Gemma3ForCausalLM" && roundTrip.blocks == folder.blocks)
        let original = try SafetensorsFile(path: Fixtures.path(Self.folder + "/model.safetensors"))
        let copied = try SafetensorsFile(path: back + "/model.safetensors")
        for name in original.tensorNames {
            let a = try original.tensor(named: name), b = try copied.tensor(named: name)
            #expect(maxAbsoluteDifferenceScaled(b.scalars, a.scalars) <= (name.hasSuffix("norm.weight") ? 1e-6 : 0), "\(name)")
        }
        for run in try ReferenceRun.load(Self.reference, layers: folder.config.numHiddenLayers) {
            let a = try gguf.forward(tokens: run.tokens).logits
            #expect(a == (try folder.forward(tokens: run.tokens).logits))
            #expect(a == (try roundTrip.forward(tokens: run.tokens).logits))
            #expect(maxAbsoluteDifferenceScaled(a.scalars, run.logits.scalars) <= 1e-4)
        }
    }

    /// A PEFT LoRA (random, non-zero, all seven projections) applied unmerged: logits and block
    /// outputs equal PEFT's within 1e-4 relative, and the LoRA changes them (the check is not vacuous).
    @Test func loraUnmergedMatchesPEFT() throws {
        let base = try LlamaModel.load(path: Fixtures.path(Self.folder))
        let model = try base.adding(LoRAWeights.load(directory: Fixtures.path("gemma3/lora")))
        let runs = try ReferenceRun.load("gemma3/reference-lora.safetensors", layers: model.config.numHiddenLayers)
        let plain = try ReferenceRun.load(Self.reference, layers: model.config.numHiddenLayers)
        for (i, run) in runs.enumerated() {
            let r = try model.forward(tokens: run.tokens, options: ForwardOptions(blockOutputs: true))
            let e = maxAbsoluteDifferenceScaled(r.logits.scalars, run.logits.scalars)
            #expect(e <= 1e-4, "sequence \(i): logits error \(e)")
            for (l, ref) in run.hidden.enumerated() {
                #expect(maxAbsoluteDifferenceScaled(r.blockOutputs[l].scalars, ref.scalars) <= 1e-4, "sequence \(i) hidden \(l)")
            }
            #expect(maxAbsoluteDifferenceScaled(plain[i].logits.scalars, run.logits.scalars) > 1e-2)
        }
    }

    /// Token by token through the KV cache (the window slides over cached keys) and in uneven
    /// chunks: every position's logits as the reference's.
    @Test func decodeMatchesTransformers() throws {
        let model = try LlamaModel.load(path: Fixtures.path(Self.folder))
        let run = try #require(try ReferenceRun.load(Self.reference, layers: model.config.numHiddenLayers).last)
        for chunk in [1, 7] {
            let cache = KVCache(config: model.config)
            var start = 0
            while start < run.tokens.count {
                let end = min(start + chunk, run.tokens.count)
                let logits = try model.forward(tokens: Array(run.tokens[start..<end]), cache: cache).logits
                for t in start..<end {
                    let e = maxAbsoluteDifferenceScaled(logits.row(t - start), run.logits.row(t))
                    #expect(e <= 1e-4, "chunk \(chunk), position \(t): \(e)")
                }
                start = end
            }
        }
    }

    /// The window matters: the same model with a window longer than the sequence gives the same
    /// logits inside the window and others past it (so the checks above cannot pass with the
    /// window ignored).
    @Test func windowChangesLaterPositions() throws {
        let model = try LlamaModel.load(path: Fixtures.path(Self.folder))
        let run = try #require(try ReferenceRun.load(Self.reference, layers: model.config.numHiddenLayers).last)
        var config = model.config
        config.slidingWindow = 1000
        let full = try LlamaModel(config: config, weights: model.weights)
        let a = try model.forward(tokens: run.tokens).logits, b = try full.forward(tokens: run.tokens).logits
        #expect(maxAbsoluteDifferenceScaled(a.row(5), b.row(5)) <= 1e-6)
        #expect(maxAbsoluteDifferenceScaled(a.row(29), b.row(29)) > 1e-3)
    }

    /// The training pass through Gemma-3 layers (q/k norms, output norms, GELU-tanh, the sliding
    /// window over 12 tokens, two RoPE tables, scaled embeddings) against torch autograd: the
    /// cross-entropy loss and the gradients of two post-block adapters (layers 1 and 3) within
    /// 1e-4 relative (max|a − b| / max|b|; f32 on both sides, summation order only).
    @Test func adapterGradientsMatchTorchAutograd() throws {
        let model = try LlamaModel.load(path: Fixtures.path(Self.folder))
        let f = try SafetensorsFile(path: Fixtures.path("gemma3/grad.safetensors"))
        let tokens = try f.tensor(named: "tokens").scalars.map { Int($0) }
        var layers: [Int: SteeringLayer] = [:]
        for l in [1, 3] {
            layers[l] = SteeringLayer(down: try f.tensor(named: "layer.\(l).down"), up: try f.tensor(named: "layer.\(l).up"),
                                      bias: try f.tensor(named: "layer.\(l).bias"))
        }
        let result = try SteeringBackprop(model: model).lossAndGradients(
            sequences: [tokens], objectives: [.crossEntropy], adapter: SteeringAdapter(layers: layers))
        let loss = try f.tensor(named: "loss").scalars[0]
        #expect(abs(result.loss - Double(loss)) <= 1e-5 * Double(loss), "loss \(result.loss) vs \(loss)")
        var worst = 0.0
        for l in [1, 3] {
            let g = try #require(result.layers[l])
            for (name, ours) in [("down", g.down), ("up", g.up), ("bias", g.bias)] {
                let want = try f.tensor(named: "grad.\(l).\(name)")
                let e = maxAbsoluteDifferenceScaled(try #require(ours).scalars, want.scalars)
                #expect(e <= 1e-4, "layer \(l) \(name): \(e)")
                worst = max(worst, e)
            }
        }
        print("Gemma-3 tiny adapter gradients vs torch autograd: largest relative error \(worst)")
    }

    /// Gemma-2 and the multimodal Gemma-3 are refused by name with the reason.
    @Test(arguments: [("gemma2", "Gemma2ForCausalLM"), ("gemma3", "Gemma3ForConditionalGeneration")])
    func otherGemmasAreRefusedByName(modelType: String, name: String) throws {
        let json = """
        {"architectures": ["\(name)"], "model_type": "\(modelType)", "vocab_size": 8, "hidden_size": 8,
         "intermediate_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2}
        """
        let config = try LlamaConfig.load(configJSON: Data(json.utf8), source: "config.json")
        #expect(throws: RuntimeError.self) { try LlamaArchitecture(config: config, source: "config.json") }
        do { _ = try LlamaArchitecture(config: config, source: "config.json") } catch {
            #expect("\(error)".contains(name) && "\(error)".contains("not supported"), "\(error)")
        }
    }
}
