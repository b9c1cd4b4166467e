import ArgumentParser
import Equivalence
import Foundation
import Formats
import Merge
import Runtime
import Tensors

/// `steertool distill --method kl`: the sequential closed-form adapter, then all layers trained
/// jointly on KL to the fine-tune (`Equivalence.KLDistiller`). Prints the training curve; the
/// report JSON adds `curve` (step, train_kl, heldout_kl, heldout_loss, recovered_fraction).
extension DistillCommand {
    func runKL(base baseModel: LlamaModel, finetuned ft: LlamaModel, calibration: [[Int]], fit: AdapterFitOptions) throws {
        guard kl.steps >= 0, kl.batch >= 1, kl.lr > 0, kl.lr.isFinite else { throw ValidationError("kl needs --steps ≥ 0, --batch ≥ 1, --lr > 0") }
        var calib = calibration
        let heldOutSeqs: [[Int]]
        if let evalTokens = kl.evalTokens {
            heldOutSeqs = try TokenListFile.load(path: evalTokens)
        } else {
            guard calib.count >= 2 else { throw ValidationError("--method kl needs --eval-tokens or at least 2 calibration sequences") }
            let n = max(1, calib.count / 5)
            heldOutSeqs = Array(calib.suffix(n))
            calib.removeLast(n)
        }
        let initial = DistillOptions(method: .sequential, fit: fit, layers: try layerList(baseModel.config.numHiddenLayers),
                                     heldOutFraction: heldOut, seed: seed, diagnostics: false)
        var options = KLDistillOptions(initial: initial, steps: kl.steps, batchSize: kl.batch, windowLength: sequenceLength,
                                       adam: AdamOptions(learningRate: kl.lr, clipNorm: 1, schedule: .cosine(totalSteps: max(kl.steps, 1), floor: 0.1)),
                                       seed: seed, evaluationInterval: kl.evalEvery)
        options.keepBest = kl.keepBest
        if kind.trainsLoRA {
            guard joint.loraRank >= 1, joint.projectEvery >= 0, joint.penalty >= 0 else { throw ValidationError("--kind \(kind.rawValue) needs --lora-rank ≥ 1, --project-every ≥ 0, --penalty ≥ 0") }
            options.joint = JointAdaptationOptions(loraRank: joint.loraRank, projectionInterval: joint.projectEvery, penalty: joint.penalty, seed: seed)
            options.joint?.weightOnly = kind == .lora
        }
        let tty = isatty(STDERR_FILENO) == 1
        print("step  train_kl  heldout_kl  heldout_loss  recovered  tokens/s")
        func f(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "-" }
        let result = try KLDistiller.distill(base: baseModel, finetuned: ft, calibration: calib, heldOut: heldOutSeqs, options: options) { p in
            if p.heldOutKL != nil {
                if tty { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
                print("\(p.step)  \(f(p.trainKL))  \(f(p.heldOutKL))  \(f(p.heldOutLoss))  \(f(p.recoveredFraction))  \(p.tokensPerSecond.map { String(format: "%.0f", $0) } ?? "-")")
                fflush(nil)   // each curve row reaches a log file or pipe as it is measured
            } else if tty {
                FileHandle.standardError.write(Data(String(format: "\rstep %d/%d  kl %.4f  %.0f tokens/s", p.step, kl.steps, p.trainKL ?? .nan, p.tokensPerSecond ?? 0).utf8))
            }
        }
        print(String(format: "held-out loss: base %.4f, fine-tune %.4f; parameters %d (%.4f%% of the model)", result.baseLoss, result.finetunedLoss,
                     result.parameterCount, 100 * result.parameterFraction))
        let measured = result.curve.filter { $0.heldOutKL != nil }
        if let first = measured.first?.heldOutKL, let last = measured.last?.heldOutKL, last > first {
            let note = kl.keepBest ? "kept step \(result.selectedStep)" : "lower --lr, or add --keep-best to keep the best evaluated step"
            let change = String(format: "%.4f (closed form) to %.4f", first, last)
            FileHandle.standardError.write(Data("warning: training raised the held-out KL from \(change); \(note)\n".utf8))
        }
        if kl.keepBest { print("kept the parameters of step \(result.selectedStep) (lowest held-out KL)") }
        for p in result.projections {
            print(String(format: "projection at step %d, layer %d: cosine(col D, col B_down) %.4f → %.4f", p.step, p.layer, p.cosineBefore, p.cosineAfter))
        }
        let curve: [JSONValue] = result.curve.map { p in
            func num(_ x: Double?) -> JSONValue { x.map { .double($0) } ?? .null }
            return .object([("step", .int(p.step)), ("train_kl", num(p.trainKL)), ("heldout_kl", num(p.heldOutKL)),
                            ("heldout_loss", num(p.heldOutLoss)), ("recovered_fraction", num(p.recoveredFraction)),
                            ("tokens_per_second", num(p.tokensPerSecond))])
        }
        var json = reportJSON(result.initial)
        if case var .object(fields) = json {
            fields = fields.map { $0.0 == "method" ? ("method", .string("kl")) : $0 }
            fields = fields.map { $0.0 == "parameters" ? ("parameters", .int(result.parameterCount)) : $0 }
            fields = fields.map { $0.0 == "parameter_fraction" ? ("parameter_fraction", .double(result.parameterFraction)) : $0 }
            fields.append(("steps", .int(kl.steps))); fields.append(("batch", .int(kl.batch))); fields.append(("lr", .float(kl.lr)))
            fields.append(("heldout_loss_base", .double(result.baseLoss))); fields.append(("heldout_loss_finetuned", .double(result.finetunedLoss)))
            fields.append(("curve", .array(curve)))
            fields.append(("selected_step", .int(result.selectedStep)))
            json = .object(fields)
        }
        let source = finetuned.map { "finetuned:\($0)" } ?? "lora:\(lora!)"
        let steeringFile = SteeringFiles.file(from: result.adapter, baseModel: base, source: source, report: json)
        try steeringFile.write(to: output, force: force)
        if let w = result.lora {
            if let loraOutput = joint.loraOutput { try PEFTAdapterFolder.write(w.peftModules, to: loraOutput, baseModel: base, force: force) }
            if let bundle = joint.bundle {
                try writeJointBundle(to: bundle, steering: steeringFile, lora: w, baseModel: base,
                                     details: ["base_model": base, "source": source, "lora_rank": String(joint.loraRank), "rank": String(rank ?? 0)],
                                     force: force)
                print("wrote joint bundle \(bundle) (lora/ + steering.safetensors)")
            }
        }
        if let report {
            let w = try AtomicFileWriter(path: report, force: force)
            try w.write(json.serialized(indent: 1) + "\n")
            try w.commit()
        }
    }
}
