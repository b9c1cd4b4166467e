import Foundation
import Merge
import Tensors
import TestSupport
import Testing

/// Checkpoint merges against mergekit 0.1.5 `run_merge` on small random Llama checkpoints, with
/// the YAML configs recorded next to the outputs (fixtures/merge/mergekit.json).
@Suite struct MergekitTests {
    static func load() throws -> (models: [String: [String: Tensor]], merges: [String: (yaml: String, tensors: [String: Tensor])]) {
        let root = try MergeFixtures.load("mergekit.json")
        var models: [String: [String: Tensor]] = [:]
        for (n, v) in root["models"] as! [String: Any] { models[n] = try MergeFixtures.tensors(v) }
        var merges: [String: (String, [String: Tensor])] = [:]
        for (n, v) in root["merges"] as! [String: Any] {
            let d = v as! [String: Any]
            merges[n] = (d["yaml"] as! String, try MergeFixtures.tensors(d["tensors"]))
        }
        return (models, merges)
    }

    static func run(_ yaml: String, _ models: [String: [String: Tensor]], seed: UInt64 = 0) throws -> [String: Tensor] {
        let config = try MergekitConfig(yaml: yaml)
        var sources: [String: any TensorSource] = [:]
        for (n, t) in models { sources[n] = InMemoryTensorSource(t) }
        var out: [String: Tensor] = [:]
        try CheckpointMerge(config: config, seed: seed).run(sources: sources) { out[$0] = $1 }
        return out
    }

    @Test("deterministic methods equal mergekit's output",
          arguments: ["linear", "linear_no_normalize", "task_arithmetic", "ties", "slerp", "slerp_scalar"])
    func deterministic(id: String) throws {
        let (models, merges) = try Self.load()
        let (yaml, expected) = merges[id]!
        let got = try Self.run(yaml, models)
        #expect(Set(got.keys) == Set(expected.keys))
        for (name, ref) in expected {
            let t = try #require(got[name])
            // float32 arithmetic in mergekit's order: 1e-6 relative; slerp's trigonometric
            // coefficients come from a different libm (2e-6).
            let err = relativeError(t.scalars, ref.scalars)
            #expect(err < (id.hasPrefix("slerp") ? 2e-6 : 1e-6), "\(id) \(name): \(err)")
        }
    }

    @Test("slerp's colinear and antipodal tensors take the linear fallback as in mergekit")
    func slerpFallback() throws {
        let (models, merges) = try Self.load()
        let got = try Self.run(merges["slerp"]!.yaml, models)
        // model.norm.weight of b is 1.5 × a's (colinear); layer 0 input_layernorm is −2 × (antipodal);
        // t = 0.5 from the catch-all condition, and both are non-layer / non-filtered tensors.
        let a = models["a"]!["model.norm.weight"]!, b = models["b"]!["model.norm.weight"]!
        let lerp = (0.5 as Float) * a + (0.5 as Float) * b
        #expect(relativeError(got["model.norm.weight"]!.scalars, lerp.scalars) < 1e-6)
        #expect(relativeError(got["model.norm.weight"]!.scalars, merges["slerp"]!.tensors["model.norm.weight"]!.scalars) < 1e-6)
    }

    /// DARE's masks come from torch's RNG in mergekit: compare the fraction of entries left at the
    /// base value (both models dropped: (1−p)² = 0.25) for mergekit's output and ours, within 4σ.
    @Test("dare_ties / dare_linear: mergekit's and our keep statistics agree with the density",
          arguments: ["dare_ties", "dare_linear"])
    func dareStatistics(id: String) throws {
        let (models, merges) = try Self.load()
        let (yaml, expected) = merges[id]!
        let got = try Self.run(yaml, models, seed: 3)
        let base = models["base"]!
        for (label, out) in [("mergekit", expected), ("steertool", got)] {
            var unchanged = 0, total = 0
            for (name, t) in out where base[name]!.count > 64 {
                for (x, y) in zip(t.scalars, base[name]!.scalars) { if x == y { unchanged += 1 }; total += 1 }
            }
            let p = 0.25, sigma = (Double(total) * p * (1 - p)).squareRoot()
            #expect(abs(Double(unchanged) - p * Double(total)) < 4 * sigma, "\(label) \(id): \(unchanged)/\(total) unchanged")
        }
    }

    @Test("DARE's L1 rescale: the kept entries are scaled so ‖δ‖₁ is preserved (mergekit rescaled_masked_tensor)")
    func dareRescale() throws {
        var rng = SplitMix64(seed: 9)
        let t = Tensor.randomNormal([40, 30], seed: 4)
        let d = Sparsification.mergekitBernoulli(t, density: 0.3, rescale: true, rng: &rng)
        let l1 = { (x: Tensor) in x.scalars.reduce(0.0) { $0 + Double(abs($1)) } }
        #expect(abs(l1(d) - l1(t)) / l1(t) < 1e-5)   // float32 sums of 1200 terms
        let ratio = zip(d.scalars, t.scalars).compactMap { $0 != 0 ? $0 / $1 : nil }
        #expect(Set(ratio.map { ($0 * 1e4).rounded() }).count == 1)   // one common factor
    }

    @Test("gradients and conditional parameters resolve like mergekit's evaluate_setting")
    func parameters() throws {
        let c = try MergekitConfig(yaml: """
            merge_method: slerp
            base_model: a
            models: [{model: a}, {model: b}]
            parameters:
              t:
                - filter: self_attn
                  value: [0, 0.5, 1]
                - value: 0.25
            """)
        let t = c.parameters["t"]!
        #expect(t.number(tensor: "model.layers.1.self_attn.q_proj.weight", t: 0.75) == 0.75)
        #expect(t.number(tensor: "model.layers.1.self_attn.q_proj.weight", t: 0.25) == 0.25)
        #expect(t.number(tensor: "model.layers.1.mlp.up_proj.weight", t: 0.75) == 0.25)
        #expect(CheckpointMerge.layerPosition(of: "model.layers.3.mlp.up_proj.weight", layerCount: 5) == 0.75)
        #expect(CheckpointMerge.layerPosition(of: "model.embed_tokens.weight", layerCount: 5) == 0)
    }

    @Test("configs steertool cannot honour are errors that name the key or method")
    func configErrors() throws {
        func message(_ yaml: String) -> String {
            do { _ = try MergekitConfig(yaml: yaml); return "" } catch { return "\(error)" }
        }
        #expect(message("merge_method: model_stock\nbase_model: a\nmodels: [{model: a}]").contains("model_stock"))
        #expect(message("merge_method: linear\nmodels: [{model: a}]\nslices: []").contains("slices"))
        #expect(message("merge_method: linear\nmodels: [{model: a, parameters: {weight: 1, gamma: 2}}]").contains("gamma"))
        #expect(message("merge_method: ties\nmodels: [{model: a}]").contains("base_model"))
        #expect(message("merge_method: linear\nmodels: [{model: a, lora: x}]").contains("lora"))
        #expect(message("merge_method: linear\nmodels: [{model: a}]\ndtype: int4").contains("int4"))
        #expect(message("merge_method: slerp\nbase_model: a\nmodels: [{model: a}, {model: b}, {model: c}]").contains("slerp"))
        #expect(message("models: [{model: a}]").contains("merge_method"))
    }

    @Test("bad inputs: a missing model, a missing tensor, mismatched shapes, a density outside (0, 1]")
    func inputErrors() throws {
        let a = ["w": Tensor.zeros(2, 2)], b = ["w": Tensor.zeros(2, 3)], none = ["v": Tensor.zeros(2, 2)]
        let yaml = "merge_method: task_arithmetic\nbase_model: a\nmodels: [{model: b, parameters: {weight: 1}}]"
        #expect(throws: MergeError.self) { _ = try Self.run(yaml, ["a": a]) }
        #expect(throws: MergeError.self) { _ = try Self.run(yaml, ["a": a, "b": none]) }
        #expect(throws: MergeError.self) { _ = try Self.run(yaml, ["a": a, "b": b]) }
        let ties = "merge_method: ties\nbase_model: a\nmodels: [{model: b, parameters: {weight: 1, density: 1.5}}]"
        #expect(throws: MergeError.self) { _ = try Self.run(ties, ["a": a, "b": a]) }
        let noWeight = "merge_method: task_arithmetic\nbase_model: a\nmodels: [{model: b}]"
        #expect(throws: MergeError.self) { _ = try Self.run(noWeight, ["a": a, "b": a]) }
    }
}
