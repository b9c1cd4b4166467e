/// Zero-initialised float buffers freed together when the arena goes: the scratch of one pass
/// (block buffers, tapes, gradient buffers).
final class FloatArena {
    private var blocks: [UnsafeMutablePointer<Float>] = []

    /// A zeroed buffer of `n` floats (at least one).
    func make(_ n: Int) -> UnsafeMutablePointer<Float> {
        let p = UnsafeMutablePointer<Float>.allocate(capacity: max(n, 1))
        p.initialize(repeating: 0, count: max(n, 1))
        blocks.append(p)
        return p
    }

    deinit { for p in blocks { p.deallocate() } }
}
