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

    @inlinable public mutating func push(_ item: Element) {
        items.append(item)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(items[child], items[parent]) else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    @inlinable @discardableResult
    public mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let first = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1
            let right = left + 1
            var smallest = parent
            if left < items.count, precedes(items[left], items[smallest]) { smallest = left }
            if right < items.count, precedes(items[right], items[smallest]) { smallest = right }
            guard smallest != parent else { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return first
    }
}

extension MinHeap: Sendable where Element: Sendable {}
