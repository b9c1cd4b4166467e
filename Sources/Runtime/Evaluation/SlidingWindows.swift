/// The window plan of transformers' perplexity guide ("Perplexity of fixed-length models"):
/// windows of at most `context` tokens advancing by `stride`; each window scores only the tokens
/// not scored by the previous window, so every token after the first is scored exactly once
/// with as much left context as the window allows.
public struct SlidingWindowPlan: Sendable, Equatable {
    /// One window: tokens `begin..<end` are fed; tokens `scoredFrom..<end` are scored, token t by
    /// the logits at position t − 1 (window-relative `t − 1 − begin`).
    public struct Window: Sendable, Equatable {
        public var begin: Int
        public var end: Int
        public var scoredFrom: Int
    }

    public let windows: [Window]

    /// Plans windows over a sequence of `count` tokens. `context` ≥ 2 and 1 ≤ `stride` ≤ `context`
    /// (preconditions: the CLI validates user input before calling).
    public init(count: Int, context: Int, stride: Int) {
        precondition(context >= 2 && stride >= 1 && stride <= context, "need context ≥ 2 and 1 ≤ stride ≤ context")
        var result: [Window] = []
        var previousEnd = 0
        var begin = 0
        while begin < count {
            let end = min(begin + context, count)
            let targetLength = end - previousEnd
            // transformers masks labels before end − targetLength; the window's first token is never
            // a target because labels are shifted inside the model.
            let scoredFrom = max(begin + 1, end - targetLength)
            if scoredFrom < end { result.append(Window(begin: begin, end: end, scoredFrom: scoredFrom)) }
            previousEnd = end
            if end == count { break }
            begin += stride
        }
        windows = result
    }

    /// Number of scored tokens (count − 1 for a non-empty sequence).
    public var scoredTokenCount: Int { windows.reduce(0) { $0 + $1.end - $1.scoredFrom } }
}
