import Foundation
import Testing
import Tensors
import TestSupport
import Formats

/// PEFT adapters recorded by PEFT itself; the merged weights of `reference/merged-lora*.safetensors`
/// come from PEFT's `merge_and_unload`, so base + s·B·A with our rank/alpha/scale resolution must
/// reproduce them.
@Suite struct PEFTAdapterTests {
    /// base + Σ s·B·A over the adapter, compared with PEFT's merged weights. Tolerance: relative
    /// 1e-6 per tensor (float32 products summed in a different order than torch's).
    func checkMerge(adapter: String, merged: String) throws {
        let a = try PEFTAdapter.load(directory: Fixtures.path(adapter))
        let base = try Checkpoint(path: Fixtures.path("tiny/base"))
        let ref = try SafetensorsFile(path: Fixtures.path(merged))
        #expect(!a.modules.isEmpty)
        for m in a.modules {
            let w = try base.tensor(named: m.name + ".weight")
            let want = try ref.tensor(named: m.name + ".weight")
            let got = w + m.delta
            #expect(relativeError(got.scalars, want.scalars) < 1e-6, "\(m.name)")
        }
    }

    @Test func loraMergesLikePEFT() throws {
        try checkMerge(adapter: "tiny/lora", merged: "reference/merged-lora.safetensors")
        let a = try PEFTAdapter.load(directory: Fixtures.path("tiny/lora"))
        #expect(a.modules.count == 4 * 7)
        #expect(a.modules.allSatisfy { $0.rank == 8 && $0.scale == 2 })
    }

    /// rank_pattern / alpha_pattern / layers_to_transform / rsLoRA resolved as PEFT does: the
    /// saved tensor shapes (written by PEFT) must equal our per-module ranks, and the merge must match.
    @Test func patternsMergeLikePEFT() throws {
        try checkMerge(adapter: "tiny/lora-patterns", merged: "reference/merged-lora-patterns.safetensors")
        let a = try PEFTAdapter.load(directory: Fixtures.path("tiny/lora-patterns"))
        #expect(Set(a.modules.compactMap(\.layer)) == Set(a.config.layersToTransform ?? []))
    }

    @Test func writeThenReadBack() throws {
        let a = try PEFTAdapter.load(directory: Fixtures.path("tiny/lora-patterns"))
        let dir = TestFiles.temporaryFolder()
        try a.write(to: dir)
        let b = try PEFTAdapter.load(directory: dir)
        #expect(b.modules == a.modules)
        #expect(b.config == a.config)
        #expect(throws: FormatsError.self) { try a.write(to: dir) }
    }

    @Test func configErrors() {
        #expect(throws: FormatsError.self) { try PEFTAdapterConfig(json: Data(#"{"peft_type":"IA3","r":4,"lora_alpha":8}"#.utf8)) }
        #expect(throws: FormatsError.self) { try PEFTAdapterConfig(json: Data(#"{"r":0,"lora_alpha":8}"#.utf8)) }
        #expect(throws: FormatsError.self) { try PEFTAdapterConfig(json: Data(#"{"r":4,"lora_alpha":8,"rank_pattern":{"q_proj":"x"}}"#.utf8)) }
        #expect(throws: FormatsError.self) { try PEFTAdapterConfig(json: Data("[".utf8)) }
    }
}
