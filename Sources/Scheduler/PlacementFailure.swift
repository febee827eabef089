/// Why one node cannot take a task: the first filter of the pipeline that
/// refused it. Cases are declared in pipeline order, so sorting failures
/// lists them in the order the filters run.
public enum PlacementFailure: Hashable, Comparable, Sendable {
    case nodeNotReady
    case nodePaused
    case nodeDrained
    /// `position`: the constraint's index in the spec, so reasons list constraints in spec order.
    case constraintNotSatisfied(position: Int, constraint: String)
    case platformNotSupported(String)
    case insufficientMemory(bytes: Int64)
    case insufficientCPU(nanoCPUs: Int64)
    case hostPortInUse(position: Int, port: String)
    case maxReplicasPerNode(Int)

    /// `2 nodes lack 4 GiB memory`: how `count` nodes failed this way.
    public func describe(count: Int) -> String {
        let one = count == 1
        let nodes = one ? "1 node" : "\(count) nodes"
        switch self {
        case .nodeNotReady: return "\(nodes) \(one ? "is" : "are") not ready"
        case .nodePaused: return "\(nodes) \(one ? "is" : "are") paused"
        case .nodeDrained: return "\(nodes) \(one ? "is" : "are") drained"
        case .constraintNotSatisfied(_, let constraint):
            return "\(nodes) \(one ? "does" : "do") not satisfy constraint \(constraint)"
        case .platformNotSupported(let platforms):
            return "\(nodes) \(one ? "does" : "do") not run platform \(platforms)"
        case .insufficientMemory(let bytes): return "\(nodes) \(one ? "lacks" : "lack") \(Self.format(bytes: bytes)) memory"
        case .insufficientCPU(let nanoCPUs): return "\(nodes) \(one ? "lacks" : "lack") \(Self.format(nanoCPUs: nanoCPUs))"
        case .hostPortInUse(_, let port): return "\(nodes) already \(one ? "publishes" : "publish") host port \(port)"
        case .maxReplicasPerNode(let limit):
            return "\(nodes) already \(one ? "runs" : "run") \(limit) \(limit == 1 ? "task" : "tasks") of the service (max \(limit) per node)"
        }
    }

    /// The human reason a task stays pending, from failure counts:
    /// `no suitable node (2 nodes lack 4 GiB memory; 1 node is drained)`.
    public static func reason(counts: [PlacementFailure: Int]) -> String {
        if counts.isEmpty { return "no suitable node (the cluster has no nodes)" }
        let parts = counts.sorted { $0.key < $1.key }.map { $0.key.describe(count: $0.value) }
        return "no suitable node (\(parts.joined(separator: "; ")))"
    }

    static func format(bytes: Int64) -> String {
        let units: [(Int64, String)] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (size, name) in units where bytes >= size {
            return "\(decimal(bytes, unit: size)) \(name)"
        }
        return bytes == 1 ? "1 byte" : "\(bytes) bytes"
    }

    static func format(nanoCPUs: Int64) -> String {
        let text = decimal(nanoCPUs, unit: 1_000_000_000, digits: 2)
        return text == "1" ? "1 CPU" : "\(text) CPUs"
    }

    /// `value / unit` with at most `digits` decimals, trailing zeros dropped.
    static func decimal(_ value: Int64, unit: Int64, digits: Int = 1) -> String {
        var scale: Int64 = 1
        for _ in 0..<digits { scale *= 10 }
        let scaled = (value * scale + unit / 2) / unit
        var fraction = String(scaled % scale)
        while fraction.count < digits { fraction = "0" + fraction }
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return fraction.isEmpty ? "\(scaled / scale)" : "\(scaled / scale).\(fraction)"
    }
}
