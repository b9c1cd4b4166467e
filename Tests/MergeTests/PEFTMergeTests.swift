import Foundation
import Merge
import Tensors
import TestSupport
import Testing

/// LoRA → weights against PEFT 0.21.2 `merge_and_unload` (fixtures/merge/peft-merge.json; the
/// generator asserted that the merged model's logits equal the unmerged PEFT model's).
@Suite struct PEFTMergeTests {
    @Test("merge_and_unload: plain, rsLoRA, rank/alpha patterns, layers_to_transform, fan_in_fan_out",
          arguments: ["plain", "rslora", "patterns", "patterns_all_layers", "fan_in_fan_out"])
    func mergeMatchesPEFT(variant: String) throws {
        let root = try MergeFixtures.load("peft-merge.json")
        let v = root[variant] as! [String: Any]
        let configData = try JSONSerialization.data(withJSONObject: v["adapter_config"]!)
        let config = try PEFTLoRAConfig(json: configData)
        let adapter = try PEFTLoRAAdapter(config: config, tensors: try MergeFixtures.tensors(v["adapter"]))
        let base = try MergeFixtures.tensors(v["base"])
        let expected = try MergeFixtures.tensors(v["merged"])
        #expect(!adapter.modules.isEmpty)
        var seen = 0
        var changed = 0
        try adapter.merge(into: InMemoryTensorSource(base)) { name, t in
            seen += 1
            guard let ref = expected[name] else { return }
            if t != base[name]! { changed += 1 }
            #expect(t.shape == ref.shape, "\(name)")
            // W + s·B·A in float32 with the same operand order as PEFT: 1e-6 relative (the
            // issue's acceptance bound).
            let err = relativeError(t.scalars, ref.scalars)
            #expect(err < 1e-6, "\(variant) \(name): \(err)")
        }
        #expect(seen == base.count)
        #expect(changed == adapter.modules.count)
    }

    @Test("rank_pattern and alpha_pattern resolve as PEFT's get_pattern_key")
    func patterns() throws {
        let json = #"""
            {"peft_type": "LORA", "r": 8, "lora_alpha": 16, "use_rslora": false,
             "rank_pattern": {"model.layers.1.self_attn.q_proj": 2, "q_proj": 4},
             "alpha_pattern": {"layers.0.mlp.down_proj": 3}}
            """#
        let c = try PEFTLoRAConfig(json: Data(json.utf8))
        #expect(c.rank(forModule: "model.layers.1.self_attn.q_proj") == 2)   // first key in file order
        #expect(c.rank(forModule: "model.layers.0.self_attn.q_proj") == 4)
        #expect(c.rank(forModule: "model.layers.0.self_attn.k_proj") == 8)
        #expect(c.rank(forModule: "model.layers.0.self_attn.xq_proj") == 8)  // must match a whole dotted suffix
        #expect(c.alpha(forModule: "model.layers.0.mlp.down_proj") == 3)
        #expect(c.alpha(forModule: "model.layers.10.mlp.down_proj") == 16)
        #expect(c.scaling(forModule: "model.layers.0.mlp.down_proj") == 3.0 / 8.0)
        let rs = try PEFTLoRAConfig(json: Data(#"{"r": 4, "lora_alpha": 6, "use_rslora": true}"#.utf8))
        #expect(rs.scaling(forModule: "x") == Float(6.0 / 2.0))
    }

    @Test("bad adapters are refused: wrong rank, missing factor, missing base weight, shape mismatch, non-LoRA")
    func errors() throws {
        let cfg = PEFTLoRAConfig(r: 2, loraAlpha: 4)
        let a = Tensor.randomNormal([2, 4], seed: 1), b = Tensor.randomNormal([3, 2], seed: 2)
        let p = "base_model.model.model.layers.0.self_attn.q_proj"
        #expect(throws: MergeError.self) { try PEFTLoRAAdapter(config: PEFTLoRAConfig(r: 3, loraAlpha: 4), tensors: [p + ".lora_A.weight": a, p + ".lora_B.weight": b]) }
        #expect(throws: MergeError.self) { try PEFTLoRAAdapter(config: cfg, tensors: [p + ".lora_A.weight": a]) }
        #expect(throws: MergeError.self) { try PEFTLoRAAdapter(config: cfg, tensors: [p + ".lora_B.weight": b]) }
        let adapter = try PEFTLoRAAdapter(config: cfg, tensors: [p + ".lora_A.weight": a, p + ".lora_B.weight": b])
        var emitted = 0
        #expect(throws: MergeError.self) {
            try adapter.merge(into: InMemoryTensorSource(["model.norm.weight": Tensor(vector: [1])])) { _, _ in emitted += 1 }
        }
        #expect(emitted == 0)
        #expect(throws: MergeError.self) {
            try adapter.merge(into: InMemoryTensorSource(["model.layers.0.self_attn.q_proj.weight": Tensor.zeros(4, 3)])) { _, _ in }
        }
        #expect(throws: MergeError.self) { try PEFTLoRAConfig(json: Data(#"{"peft_type": "IA3", "r": 4}"#.utf8)) }
        #expect(throws: MergeError.self) { try PEFTLoRAConfig(json: Data(#"{"peft_type": "LORA", "r": 0}"#.utf8)) }
        #expect(throws: MergeError.self) { try PEFTLoRAConfig(json: Data("[1]".utf8)) }
    }
}
