import Formats
import Runtime
import Tensors
import TestSupport

/// One recorded transformers run: `tokens.<i>`, `logits.<i>`, `hidden.<i>.<l>` of
/// `fixtures/reference/<name>.safetensors` (see fixtures/README.md).
struct ReferenceRun {
    let tokens: [Int]
    let logits: Tensor
    let hidden: [Tensor]

    /// Every sequence recorded in `file` (relative to the fixtures folder), in index order.
    static func load(_ file: String, layers: Int) throws -> [ReferenceRun] {
        let f = try SafetensorsFile(path: Fixtures.path(file))
        var runs: [ReferenceRun] = []
        var i = 0
        while f.info("tokens.\(i)") != nil {
            let tokens = try f.tensor(named: "tokens.\(i)").scalars.map { Int($0) }
            let logits = try f.tensor(named: "logits.\(i)")
            let hidden = try (0..<layers).map { try f.tensor(named: "hidden.\(i).\($0)") }
            runs.append(ReferenceRun(tokens: tokens, logits: logits, hidden: hidden))
            i += 1
        }
        return runs
    }
}

extension ReferenceRun {
    /// Runs every sequence of `runs` through `model` in one packed pass
    /// (`ForwardOptions.sequenceLengths`) and returns the largest relative error
    /// (max|a − b| / max|b|) of each sequence's rows of the logits and block outputs against its
    /// own reference.
    static func packedError(model: LlamaModel, runs: [ReferenceRun]) throws -> Double {
        let lengths = runs.map(\.tokens.count)
        let r = try model.forward(tokens: runs.flatMap(\.tokens),
                                  options: ForwardOptions(blockOutputs: true, sequenceLengths: lengths))
        var worst = 0.0, offset = 0
        for run in runs {
            let rows = Array(offset..<(offset + run.tokens.count))
            offset += run.tokens.count
            worst = max(worst, maxAbsoluteDifferenceScaled(r.logits.gatherRows(rows).scalars, run.logits.scalars))
            for (l, ref) in run.hidden.enumerated() {
                worst = max(worst, maxAbsoluteDifferenceScaled(r.blockOutputs[l].gatherRows(rows).scalars, ref.scalars))
            }
        }
        return worst
    }
}
