extension ClusterState {
    static let maxReplicas = 10_000
    static let maxSecretBytes = 500 * 1024
    static let maxLabelCount = 64
    static let maxLabelBytes = 4096

    /// Names are DNS labels, as Docker's: they become hostnames and DNS names.
    static func validate(name: String, field: String) throws(ClusterStateError) {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count) else {
            throw .invalidSpec(field: field, reason: "'\(name)' must be 1 to 63 characters")
        }
        let allowed = bytes.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
        guard allowed, bytes.first != UInt8(ascii: "-"), bytes.first != UInt8(ascii: ".") else {
            throw .invalidSpec(field: field, reason: "'\(name)' may hold only letters, digits, '-', '_' and '.', and must not start with '-' or '.'")
        }
    }

    static func validate(labels: [String: String], field: String) throws(ClusterStateError) {
        guard labels.count <= maxLabelCount else {
            throw .invalidSpec(field: field, reason: "\(labels.count) labels exceed the limit of \(maxLabelCount)")
        }
        for (key, value) in labels.sorted(by: { $0.key < $1.key }) {
            guard !key.isEmpty, key.utf8.count + value.utf8.count <= maxLabelBytes else {
                throw .invalidSpec(field: field, reason: "label '\(key.prefix(40))' must have a non-empty key and at most \(maxLabelBytes) bytes")
            }
        }
    }

    static func validate(_ spec: Service.Spec) throws(ClusterStateError) {
        try validate(name: spec.name, field: "service name")
        try validate(labels: spec.labels, field: "service labels")
        switch spec.mode {
        case .replicated(let replicas):
            guard (0...maxReplicas).contains(replicas) else {
                throw .invalidSpec(field: "replicas", reason: "\(replicas) is outside 0...\(maxReplicas)")
            }
        case .replicatedJob(let completions, let maxConcurrent):
            guard (0...maxReplicas).contains(completions), (1...maxReplicas).contains(maxConcurrent) else {
                throw .invalidSpec(field: "job", reason: "completions must be 0...\(maxReplicas) and max-concurrent 1...\(maxReplicas)")
            }
        case .global, .globalJob:
            break
        }
        for (field, config) in [("update config", spec.update), ("rollback config", spec.rollback)] {
            guard config.parallelism >= 0 else { throw .invalidSpec(field: "\(field) parallelism", reason: "must be 0 (all at once) or more") }
            guard config.delayMilliseconds >= 0, config.monitorMilliseconds >= 0 else {
                throw .invalidSpec(field: "\(field) delay and monitor", reason: "durations must not be negative")
            }
            guard config.maxFailureRatio >= 0, config.maxFailureRatio <= 1 else {
                throw .invalidSpec(field: "\(field) max failure ratio", reason: "\(config.maxFailureRatio) is outside 0...1")
            }
        }
        let task = spec.task
        guard !task.image.isEmpty, !task.image.contains(" ") else {
            throw .invalidSpec(field: "image", reason: "an image reference like busybox:latest is required")
        }
        let resources = task.resources
        for (name, value) in [("reserved CPUs", resources.reservedNanoCPUs), ("reserved memory", resources.reservedMemoryBytes),
                              ("CPU limit", resources.limitNanoCPUs), ("memory limit", resources.limitMemoryBytes)] where value < 0 {
            throw .invalidSpec(field: name, reason: "must not be negative")
        }
        if resources.limitMemoryBytes > 0 && resources.limitMemoryBytes < resources.reservedMemoryBytes {
            throw .invalidSpec(field: "memory limit", reason: "the limit is below the reservation")
        }
        var published = Set<String>()
        for port in task.ports {
            guard (0...65535).contains(port.publishedPort), (1...65535).contains(port.targetPort) else {
                throw .invalidSpec(field: "ports", reason: "\(port.publishedPort):\(port.targetPort) must be within 1...65535 (published 0: a free port per task)")
            }
            guard port.hostAddress == nil else {
                throw .invalidSpec(field: "ports", reason: "target \(port.targetPort) names host address \(port.hostAddress ?? ""): a task's status reports where its node bound the port, a spec cannot choose it (set the node's daemon --default-publish-address)")
            }
            if port.publishedPort == 0 {
                guard port.mode == .host else {
                    throw .invalidSpec(field: "ports", reason: "target \(port.targetPort): only mode=host picks a free published port per task; give published=P")
                }
                continue
            }
            guard published.insert("\(port.publishedPort)/\(port.transportProtocol.rawValue)").inserted else {
                throw .invalidSpec(field: "ports", reason: "port \(port.publishedPort)/\(port.transportProtocol.rawValue) is published twice")
            }
        }
        for mount in task.mounts {
            guard mount.target.hasPrefix("/"), !mount.source.isEmpty else {
                throw .invalidSpec(field: "mounts", reason: "a mount needs a source and an absolute target path")
            }
        }
        if let check = task.healthCheck {
            guard check.intervalMilliseconds >= 0, check.timeoutMilliseconds >= 0, check.startPeriodMilliseconds >= 0, check.retries >= 0 else {
                throw .invalidSpec(field: "health check", reason: "interval, timeout, start period and retries must not be negative (0: the image's or the default)")
            }
            guard !check.disabled || check.command.isEmpty else {
                throw .invalidSpec(field: "health check", reason: "a disabled check (--no-healthcheck) cannot have a command (--health-cmd)")
            }
            guard check.command.isEmpty || !check.command[0].isEmpty else {
                throw .invalidSpec(field: "health check", reason: "the command's first word is empty; give the command that exits 0 when the task is healthy")
            }
        }
        if task.placement.maxReplicasPerNode < 0 || task.restartPolicy.maxAttempts < 0
            || task.restartPolicy.delayMilliseconds < 0 || task.stopGracePeriodMilliseconds < 0 {
            throw .invalidSpec(field: "task", reason: "counts and durations must not be negative")
        }
    }

    func validate(_ spec: Route.Spec, excluding routeID: ObjectID?) throws(ClusterStateError) {
        try Self.validate(name: spec.name, field: "route name")
        guard (1...65535).contains(spec.publishedPort) else {
            throw .invalidSpec(field: "published port", reason: "\(spec.publishedPort) must be within 1...65535")
        }
        guard !spec.backends.isEmpty, spec.backends.allSatisfy({ $0.weight >= 0 }),
              spec.backends.reduce(0, { $0 + $1.weight }) == 100 else {
            throw .invalidSpec(field: "route weights", reason: "backend weights must be non-negative and sum to 100")
        }
        for backend in spec.backends where serviceTable[backend.serviceID] == nil {
            throw .notFound(kind: .service, id: backend.serviceID)
        }
        if let mirror = spec.mirrorServiceID, serviceTable[mirror] == nil { throw .notFound(kind: .service, id: mirror) }
        for other in routes where other.id != routeID {
            if other.spec.name == spec.name { throw .nameInUse(kind: .route, name: spec.name, id: other.id) }
            if other.spec.publishedPort == spec.publishedPort {
                throw .invalidSpec(field: "published port", reason: "port \(spec.publishedPort) is already routed by \(other.spec.name)")
            }
        }
    }

    static func isValidSubnet(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let prefix = Int(parts[1]), (8...30).contains(prefix) else { return false }
        let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.allSatisfy { Int($0).map { (0...255).contains($0) } ?? false }
    }
}
