import Testing
import UnderstudyEngine

@Suite("MinHeap")
struct MinHeapTests {
    @Test("pops in order under random pushes and pops, duplicates included")
    func ordered() {
        var generator = SystemRandomNumberGenerator()
        for round in 0..<50 {
            var heap = MinHeap<Int> { $0 < $1 }
            var reference: [Int] = []
            for _ in 0..<(round * 7 + 1) {
                if !reference.isEmpty && Int.random(in: 0..<3, using: &generator) == 0 {
                    let expected = reference.min()
                    #expect(heap.pop() == expected)
                    if let expected, let index = reference.firstIndex(of: expected) { reference.remove(at: index) }
                } else {
                    let value = Int.random(in: 0..<50, using: &generator)
                    heap.push(value)
                    reference.append(value)
                }
                #expect(heap.peek == reference.min() && heap.count == reference.count)
            }
            var drained: [Int] = []
            while let value = heap.pop() { drained.append(value) }
            #expect(drained == reference.sorted())
            #expect(heap.isEmpty && heap.pop() == nil)
        }
    }
}
