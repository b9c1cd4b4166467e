import Formats
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
