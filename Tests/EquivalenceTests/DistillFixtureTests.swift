import Equivalence
import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// Sequential linear distillation into the fixture base (`tiny/base`, trained on corpus A) of
/// the full fine-tune (`tiny/finetuned`) and of the PEFT LoRA (`tiny/lora`), both trained on
/// corpus B, against the PyTorch reference implementation in
/// `fixtures/generate/extra/equivalence.py` (fixtures/equivalence/distill.json).
@Suite struct DistillFixtureTests {
    struct Reference {
        let calibration: [[Int]], evaluation: [[Int]]
        let lossBase: Double, lossFT: Double
        let ranks: [Int: (recovered: Double, heldIn: [Double])]
    }

    static func reference(_ pair: String) throws -> Reference {
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("equivalence/distill.json")))) as? [String: Any])
        let ids = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("corpus/b.heldout.tokens.json")))) as? [Int])
        let cal = try #require(json["calibration"] as? [String: Any]), ev = try #require(json["evaluation"] as? [String: Any])
        func seqs(_ d: [String: Any]) throws -> [[Int]] {
            let off = try #require(d["offset"] as? Int), n = try #require(d["sequences"] as? Int), len = try #require(d["length"] as? Int)
            return (0..<n).map { Array(ids[(off + $0 * len)..<(off + ($0 + 1) * len)]) }
        }
        let entry = try #require(json[pair] as? [String: Any])
        var ranks: [Int: (Double, [Double])] = [:]
        for (k, v) in try #require(entry["ranks"] as? [String: [String: Any]]) {
            ranks[try #require(Int(k))] = (try #require(v["recovered_fraction"] as? Double), try #require(v["heldin_relative_error"] as? [Double]))
        }
        return Reference(calibration: try seqs(cal), evaluation: try seqs(ev), lossBase: try #require(entry["loss_base"] as? Double),
                         lossFT: try #require(entry["loss_ft"] as? Double), ranks: ranks)
    }

    // Losses: float32 runtime vs float64 transformers over ~1000 tokens: 1e-4 relative.
    // Recovered fraction: the acceptance criterion, at least the reference's minus 0.02.
    // We also hold it to the reference's value within 1e-3 (measured ~1e-7): the same
    // algorithm in float32 against float64. Per-layer held-in errors: 1e-3 absolute.
    @Test(arguments: ["finetuned", "lora"], [4, 16, 64]) func sequentialLinearMatchesPyTorchReference(pair: String, rank: Int) throws {
        let ref = try Self.reference(pair)
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let ft = pair == "lora" ? try base.adding(LoRAWeights.load(directory: Fixtures.path("tiny/lora")))
                                : try LlamaModel.load(path: Fixtures.path("tiny/finetuned"))
        let lb = try ModelEvaluation.loss(base, sequences: ref.evaluation)
        let lf = try ModelEvaluation.loss(ft, sequences: ref.evaluation)
        #expect(abs(lb - ref.lossBase) < 1e-4 * ref.lossBase && abs(lf - ref.lossFT) < 1e-4 * ref.lossFT, "\(lb) \(lf)")
        let res = try Distiller.distill(base: base, finetuned: ft, sequences: ref.calibration,
                                        options: .init(method: .sequential, fit: .init(kind: .linear, rank: .fixed(rank)),
                                                       heldOutFraction: 0, diagnostics: false))
        // The full fine-tune also changed embedding, final norm and lm_head: reported, not
        // steered; the LoRA changed only block projections.
        #expect(Set(res.nonBlockChanges.keys) == (pair == "lora" ? [] : ["embedding", "final_norm", "lm_head"]))
        #expect(res.nonBlockChanges.values.allSatisfy { $0 > 0 && $0.isFinite })
        let ls = try ModelEvaluation.loss(try base.adding(res.adapter, name: "distilled"), sequences: ref.evaluation)
        let recovered = ModelEvaluation.recoveredFraction(baseLoss: lb, finetunedLoss: lf, steeredLoss: ls)
        let r = try #require(ref.ranks[rank])
        #expect(recovered >= r.recovered - 0.02, "rank \(rank): recovered \(recovered) vs reference \(r.recovered)")
        #expect(abs(recovered - r.recovered) < 1e-3)
        for (l, e) in zip(res.layers, r.heldIn) {
            #expect(abs(Double(l.fit.heldInRelativeError) - e) < 1e-3, "rank \(rank) layer \(l.layer): \(l.fit.heldInRelativeError) vs \(e)")
        }
        print("tiny \(pair), sequential linear rank \(rank): recovered \(recovered) (reference \(r.recovered)), params \(res.parameterCount) (\(res.parameterFraction))")
    }
}
