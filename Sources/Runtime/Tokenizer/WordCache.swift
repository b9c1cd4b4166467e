/// Per-call cache of word → ids for BPE: a word seen before in the same text is not merged again.
/// Open addressing on a 64-bit FNV-1a hash of the word's bytes (verified against the stored
/// bytes); words and ids live in two arenas.
struct WordCache {
    private var slots: [Int32]          // entry index + 1, 0 = empty
    private var hashes: [UInt64] = []
    private var wordRanges: [(start: Int32, count: Int32)] = []
    private var idRanges: [(start: Int32, count: Int32)] = []
    private var wordBytes: [UInt8] = []
    private var ids: [Int32] = []
    private var mask: Int
    /// Bound on cached words (memory stays proportional to the text).
    static let maxEntries = 1 << 17

    init() {
        slots = [Int32](repeating: 0, count: 1024)
        mask = 1023
    }

    /// FNV-1a over the bytes.
    @inline(__always)
    static func hash(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        return h
    }

    @inline(__always) private func slot(_ hash: UInt64) -> Int { Int(truncatingIfNeeded: hash ^ (hash >> 29)) & mask }

    @inline(__always) private func matches(_ entry: Int, _ word: ArraySlice<UInt8>, _ hash: UInt64) -> Bool {
        guard hashes[entry] == hash else { return false }
        let r = wordRanges[entry]
        guard Int(r.count) == word.count else { return false }
        return wordBytes[Int(r.start)..<Int(r.start + r.count)].elementsEqual(word)
    }

    /// Appends the cached ids of `word` to `out`; false when not cached.
    @inline(__always)
    func append(_ word: ArraySlice<UInt8>, hash: UInt64, into out: inout [Int]) -> Bool {
        var i = slot(hash)
        while slots[i] != 0 {
            let e = Int(slots[i] - 1)
            if matches(e, word, hash) {
                let r = idRanges[e]
                for k in Int(r.start)..<Int(r.start + r.count) { out.append(Int(ids[k])) }
                return true
            }
            i = (i + 1) & mask
        }
        return false
    }

    /// Remembers the ids of `word` (once the cache is full, new words are not kept).
    mutating func insert(_ word: ArraySlice<UInt8>, hash: UInt64, ids newIDs: [Int]) {
        guard hashes.count < Self.maxEntries, wordBytes.count + word.count < Int(Int32.max),
              ids.count + newIDs.count < Int(Int32.max) else { return }
        if (hashes.count + 1) * 2 > slots.count { grow() }
        let e = hashes.count
        hashes.append(hash)
        wordRanges.append((Int32(wordBytes.count), Int32(word.count)))
        wordBytes.append(contentsOf: word)
        idRanges.append((Int32(ids.count), Int32(newIDs.count)))
        for id in newIDs { ids.append(Int32(truncatingIfNeeded: id)) }
        var i = slot(hash)
        while slots[i] != 0 { i = (i + 1) & mask }
        slots[i] = Int32(e + 1)
    }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: 0, count: size)
        mask = size - 1
        for (e, h) in hashes.enumerated() {
            var i = slot(h)
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = Int32(e + 1)
        }
    }
}
