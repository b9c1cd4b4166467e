import Tensors

/// Where a hook is being called: the site and the absolute positions (0-based, counted from the
/// start of the sequence including cached tokens) of the activation's rows.
public struct HookContext: Sendable, Equatable {
    /// The site the hook runs at.
    public let site: HookSite
    /// Absolute positions of rows `0..<positions.count` of the activation (one sequence); for
    /// several sequences packed into one pass, the rows `0..<T` (each sequence's positions start
    /// at 0: see `sequences`).
    public let positions: Range<Int>
    /// Row ranges of the sequences in the activation: `[0..<T]` for one sequence, one range per
    /// sequence when a pass packs several (`ForwardOptions.sequenceLengths`).
    public let sequences: [Range<Int>]
    /// Per sequence, its prompt's length in tokens counted from position 0, when the pass says
    /// (`ForwardOptions.promptLengths`); nil when it does not.
    public let promptLengths: [Int]?

    /// A context (built by the forward pass); `sequences` nil means one sequence.
    public init(site: HookSite, positions: Range<Int>, sequences: [Range<Int>]? = nil, promptLengths: [Int]? = nil) {
        self.site = site; self.positions = positions
        self.sequences = sequences ?? [0..<positions.count]
        self.promptLengths = promptLengths
    }

    /// The rows holding a prompt's last token (`SteeringPositions.lastPromptRows`), or nil when
    /// the pass does not say where its prompts end.
    public var lastPromptRows: [Int]? {
        promptLengths.map {
            SteeringPositions.lastPromptRows(sequences: sequences, firstPosition: sequences.count == 1 ? positions.lowerBound : 0,
                                             promptLengths: $0)
        }
    }
}

/// A function called at one `HookSite` with the site's `[tokens, d]` activation (tokens as rows,
/// the rows of this forward call only; with a KV cache those are the new tokens). It may read the
/// activation or change it in place (typically add a shift); it must keep the shape, or the
/// forward pass throws `RuntimeError.hookChangedShape`. Not `Sendable`: hooks often capture local
/// state (recorders, counters); a forward pass calls them synchronously on its own thread.
public struct Hook {
    /// The body: activation in/out, and where it is.
    public let body: (inout Tensor, HookContext) throws -> Void

    /// A hook running `body`.
    public init(_ body: @escaping (inout Tensor, HookContext) throws -> Void) { self.body = body }

    /// A hook that only reads the activation.
    public static func read(_ observe: @escaping (Tensor, HookContext) throws -> Void) -> Hook {
        Hook { x, context in try observe(x, context) }
    }

    /// Adds `scale · v` to every row; `v` is `[d]` (or `[1, d]`).
    public static func add(_ v: Tensor, scale: Float = 1) -> Hook {
        let vector = v.scalars.map { $0 * scale }
        return Hook { x, context in
            guard x.rank == 2, x.columns == vector.count else {
                throw RuntimeError.invalidArgument(
                    "hook at \(context.site): vector of width \(vector.count) for activation \(x.shape)")
            }
            x = x.addingToEachRow(vector)
        }
    }

    /// Runs `hooks` in order on the same activation.
    public static func sequence(_ hooks: [Hook]) -> Hook {
        if hooks.count == 1 { return hooks[0] }
        return Hook { x, context in
            for h in hooks { try h.body(&x, context) }
        }
    }

    /// Calls the body and checks that the shape was kept.
    func callAsFunction(_ x: inout Tensor, _ context: HookContext) throws {
        let before = x.shape
        try body(&x, context)
        guard x.shape == before else {
            throw RuntimeError.hookChangedShape(site: context.site, expected: before.dims, found: x.shape.dims)
        }
    }
}

extension Dictionary where Key == HookSite, Value == Hook {
    /// Both hook sets; at a site present in both, `self`'s hook runs first, then `other`'s.
    public func chained(with other: [HookSite: Hook]) -> [HookSite: Hook] {
        merging(other) { first, second in Hook.sequence([first, second]) }
    }
}
