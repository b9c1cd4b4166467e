/// Byte-pair encoding over token ids: a word starts as one id per symbol and adjacent pairs merge
/// by increasing rank (lowest rank first, leftmost on ties) until no ranked pair is left — HF
/// tokenizers' `BPE` and llama.cpp's BPE session give the same result.
public struct BytePairModel: Sendable {
    /// A merge: the rank (position in the merges list, lower merges first) and the merged id.
    public struct Merge: Sendable, Equatable {
        /// Position in the merges list.
        public var rank: Int32
        /// The id of the concatenated token.
        public var merged: Int32
    }

    /// `(left << 32) | right` → merge.
    let merges: MergeTable

    /// A model with the given merges (pairs of ids, in rank order) and the id of each pair's
    /// concatenation. A pair listed twice keeps its first (lowest) rank.
    public init(mergePairs: [(left: Int, right: Int, merged: Int)]) {
        var table = MergeTable(capacity: mergePairs.count)
        for (rank, m) in mergePairs.enumerated() {
            let key = UInt64(UInt32(truncatingIfNeeded: m.left)) << 32 | UInt64(UInt32(truncatingIfNeeded: m.right))
            table.insertIfAbsent(key, Merge(rank: Int32(truncatingIfNeeded: rank), merged: Int32(truncatingIfNeeded: m.merged)))
        }
        self.merges = table
    }

    /// Number of distinct merges.
    public var mergeCount: Int { merges.count }

    /// The merge of `left` followed by `right`, if ranked.
    @inline(__always)
    public func merge(_ left: Int32, _ right: Int32) -> Merge? {
        merges.find(UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right)))
    }

    /// Applies the merges to `symbols` (ids, in order) and appends the resulting ids to `out`.
    public func encode(_ symbols: [Int32], into out: inout [Int]) {
        if symbols.count <= 1 {
            for s in symbols { out.append(Int(s)) }
            return
        }
        if symbols.count <= 48 {
            encodeShort(symbols, into: &out)
        } else {
            encodeLong(symbols, into: &out)
        }
    }

    /// Quadratic scan for short words (no allocation beyond the symbol array).
    private func encodeShort(_ input: [Int32], into out: inout [Int]) {
        var symbols = input
        merges.withLookup { lookup in
            while symbols.count > 1 {
                var bestRank = Int32.max
                var bestIndex = -1
                var bestMerged: Int32 = 0
                var left = symbols[0]
                for i in 0..<(symbols.count - 1) {
                    let right = symbols[i + 1]
                    if let m = lookup.find(UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))), m.rank < bestRank {
                        bestRank = m.rank
                        bestIndex = i
                        bestMerged = m.merged
                    }
                    left = right
                }
                if bestIndex < 0 { break }
                symbols[bestIndex] = bestMerged
                symbols.remove(at: bestIndex + 1)
            }
        }
        for s in symbols { out.append(Int(s)) }
    }

    /// Priority-queue merge for long words: O(n log n).
    private func encodeLong(_ input: [Int32], into out: inout [Int]) {
        let n = input.count
        var ids = input
        var prev = [Int](0..<n).map { $0 - 1 }
        var next = [Int](1...n)
        next[n - 1] = -1
        var alive = [Bool](repeating: true, count: n)
        // Heap entries: (rank, left index, left id, right id) — stale entries are skipped.
        var heap = PriorityHeap<MergeCandidate>()
        for i in 0..<(n - 1) {
            if let m = merge(ids[i], ids[i + 1]) {
                heap.push(.init(rank: m.rank, left: i, leftID: ids[i], rightID: ids[i + 1]))
            }
        }
        while let e = heap.pop() {
            let l = e.left
            guard alive[l], ids[l] == e.leftID else { continue }
            let r = next[l]
            guard r >= 0, ids[r] == e.rightID, let m = merge(ids[l], ids[r]), m.rank == e.rank else { continue }
            ids[l] = m.merged
            alive[r] = false
            next[l] = next[r]
            if next[r] >= 0 { prev[next[r]] = l }
            let p = prev[l]
            if p >= 0, let pm = merge(ids[p], ids[l]) {
                heap.push(.init(rank: pm.rank, left: p, leftID: ids[p], rightID: ids[l]))
            }
            let q = next[l]
            if q >= 0, let qm = merge(ids[l], ids[q]) {
                heap.push(.init(rank: qm.rank, left: l, leftID: ids[l], rightID: ids[q]))
            }
        }
        var i = 0
        while i >= 0 {
            out.append(Int(ids[i]))
            i = next[i]
        }
    }
}

/// Open-addressing hash table from a pair key to its merge (the merge lookup is the inner loop of
/// BPE; a multiplicative hash is enough for keys that are pairs of small ids).
struct MergeTable: Sendable {
    private var keys: [UInt64]
    private var values: [BytePairModel.Merge]
    private let shift: UInt64
    private let mask: Int
    private(set) var count = 0
    fileprivate static let empty = UInt64.max

    init(capacity: Int) {
        var bits = 4
        while (1 << bits) < max(16, capacity * 2) { bits += 1 }
        keys = [UInt64](repeating: Self.empty, count: 1 << bits)
        values = [BytePairModel.Merge](repeating: .init(rank: 0, merged: 0), count: 1 << bits)
        shift = UInt64(64 - bits)
        mask = (1 << bits) - 1
    }

    @inline(__always) private func slot(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    mutating func insertIfAbsent(_ key: UInt64, _ value: BytePairModel.Merge) {
        precondition(key != Self.empty && count < mask, "MergeTable: reserved key or full")
        var i = slot(key)
        while keys[i] != Self.empty {
            if keys[i] == key { return }
            i = (i + 1) & mask
        }
        keys[i] = key
        values[i] = value
        count += 1
    }

    @inline(__always) func find(_ key: UInt64) -> BytePairModel.Merge? {
        withLookup { $0.find(key) }
    }

    /// Lookups through raw buffers, valid inside `body` (no reference counting per lookup).
    struct Lookup {
        let keys: UnsafeBufferPointer<UInt64>
        let values: UnsafeBufferPointer<BytePairModel.Merge>
        let shift: UInt64
        let mask: Int

        @inline(__always) func find(_ key: UInt64) -> BytePairModel.Merge? {
            var i = Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
            while true {
                let e = keys[i]
                if e == key { return values[i] }
                if e == MergeTable.empty { return nil }
                i = (i + 1) & mask
            }
        }
    }

    @inline(__always) func withLookup<R>(_ body: (Lookup) -> R) -> R {
        keys.withUnsafeBufferPointer { k in
            values.withUnsafeBufferPointer { v in
                body(Lookup(keys: k, values: v, shift: shift, mask: mask))
            }
        }
    }
}

/// A candidate merge of the pair (left, next) in the BPE merge queue: lowest rank first,
/// leftmost on ties; stale entries (ids changed since) are skipped when popped.
struct MergeCandidate: HeapOrdered {
    var rank: Int32
    var left: Int
    var leftID: Int32
    var rightID: Int32
    @inline(__always) static func precedes(_ a: MergeCandidate, _ b: MergeCandidate) -> Bool {
        a.rank < b.rank || (a.rank == b.rank && a.left < b.left)
    }
}
