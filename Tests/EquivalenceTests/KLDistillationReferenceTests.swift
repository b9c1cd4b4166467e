import Equivalence
import Foundation
import Runtime
import Tensors
import Testing
import TestSupport

/// `KLDistiller` on the fixture pair (fixtures/tiny/base → fixtures/tiny/finetuned) against a
/// PyTorch implementation of the same training (same sequential closed-form init, Adam settings,
/// clipping, cosine schedule and SplitMix64 minibatch order), recorded by
/// fixtures/generate/extra/kl.py in fixtures/kl/training.json (run "test": the first 24
/// calibration windows of fixtures/kl/calib.json, rank 4, 30 steps; held-out set
/// fixtures/eval/tokens.json).
@Suite struct KLDistillationReferenceTests {
    struct Reference: Decodable {
        struct Point: Decodable { let step: Int; let heldout_kl: Double; let heldout_loss: Double; let recovered_fraction: Double }
        struct Run: Decodable { let name: String; let rank: Int; let steps: Int; let batch: Int; let lr: Float; let seed: UInt64; let windows: Int; let curve: [Point] }
        let heldout_loss_base: Double
        let heldout_loss_finetuned: Double
        let runs: [Run]
    }

    /// Runs steertool's training of `runName` in `file` (base → `finetuned`) with the recorded
    /// settings and checks what every run shares: held-out losses of base and fine-tune (f32
    /// forwards vs torch f32, 1e-4 relative) and the logged recovered fractions (same init and
    /// trajectory up to f32 rounding: measured ~1e-4, bounded by 0.005 at every logged step).
    /// Returns the logged points and the reference run.
    static func trainAndCompare(file: String, runName: String, finetuned: String, evaluationInterval: Int)
        throws -> (result: KLDistillationResult, logged: [KLTrainingPoint], run: Reference.Run) {
        let ref = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path(file))))
        let run = try #require(ref.runs.first { $0.name == runName })
        let windows = Array(try TokenListFile.load(path: Fixtures.path("kl/calib.json")).prefix(run.windows))
        let heldOut = try TokenListFile.load(path: Fixtures.path("eval/tokens.json"))
        let base = try LlamaModel.load(path: Fixtures.path("tiny/base"))
        let ft = try LlamaModel.load(path: Fixtures.path(finetuned))
        let initial = DistillOptions(method: .sequential, fit: AdapterFitOptions(kind: .linear, rank: .fixed(run.rank)),
                                     heldOutFraction: 0, diagnostics: false)
        let options = KLDistillOptions(initial: initial, steps: run.steps, batchSize: run.batch, windowLength: 128,
                                       adam: AdamOptions(learningRate: run.lr, clipNorm: 1, schedule: .cosine(totalSteps: run.steps, floor: 0.1)),
                                       seed: run.seed, evaluationInterval: evaluationInterval)
        let r = try KLDistiller.distill(base: base, finetuned: ft, calibration: windows, heldOut: heldOut, options: options)
        #expect(abs(r.baseLoss - ref.heldout_loss_base) <= 1e-4 * ref.heldout_loss_base)
        #expect(abs(r.finetunedLoss - ref.heldout_loss_finetuned) <= 1e-4 * ref.heldout_loss_finetuned)
        let mine = r.curve.filter { $0.recoveredFraction != nil }
        #expect(mine.map(\.step) == run.curve.map(\.step))
        for (a, b) in zip(mine, run.curve) {
            let rf = try #require(a.recoveredFraction)
            #expect(abs(rf - b.recovered_fraction) <= 0.005, "step \(a.step): recovered \(rf) vs PyTorch \(b.recovered_fraction)")
        }
        return (r, mine, run)
    }

    @Test func recoveredFractionMatchesPyTorchTraining() throws {
        let (_, mine, run) = try Self.trainAndCompare(file: "kl/training.json", runName: "test", finetuned: "tiny/finetuned",
                                                      evaluationInterval: 30)
        // The acceptance criterion: at least the reference minus 0.02, and training helps.
        let final = try #require(mine.last?.recoveredFraction), initial0 = try #require(mine.first?.recoveredFraction)
        #expect(final >= run.curve.last!.recovered_fraction - 0.02)
        #expect(final > initial0 + 0.1)
    }

    /// The target, on the pair where post-block steering can reach it:
    /// fixtures/tiny/finetuned-blocks is the same fine-tune with the embedding, final norm and
    /// lm_head frozen (the full fine-tune moves them by 31–43%, which no residual-stream adapter
    /// reproduces). Rank 12 (the largest rank within 2% of this d-64 model's parameters), 100
    /// steps: ≥ 0.9 of the fine-tune's held-out loss gain, the same curve as the PyTorch run in
    /// fixtures/kl/training-blocks.json (measured there 0.711 → 0.954 → 0.976), and well above the
    /// sequential closed form it starts from.
    @Test func blocksOnlyFineTuneReachesTheTargetWithinTwoPercent() throws {
        let (r, mine, run) = try Self.trainAndCompare(file: "kl/training-blocks.json", runName: "rank12",
                                                      finetuned: "tiny/finetuned-blocks", evaluationInterval: 50)
        let final = try #require(mine.last?.recoveredFraction), start = try #require(mine.first?.recoveredFraction)
        #expect(r.parameterFraction <= 0.02, "\(r.parameterFraction)")
        #expect(final >= 0.9, "recovered \(final)")
        #expect(final >= run.curve.last!.recovered_fraction - 0.02)
        #expect(final > start + 0.1, "kl \(final) vs sequential \(start)")
        print("finetuned-blocks, kl rank \(run.rank), \(run.steps) steps: recovered \(start) → \(final) at \(100 * r.parameterFraction)% of the parameters")
    }
}
