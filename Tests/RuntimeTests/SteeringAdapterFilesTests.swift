import Foundation
import Formats
import Runtime
import Tensors
import TestSupport
import Testing

/// The authors' adapter import (fixtures/merge/authors: torch.save'd state dict and the logits of
/// a PyTorch forward-hook implementation), control-vector export/import and steering files.
@Suite struct SteeringAdapterFilesTests {
    @Test("authors' pytorch_model.bin imports as D = downᵀ, U = α·up and steers like their forward hook")
    func authorsImport() throws {
        let ref = try MergeFixtures.load("authors.json")
        let alpha = (ref["alpha"] as! NSNumber).floatValue
        let adapter = try AuthorsAdapterImport.load(path: Fixtures.path("merge/authors/pytorch_model.bin"), alpha: alpha, activation: .silu)
        let expected = ref["expected"] as! [String: Any]
        #expect(adapter.layers.keys.sorted() == expected.keys.compactMap(Int.init).sorted())
        for (l, e) in expected {
            let t = try MergeFixtures.tensors(e)
            let layer = try #require(adapter.layers[Int(l)!])
            #expect(layer.down == t["down"], "layer \(l) D")   // a transpose: exact
            #expect(relativeError(layer.up!.scalars, t["up"]!.scalars) < 1e-7, "layer \(l) U")
            #expect(layer.bias == nil)
        }
        var model = try LlamaModel.load(path: Fixtures.path("merge/authors"))
        let tokens = (ref["tokens"] as! [NSNumber]).map(\.intValue)
        let plain = try model.forward(tokens: tokens).logits
        try model.add(adapter, name: "authors")
        let steered = try model.forward(tokens: tokens).logits
        // float32 forward passes in different operation orders: 1e-4 relative (the bound)
        let refPlain = try MergeFixtures.tensor(ref["plain_logits"]), refSteered = try MergeFixtures.tensor(ref["steered_logits"])
        #expect(relativeError(plain.scalars, refPlain.scalars) < 1e-4)
        #expect(relativeError(steered.scalars, refSteered.scalars) < 1e-4)
        #expect(relativeError(refSteered.scalars, refPlain.scalars) > 1e-3)   // the adapter matters
    }

    @Test("authors' layout errors: missing up, bias present, no adapters")
    func authorsErrors() throws {
        let down = Tensor.randomNormal([2, 4], seed: 1), up = Tensor.randomNormal([4, 2], seed: 2)
        #expect(throws: SteeringAdapterError.self) { try AuthorsAdapterImport.adapter(from: ["adapters.layer0_block.down.weight": down], alpha: 1, activation: .silu) }
        #expect(throws: SteeringAdapterError.self) {
            try AuthorsAdapterImport.adapter(from: ["adapters.layer0_block.down.weight": down, "adapters.layer0_block.up.weight": up,
                                                   "adapters.layer0_block.up.bias": Tensor(vector: [0, 0, 0, 0])], alpha: 1, activation: .silu)
        }
        #expect(throws: SteeringAdapterError.self) { try AuthorsAdapterImport.adapter(from: ["model.norm.weight": up], alpha: 1, activation: .silu) }
        #expect(throws: SteeringAdapterError.self) {
            try AuthorsAdapterImport.adapter(from: ["adapters.layer0_block.down.weight": down, "adapters.layer0_block.up.weight": down], alpha: 1, activation: .silu)
        }
        #expect(AuthorsAdapterImport.parse("model.adapters.layer12_block.up.weight")! == (12, "up"))
        #expect(AuthorsAdapterImport.parse("adapters.layer1_block.upx.weight") == nil)
    }

    @Test("control vector: vector adapter → GGUF → adapter is exact; linear kinds and layer 0 are refused")
    func controlVectorRoundTrip() throws {
        let dir = NSTemporaryDirectory() + "steertool-cv-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = SteeringAdapter(layers: [1: SteeringLayer(bias: .randomNormal([8], seed: 1)), 3: SteeringLayer(bias: .randomNormal([8], seed: 2))], scale: 0.5)
        try SteeringFiles.controlVector(from: a).write(to: dir + "/cv.gguf")
        let back = SteeringAdapter(controlVector: try ControlVectorFile.load(path: dir + "/cv.gguf"))
        #expect(back.layers.keys.sorted() == [1, 3])
        for l in [1, 3] { #expect(back.layers[l]!.bias!.scalars == a.layers[l]!.bias!.scalars.map { $0 * 0.5 }) }
        let g = try GGUFFile(path: dir + "/cv.gguf")
        #expect(g.architecture == "controlvector")
        #expect(g.tensorNames.sorted() == ["direction.1", "direction.3"])
        let linear = SteeringAdapter(layers: [1: SteeringLayer(down: .randomNormal([8, 1], seed: 3), up: .randomNormal([8, 1], seed: 4))])
        #expect(throws: SteeringAdapterError.self) { try SteeringFiles.controlVector(from: linear) }
        #expect(throws: SteeringAdapterError.self) { try SteeringFiles.controlVector(from: SteeringAdapter(layers: [0: SteeringLayer(bias: .randomNormal([8], seed: 5))])) }
        #expect(throws: SteeringAdapterError.self) { try SteeringFiles.controlVector(from: SteeringAdapter(site: .mlpOutput, layers: a.layers)) }
    }

    @Test("steering file round trip keeps kind, activation and tensors (scale folded in)")
    func steeringFileRoundTrip() throws {
        let dir = NSTemporaryDirectory() + "steertool-sf-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let a = SteeringAdapter(activation: .silu, layers: [2: SteeringLayer(down: .randomNormal([6, 2], seed: 1), up: .randomNormal([6, 2], seed: 2), bias: .randomNormal([6], seed: 3))], scale: 2)
        let f = SteeringFiles.file(from: a, baseModel: "tiny", source: "test")
        #expect(f.kind == "nonlinear" && f.rank == 2)
        try f.write(to: dir + "/a.safetensors")
        let b = try SteeringAdapter.load(path: dir + "/a.safetensors")
        #expect(b.activation == .silu && b.site == .blockOutput && b.scale == 1)
        let h = Tensor.randomNormal([3, 6], seed: 4)
        let want = (2 as Float) * a.layers[2]!.shift(h, activation: .silu)
        #expect(relativeError(b.layers[2]!.shift(h, activation: .silu).scalars, want.scalars) < 1e-6)
    }
}
