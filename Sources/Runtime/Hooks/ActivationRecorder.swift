import Tensors

/// Collects the activations at chosen sites across one or more forward calls: rows of later
/// calls (KV-cache decoding) are appended below earlier ones, so after generating, each site holds
/// `[all tokens so far, d]`. Chain its `hooks` after any hooks that change activations
/// (`otherHooks.chained(with: recorder.hooks)`) to record what flows on.
public final class ActivationRecorder {
    /// The sites recorded.
    public let sites: Set<HookSite>
    private var rows: [HookSite: [Float]] = [:]
    private var widths: [HookSite: Int] = [:]

    /// A recorder of `sites`, empty.
    public init(sites: Set<HookSite>) { self.sites = sites }

    /// One reading hook per recorded site.
    public var hooks: [HookSite: Hook] {
        var out: [HookSite: Hook] = [:]
        for site in sites {
            out[site] = Hook.read { x, context in
                self.widths[context.site] = x.columns
                self.rows[context.site, default: []].append(contentsOf: x.scalars)
            }
        }
        return out
    }

    /// The recorded `[tokens, d]` activation at `site`, or nil if nothing was recorded there.
    public func activation(at site: HookSite) -> Tensor? {
        guard let w = widths[site], let r = rows[site], w > 0 else { return nil }
        return Tensor(shape: [r.count / w, w], scalars: r)
    }

    /// Everything recorded, by site.
    public var activations: [HookSite: Tensor] {
        var out: [HookSite: Tensor] = [:]
        for site in widths.keys { out[site] = activation(at: site) }
        return out
    }

    /// Forgets all recorded rows.
    public func reset() {
        rows = [:]; widths = [:]
    }
}
