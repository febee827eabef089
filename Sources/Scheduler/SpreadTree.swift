import ClusterState

/// A node that can take the next task, ordered least loaded first: fewest
/// tasks of this service, then fewest tasks overall, then lowest node id
/// (nodes are indexed in id order).
struct NodeCandidate: Comparable {
    var serviceTasks: Int
    var totalTasks: Int
    var nodeIndex: Int

    static func < (lhs: NodeCandidate, rhs: NodeCandidate) -> Bool {
        (lhs.serviceTasks, lhs.totalTasks, lhs.nodeIndex) < (rhs.serviceTasks, rhs.totalTasks, rhs.nodeIndex)
    }
}

/// A group of nodes sharing a label value, ordered by how many tasks of the
/// service the whole group runs, then by label value.
struct BranchCandidate: Comparable {
    var serviceTasks: Int
    var rank: Int
    var branch: Int

    static func < (lhs: BranchCandidate, rhs: BranchCandidate) -> Bool {
        (lhs.serviceTasks, lhs.rank) < (rhs.serviceTasks, rhs.rank)
    }
}

/// The candidate nodes of one task group, arranged for placement preferences
/// (swarmkit's decision tree): one level per `spread=node.labels.K`, a heap
/// of label-value branches at each level and a heap of nodes at each leaf.
/// Placing a task pops the best branch at each level and the best node of
/// the leaf, then pushes back what changed: O(levels × log branches + log
/// nodes) per task. Without preferences the root is the only leaf.
///
/// Branch counts include the service's tasks on every node with that label
/// value, even nodes the filters refused, so that spreading balances what
/// actually runs; branches without a candidate node are left out.
struct SpreadTree {
    private struct Branch {
        var serviceTasks = 0
        var isLeaf: Bool
        var children = BinaryHeap<BranchCandidate>()
        var nodes = BinaryHeap<NodeCandidate>()
        var isLive: Bool { isLeaf ? !nodes.isEmpty : !children.isEmpty }
    }

    private var branches: [Branch]

    init(preferences: [PlacementPreference], nodes: [NodeInfo], candidates: [Int], serviceID: ObjectID) {
        let depth = preferences.count
        branches = [Branch(isLeaf: depth == 0)]
        var childrenByValue: [[String: Int]] = [[:]]
        var values: [String] = [""]
        var leafOfNode = [Int](repeating: 0, count: nodes.count)
        for (nodeIndex, info) in nodes.enumerated() {
            let serviceTasks = info.tasks(of: serviceID)
            var current = 0
            branches[0].serviceTasks += serviceTasks
            for (level, preference) in preferences.enumerated() {
                let value = info.node.spec.labels[preference.label] ?? ""
                if let child = childrenByValue[current][value] {
                    current = child
                } else {
                    let child = branches.count
                    branches.append(Branch(isLeaf: level == depth - 1))
                    childrenByValue.append([:])
                    values.append(value)
                    childrenByValue[current][value] = child
                    current = child
                }
                branches[current].serviceTasks += serviceTasks
            }
            leafOfNode[nodeIndex] = current
        }
        var leafCandidates = [[NodeCandidate]](repeating: [], count: branches.count)
        for nodeIndex in candidates {
            let info = nodes[nodeIndex]
            leafCandidates[leafOfNode[nodeIndex]].append(
                NodeCandidate(serviceTasks: info.tasks(of: serviceID), totalTasks: info.taskCount, nodeIndex: nodeIndex))
        }
        // Children always come after their parent, so one backward pass builds every heap from live children.
        for index in branches.indices.reversed() {
            if branches[index].isLeaf {
                branches[index].nodes = BinaryHeap(leafCandidates[index])
            } else {
                let children = childrenByValue[index].sorted { $0.key < $1.key }
                var live: [BranchCandidate] = []
                for (rank, child) in children.enumerated() where branches[child.value].isLive {
                    live.append(BranchCandidate(serviceTasks: branches[child.value].serviceTasks, rank: rank, branch: child.value))
                }
                branches[index].children = BinaryHeap(live)
            }
        }
    }

    /// Picks the best node, lets `assign` place the task there, and takes
    /// back the node's new candidate entry (nil: the node cannot take
    /// another task of this group). Returns the node's index, or nil when no
    /// candidate is left.
    mutating func place(_ assign: (Int) -> NodeCandidate?) -> Int? {
        guard branches[0].isLive else { return nil }
        var path: [(branch: Int, popped: BranchCandidate)] = []
        var current = 0
        while !branches[current].isLeaf {
            let child = branches[current].children.popMin()!
            path.append((current, child))
            current = child.branch
        }
        let chosen = branches[current].nodes.popMin()!
        if let updated = assign(chosen.nodeIndex) { branches[current].nodes.push(updated) }
        branches[current].serviceTasks += 1
        var child = current
        for (parent, popped) in path.reversed() {
            branches[parent].serviceTasks += 1
            if branches[child].isLive {
                branches[parent].children.push(BranchCandidate(serviceTasks: branches[child].serviceTasks, rank: popped.rank, branch: child))
            }
            child = parent
        }
        return chosen.nodeIndex
    }
}
