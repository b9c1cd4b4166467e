import ArgumentParser
import Equivalence
import Formats
import Merge
import Runtime

/// `distill --method`: a closed-form fit (`DistillMethod`) or `kl`, the sequential closed form
/// followed by end-to-end KL training.
enum DistillMethodArgument: String, CaseIterable, ExpressibleByArgument {
    case firstOrder = "first-order", oracle, sequential, kl

    /// The closed-form method, or nil for `kl`.
    var closedForm: DistillMethod? { DistillMethod(rawValue: rawValue) }
}

/// `distill --kind`: the steering adapter's form (`AdapterKind`), or, with `--method kl` only,
/// `joint` (linear adapters trained with a down_proj LoRA) or `lora` (the LoRA alone).
enum DistillKindArgument: String, CaseIterable, ExpressibleByArgument {
    case vector, linear, silu, joint, lora

    /// The steering adapter kind, or nil for `joint` and `lora`.
    var adapterKind: AdapterKind? { AdapterKind(rawValue: rawValue) }
    /// Whether a LoRA is trained (`joint`, `lora`).
    var trainsLoRA: Bool { adapterKind == nil }
}

/// `fold --as`: a PEFT adapter of the folded delta, or the base with the delta merged in.
enum FoldOutputArgument: String, CaseIterable, ExpressibleByArgument {
    case lora, dense
}

extension LlamaConverter.OutputType: ExpressibleByArgument {}
extension MajoritySignMethod: ExpressibleByArgument {}
extension SteeringActivation: ExpressibleByArgument {}

/// `--layers a` or `--layers a-b`: 0-based, inclusive layers, checked against the model's count
/// once it is loaded.
struct LayerSpan: ExpressibleByArgument, Sendable {
    let first: Int
    let last: Int

    init?(argument: String) {
        let parts = argument.split(separator: "-", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 1 || parts.count == 2, let lo = parts.first ?? nil, let hi = parts.last ?? nil, lo >= 0, lo <= hi else { return nil }
        first = lo; last = hi
    }

    /// The layers, refused when they reach past a model of `count` layers.
    func layers(within count: Int) throws -> [Int] {
        guard last < count else { throw ValidationError("--layers \(first)-\(last) reaches past the model's layers 0...\(count - 1)") }
        return Array(first...last)
    }
}
