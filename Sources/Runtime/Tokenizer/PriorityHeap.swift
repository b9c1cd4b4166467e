/// An element order for `PriorityHeap`: `precedes(a, b)` when `a` must leave the heap first.
protocol HeapOrdered {
    static func precedes(_ a: Self, _ b: Self) -> Bool
}

/// Binary heap (array-backed) that pops the element that precedes all others; the merge queue
/// of both BPE tokenizers (lowest-rank pair first, or highest-score bigram first).
struct PriorityHeap<Element: HeapOrdered> {
    private var items: [Element] = []

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if Element.precedes(items[i], items[parent]) { items.swapAt(i, parent); i = parent } else { break }
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        let top = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < items.count && Element.precedes(items[l], items[m]) { m = l }
                if r < items.count && Element.precedes(items[r], items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
