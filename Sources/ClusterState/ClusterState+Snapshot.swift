import Foundation

extension ClusterState {
    /// The whole state as bytes for a Raft snapshot. Deterministic: objects
    /// sorted by id, JSON keys sorted, so equal states give equal bytes.
    public func snapshot() -> [UInt8] {
        let image = SnapshotImage(
            formatVersion: SnapshotImage.currentFormatVersion, appliedIndex: appliedIndex,
            nodes: nodes, services: services, tasks: tasks, secrets: secrets, configs: configs,
            networks: networks, routes: routes, rollouts: rollouts)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain Codable values cannot fail.
        return Array(try! encoder.encode(image))
    }

    /// Restores ``snapshot()`` exactly, or throws for bytes that are not one.
    public init(snapshot bytes: [UInt8]) throws(ClusterStateError) {
        let image: SnapshotImage
        do {
            image = try JSONDecoder().decode(SnapshotImage.self, from: Data(bytes))
        } catch {
            throw .undecodableCommand("snapshot: \(error)")
        }
        guard image.formatVersion <= SnapshotImage.currentFormatVersion else {
            throw .undecodableCommand("snapshot format \(image.formatVersion) is newer than this shoal understands")
        }
        self.init()
        appliedIndex = image.appliedIndex
        for node in image.nodes { nodeTable[node.id] = node }
        for service in image.services { serviceTable[service.id] = service }
        for task in image.tasks {
            taskTable[task.id] = task
            taskIDsByService[task.serviceID, default: []].insert(task.id)
        }
        for secret in image.secrets {
            secretTable[secret.id] = secret
            secretIDsByName[secret.spec.name] = secret.id
        }
        for config in image.configs {
            configTable[config.id] = config
            configIDsByName[config.spec.name] = config.id
        }
        for network in image.networks { networkTable[network.id] = network }
        for route in image.routes { routeTable[route.id] = route }
        for rollout in image.rollouts { rolloutTable[rollout.id] = rollout }
    }
}

/// The serialized form of a ``ClusterState``.
struct SnapshotImage: Codable {
    static let currentFormatVersion = 1
    var formatVersion: Int
    var appliedIndex: UInt64
    var nodes: [Node]
    var services: [Service]
    var tasks: [ServiceTask]
    var secrets: [Secret]
    var configs: [Config]
    var networks: [Network]
    var routes: [Route]
    var rollouts: [Rollout]
}
