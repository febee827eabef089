/// A min-heap over a total order. The scheduler keeps candidate nodes and
/// spread branches in these so that picking the best one costs O(log n);
/// because keys are total (they end in a node or branch rank), the order in
/// which elements were pushed never changes which one comes out.
struct BinaryHeap<Element: Comparable> {
    private(set) var elements: [Element]

    init(_ elements: [Element] = []) {
        self.elements = elements
        if elements.count > 1 {
            for index in stride(from: elements.count / 2 - 1, through: 0, by: -1) { siftDown(index) }
        }
    }

    var isEmpty: Bool { elements.isEmpty }
    var count: Int { elements.count }
    var min: Element? { elements.first }

    mutating func push(_ element: Element) {
        elements.append(element)
        siftUp(elements.count - 1)
    }

    mutating func popMin() -> Element? {
        guard !elements.isEmpty else { return nil }
        elements.swapAt(0, elements.count - 1)
        let smallest = elements.removeLast()
        if !elements.isEmpty { siftDown(0) }
        return smallest
    }

    private mutating func siftUp(_ start: Int) {
        var child = start
        while child > 0 {
            let parent = (child - 1) / 2
            guard elements[child] < elements[parent] else { return }
            elements.swapAt(child, parent)
            child = parent
        }
    }

    private mutating func siftDown(_ start: Int) {
        var parent = start
        let count = elements.count
        while true {
            let left = 2 * parent + 1
            guard left < count else { return }
            var smallest = left
            let right = left + 1
            if right < count && elements[right] < elements[left] { smallest = right }
            guard elements[smallest] < elements[parent] else { return }
            elements.swapAt(smallest, parent)
            parent = smallest
        }
    }
}
