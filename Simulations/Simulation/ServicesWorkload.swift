import ClusterState

/// What `shoal-sim services` runs: the workers' labels and resources, and
/// the services the operator creates, sized so that their tasks add up to
/// the `--tasks` asked for: a global service (one task per worker), a
/// replicated job, and three replicated services — one constrained away
/// from a zone and spread over zones, one constrained to SSD nodes and
/// spread over racks, one unconstrained — each reserving CPU and memory.
struct ServicesWorkload {
    static let zones = 4
    static let racks = 10
    static let workerCPUs: Int64 = 4_000_000_000
    static let workerMemoryBytes: Int64 = 8 << 30

    let workers: Int
    /// The services, in creation order.
    let services: [(id: ObjectID, spec: Service.Spec)]

    init(workers: Int, tasks: Int) {
        self.workers = workers
        let global = min(workers, tasks / 3)
        let job = max(1, tasks / 20)
        let replicated = max(3, tasks - (global == workers ? workers : 0) - job)
        var services: [(ObjectID, Service.Spec)] = []
        func template(_ image: String, constraints: [String] = [], preferences: [String] = [], cpus: Int64 = 10_000_000, memory: Int64 = 16 << 20) -> TaskTemplate {
            var template = TaskTemplate(image: image)
            template.placement = TaskTemplate.Placement(constraints: constraints, preferences: preferences)
            template.resources = TaskTemplate.Resources(reservedNanoCPUs: cpus, reservedMemoryBytes: memory)
            template.restartPolicy = TaskTemplate.RestartPolicy(condition: .any, delayMilliseconds: 100)
            return template
        }
        func update(_ replicas: Int) -> UpdateConfig {
            UpdateConfig(parallelism: max(1, replicas / 4), delayMilliseconds: 0, order: .stopFirst, failureAction: .continue, monitorMilliseconds: 500)
        }
        let web = replicated / 2, api = replicated * 3 / 10, cache = replicated - web - api
        services.append(("svc-web", Service.Spec(name: "web", mode: .replicated(replicas: web),
                                                  task: template("web:1", constraints: ["node.labels.zone!=z4"], preferences: ["spread=node.labels.zone"]),
                                                  update: update(web))))
        services.append(("svc-api", Service.Spec(name: "api", mode: .replicated(replicas: api),
                                                  task: template("api:1", constraints: ["node.labels.disk==ssd", "node.role==worker"],
                                                                 preferences: ["spread=node.labels.rack"]),
                                                  update: update(api))))
        services.append(("svc-cache", Service.Spec(name: "cache", mode: .replicated(replicas: cache), task: template("cache:1"), update: update(cache))))
        if global == workers {
            services.append(("svc-monitor", Service.Spec(name: "monitor", mode: .global, task: template("monitor:1", cpus: 1_000_000, memory: 4 << 20))))
        }
        services.append(("svc-migrate", Service.Spec(name: "migrate", mode: .replicatedJob(completions: job, maxConcurrent: max(1, job / 2)),
                                                      task: template("migrate:1"))))
        self.services = services
    }

    func isJob(_ serviceID: ObjectID) -> Bool { serviceID.rawValue == "svc-migrate" }

    func makeWorker(_ index: Int) -> SimulatedWorker {
        let labels = ["zone": "z\(index % Self.zones + 1)", "rack": "r\((index / Self.zones) % Self.racks + 1)",
                      "disk": index % 3 == 0 ? "hdd" : "ssd"]
        let number = String(index)
        return SimulatedWorker(index: index, nodeID: ObjectID("worker-" + String(repeating: "0", count: max(0, 5 - number.count)) + number)!,
                               spec: Node.Spec(role: .worker, labels: labels),
                               resources: Node.Resources(nanoCPUs: Self.workerCPUs, memoryBytes: Self.workerMemoryBytes))
    }
}
