#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Tensors

/// Zero-initialised float buffers owned by one backward call, freed together.
final class BackpropArena {
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
