/// A binary min-heap ordered by `precedes` (the simulator's event queue, the monitor runner's
/// wake-ups). Elements that compare equal come out in no particular order: callers that need
/// insertion order put a sequence number into the comparison.
public struct MinHeap<Element> {
    @usableFromInline var items: [Element] = []
    @usableFromInline let precedes: @Sendable (Element, Element) -> Bool

    public init(by precedes: @escaping @Sendable (Element, Element) -> Bool) {
        self.precedes = precedes
    }

    @inlinable public var isEmpty: Bool { items.isEmpty }
    @inlinable public var count: Int { items.count }
    /// The first element, without removing it.
    @inlinable public var peek: Element? { items.first }

    // Both directions move a "hole" instead of swapping: one element copy per level instead of
    // three (the monitor runner pops a thousand wake-ups a second).
    @inlinable public mutating func push(_ item: Element) {
        items.append(item)
        var hole = items.count - 1
        while hole > 0 {
            let parent = (hole - 1) / 2
            guard precedes(item, items[parent]) else { break }
            items[hole] = items[parent]
            hole = parent
        }
        items[hole] = item
    }

    @inlinable @discardableResult
    public mutating func pop() -> Element? {
        guard let last = items.popLast() else { return nil }
        guard !items.isEmpty else { return last }
        let first = items[0]
        var hole = 0
        let count = items.count
        while true {
            let left = 2 * hole + 1
            guard left < count else { break }
            let right = left + 1
            let child = right < count && precedes(items[right], items[left]) ? right : left
            guard precedes(items[child], last) else { break }
            items[hole] = items[child]
            hole = child
        }
        items[hole] = last
        return first
    }
}

extension MinHeap: Sendable where Element: Sendable {}
