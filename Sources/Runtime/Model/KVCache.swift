/// Keys and values of every layer for the positions processed so far, so a forward call can
/// process only new tokens. Per layer, keys and values are `[positions, kv_heads·head_dim]`
/// row-major, keys already rotated (RoPE). A forward call with a cache appends its tokens at
/// positions `count..<count+T`. Grows geometrically; not shared between threads.
public final class KVCache {
    /// Layers the cache was made for.
    public let layerCount: Int
    /// Width of one cached row, `kv_heads · head_dim`.
    public let rowWidth: Int
    /// Positions cached (the next token's position).
    public private(set) var count: Int = 0
    private(set) var capacity: Int = 0
    private var keys: [UnsafeMutablePointer<Float>] = []
    private var values: [UnsafeMutablePointer<Float>] = []

    /// An empty cache for `config`, with room for `capacity` positions before it grows.
    public init(config: LlamaConfig, capacity: Int = 256) {
        layerCount = config.numHiddenLayers
        rowWidth = config.numKeyValueHeads * config.headDim
        reserve(max(capacity, 1))
    }

    deinit {
        for p in keys { p.deallocate() }
        for p in values { p.deallocate() }
    }

    /// Whether this cache fits a model with `config`.
    public func fits(_ config: LlamaConfig) -> Bool {
        layerCount == config.numHiddenLayers && rowWidth == config.numKeyValueHeads * config.headDim
    }

    /// Forgets positions at and after `length` (e.g. to branch from a shared prompt).
    public func truncate(to length: Int) {
        precondition(length >= 0 && length <= count, "truncate(to: \(length)) with \(count) cached positions")
        count = length
    }

    /// Forgets everything.
    public func reset() { count = 0 }

    /// Ensures room for `positions` positions in total.
    func reserve(_ positions: Int) {
        guard positions > capacity else { return }
        let newCapacity = max(positions, capacity * 2)
        let (size, overflow) = newCapacity.multipliedReportingOverflow(by: rowWidth)
        precondition(!overflow, "KV cache size overflows")
        for l in 0..<layerCount {
            let k = UnsafeMutablePointer<Float>.allocate(capacity: max(size, 1))
            let v = UnsafeMutablePointer<Float>.allocate(capacity: max(size, 1))
            if l < keys.count {
                k.update(from: keys[l], count: count * rowWidth)
                v.update(from: values[l], count: count * rowWidth)
                keys[l].deallocate(); values[l].deallocate()
                keys[l] = k; values[l] = v
            } else {
                keys.append(k); values.append(v)
            }
        }
        capacity = newCapacity
    }

    /// Start of layer `l`'s key rows.
    func keyBase(_ l: Int) -> UnsafeMutablePointer<Float> { keys[l] }
    /// Start of layer `l`'s value rows.
    func valueBase(_ l: Int) -> UnsafeMutablePointer<Float> { values[l] }

    /// Marks `n` more positions as filled (after every layer has written them).
    func advance(by n: Int) {
        precondition(count + n <= capacity)
        count += n
    }

    /// Layer `l`'s cached keys `[count, kv_heads·head_dim]` (a copy, for inspection and tests).
    public func keys(layer l: Int) -> [Float] { Array(UnsafeBufferPointer(start: keys[l], count: count * rowWidth)) }
    /// Layer `l`'s cached values `[count, kv_heads·head_dim]` (a copy).
    public func values(layer l: Int) -> [Float] { Array(UnsafeBufferPointer(start: values[l], count: count * rowWidth)) }
}
