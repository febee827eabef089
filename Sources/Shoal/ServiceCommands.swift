import ClusterState
import Daemon
import Foundation
import HTTP

/// `shoal service create|ls|ps|inspect|scale|update|rm|logs`, with Docker's
/// flags where they exist.
enum ServiceCommands {
    static let usage = """
        shoal service create [--name N] [--replicas N] [--mode replicated|global|replicated-job|global-job] [--max-concurrent N]
                             [--constraint EXPR]... [--placement-pref spread=node.labels.K]...
                             [--max-replicas-per-node N] [--reserve-memory B] [--limit-memory B] [--reserve-cpu C] [--limit-cpu C]
                             [--restart-condition none|on-failure|any] [--restart-delay D] [--restart-max-attempts N] [--restart-window D]
                             [--publish [mode=host,]P:T | published=P,target=T,mode=host]... (published 0 or left out: a free port per task)
                             [--health-cmd CMD] [--health-interval D] [--health-timeout D] [--health-retries N] [--health-start-period D] [--no-healthcheck]
                             [--mount type=bind|volume,src=S,dst=D[,readonly]]... [-e K=V]...
                             [--label K=V]... [--user U] [--workdir DIR] [--stop-grace-period D] [UPDATE OPTIONS] [--no-resolve-image] [--detach]
                             IMAGE [COMMAND [ARG...]]   (the manager pins IMAGE's tag to the digest its registry names now)
        shoal service ls | ps SERVICE | inspect SERVICE... | scale SERVICE=N... | rm SERVICE...
        shoal service logs [--follow] [--tail N] [--timestamps] SERVICE   (from any manager: each task's log comes from its node)
        shoal service update [--image I [--no-resolve-image]] [--replicas N] [--force] [--env-add K=V]... [--env-rm K]... [--label-add K=V]... [--label-rm K]...
                             [--limit-memory B] ... [UPDATE OPTIONS] [--detach] SERVICE   (--image pins the tag's digest anew)
        shoal service rollback [--detach] SERVICE        (or update --rollback): back to the spec the last update replaced
          UPDATE OPTIONS (--rollback-* the same for rollbacks): --update-parallelism N (0: all at once, default 1)
            --update-delay D  --update-order stop-first|start-first  --update-failure-action pause|continue|rollback
            --update-monitor D (default 5s)  --update-max-failure-ratio 0..1
        """

    static let switches: Set<String> = ["--detach", "-d", "--force", "--quiet", "-q", "--json", "--rollback", "--no-healthcheck",
                                        "--follow", "-f", "--timestamps", "-t", "--no-resolve-image"]

    static func run(_ rest: [String]) -> Int32 {
        ClusterCommands.blocking {
            do {
                // Flags end at the image: everything after it is the command.
                let (options, command) = splitCommand(rest)
                let arguments = try ClusterCommands.Arguments(options, switches: switches)
                let host = arguments.value("--host") ?? ProcessInfo.processInfo.environment["SHOAL_HOST"] ?? "unix://\(DaemonSettings.defaultSocketPath)"
                let client = try ControlClient(host: host, tlsDirectory: arguments.value("--tls-dir") ?? ProcessInfo.processInfo.environment["SHOAL_TLS_DIR"])
                defer { Task { await client.shutdown() } }
                let format = arguments.value("--format") ?? (arguments.switches.contains("--json") ? "json" : "table")
                guard format == "table" || format == "json" else { throw ClusterCommands.Failure(description: "--format must be table or json") }
                return try await dispatch(arguments, command: command, client: client, json: format == "json")
            } catch let error as APIError {
                var text = "shoal service: \(error.message)"
                if !error.hint.isEmpty { text += "\nhint: \(error.hint)" }
                FileHandle.standardError.write(Data((text + "\n").utf8))
                return 1
            } catch {
                FileHandle.standardError.write(Data("shoal service: \(ClusterCommands.describe(error))\n".utf8))
                return 1
            }
        }
    }

    /// `create IMAGE CMD...`: the first positional after `create` is the
    /// image, and what follows it is the command, flags included.
    static func splitCommand(_ rest: [String]) -> ([String], [String]) {
        guard rest.first == "create" else { return (rest, []) }
        var index = 1
        var positionals = 0
        while index < rest.count {
            let argument = rest[index]
            if argument.hasPrefix("-") && argument.count > 1 {
                if !argument.contains("=") && !switches.contains(argument) { index += 1 }
            } else {
                positionals += 1
                if positionals == 1 { return (Array(rest[..<(index + 1)]), Array(rest[(index + 1)...])) }
            }
            index += 1
        }
        return (rest, [])
    }

    /// Flags every subcommand takes.
    static let commonFlags: Set<String> = ["--host", "--tls-dir", "--format", "--json", "--detach", "-d", "--quiet", "-q"]

    /// The flags of `create` and `update` that set the spec (docker's names;
    /// update takes the `-add`/`-rm` forms too).
    static let specFlags = Set<String>([
        "--replicas", "--max-concurrent", "--constraint", "--placement-pref", "--max-replicas-per-node",
        "--reserve-memory", "--limit-memory", "--reserve-cpu", "--limit-cpu",
        "--restart-condition", "--restart-delay", "--restart-max-attempts", "--restart-window",
        "--publish", "-p", "--mount", "-e", "--env", "--label", "--user", "-u", "--workdir", "-w", "--stop-grace-period",
        "--health-cmd", "--health-interval", "--health-timeout", "--health-retries", "--health-start-period", "--no-healthcheck",
        "--no-resolve-image",
    ]).union(["parallelism", "delay", "monitor", "order", "failure-action", "max-failure-ratio"].flatMap { ["--update-" + $0, "--rollback-" + $0] })

    /// Each subcommand's flags: one it does not take is refused (as docker
    /// does) rather than ignored, so a misspelt `--replcas` changes nothing
    /// silently.
    static func knownFlags(_ subcommand: String) -> Set<String> {
        switch subcommand {
        case "create": return commonFlags.union(specFlags).union(["--name", "--mode"])
        case "update":
            return commonFlags.union(specFlags).union(["--image", "--force", "--rollback", "--env-add", "--env-rm", "--label-add", "--label-rm",
                                                       "--constraint-add", "--constraint-rm", "--placement-pref-add", "--placement-pref-rm",
                                                       "--publish-add", "--publish-rm", "--mount-add", "--mount-rm"])
        case "logs": return commonFlags.union(["--follow", "-f", "--tail", "-n", "--timestamps", "-t"])
        default: return commonFlags
        }
    }

    static func dispatch(_ arguments: ClusterCommands.Arguments, command: [String], client: ControlClient, json: Bool) async throws -> Int32 {
        guard let subcommand = arguments.positional.first else { throw ClusterCommands.Failure(description: "usage:\n" + usage) }
        let unknown = Set(arguments.values.keys).union(arguments.switches).subtracting(knownFlags(subcommand)).sorted()
        guard unknown.isEmpty else {
            throw ClusterCommands.Failure(description: "unknown flag\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")) for `shoal service \(subcommand)`; nothing was changed\nusage:\n" + usage)
        }
        let targets = Array(arguments.positional.dropFirst())
        switch subcommand {
        case "create":
            guard targets.count == 1 else { throw ClusterCommands.Failure(description: "usage: shoal service create [OPTIONS] IMAGE [COMMAND [ARG...]]") }
            var template = TaskTemplate(image: targets[0])
            if let first = command.first {
                template.command = [first]
                template.arguments = Array(command.dropFirst())
            }
            var spec = Service.Spec(name: arguments.value("--name") ?? generatedName(), task: template)
            try apply(arguments, to: &spec, creating: true)
            let resolve = !arguments.switches.contains("--no-resolve-image")
            let service: Service = try await callWarning(client, "/v1/services?resolveImage=\(resolve)", spec)
            print(service.id)
            flush()
            if arguments.switches.contains("--detach") || arguments.switches.contains("-d") { return 0 }
            return try await waitConverged(service.id, client: client)

        case "ls", "list":
            let services: [Service] = try await client.call(.get, "/v1/services")
            if json { return ClusterCommands.output(services) }
            let tasks: [ServiceTask] = try await client.call(.get, "/v1/tasks")
            ClusterCommands.printTable(["ID", "NAME", "MODE", "REPLICAS", "IMAGE", "PORTS"], services.map { service in
                let running = tasks.filter { $0.serviceID == service.id && $0.status.state == .running && $0.desiredState == .running }.count
                let desired: String
                switch service.spec.mode {
                case .replicated(let replicas): desired = "\(replicas)"
                case .global, .globalJob: desired = "\(tasks.filter { $0.serviceID == service.id && $0.desiredState == .running }.count)"
                case .replicatedJob(let completions, _): desired = "\(completions)"
                }
                return [String(service.id.rawValue.prefix(12)), service.spec.name, modeName(service.spec.mode), "\(running)/\(desired)",
                        displayImage(service.spec.task.image), portsText(service.spec.task.ports)]
            })
            return 0

        case "ps":
            guard targets.count == 1 else { throw ClusterCommands.Failure(description: "usage: shoal service ps SERVICE") }
            let service = try await lookup(targets[0], client: client)
            let tasks: [ServiceTask] = try await client.call(.get, "/v1/tasks?service=\(service.id)")
            if json { return ClusterCommands.output(tasks) }
            let nodes: [NodeView] = try await client.call(.get, "/v1/nodes")
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            // Each slot (a global service's: each node) newest first; its older tasks below it as ` \_ NAME`, as docker shows them.
            func slotKey(_ task: ServiceTask) -> String { task.slot > 0 ? String(format: "%010d", task.slot) : "n" + (task.nodeID?.rawValue ?? "-") }
            let sorted = tasks.sorted { slotKey($0) != slotKey($1) ? slotKey($0) < slotKey($1) : $0.meta.createdIndex > $1.meta.createdIndex }
            ClusterCommands.printTable(["ID", "NAME", "IMAGE", "NODE", "DESIRED STATE", "CURRENT STATE", "PORTS", "ERROR"], sorted.enumerated().map { index, task in
                let node = task.nodeID.map { id in nodes.first { $0.id == id.rawValue }?.status.hostname ?? id.rawValue } ?? ""
                var name = task.slot > 0 ? "\(service.spec.name).\(task.slot)" : "\(service.spec.name).\(task.nodeID?.rawValue.prefix(12) ?? "-")"
                if index > 0 && slotKey(sorted[index - 1]) == slotKey(task) { name = " \\_ " + name }
                let age = max(0, now - task.status.timestampMilliseconds) / 1000
                var error = task.status.error
                if error.isEmpty && task.status.state == .pending { error = task.status.message }
                var current = "\(task.status.state.description.capitalized) \(age) seconds ago"
                if task.status.state == .preparing && !task.status.message.isEmpty { current += " (\(truncate(task.status.message, 40)))" }
                // As `docker ps` shows it: "(healthy)", "(health: starting)".
                switch task.status.health {
                case .healthy?: current += " (healthy)"
                case let health?: current += " (health: \(health.rawValue))"
                case nil: break
                }
                let ports = task.status.state.isTerminal ? "" : portsText(task.status.publishedPorts)
                return [String(task.id.rawValue.prefix(12)), name, displayImage(task.template.image), node, task.desiredState.description.capitalized,
                        current, ports, truncate(error, 80)]
            })
            return 0

        case "inspect":
            guard !targets.isEmpty else { throw ClusterCommands.Failure(description: "usage: shoal service inspect SERVICE...") }
            var services: [Service] = []
            for target in targets { services.append(try await lookup(target, client: client)) }
            return ClusterCommands.output(services)

        case "scale":
            guard !targets.isEmpty else { throw ClusterCommands.Failure(description: "usage: shoal service scale SERVICE=REPLICAS...") }
            var ids: [ObjectID] = []
            for target in targets {
                let parts = target.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, let replicas = Int(parts[1]) else { throw ClusterCommands.Failure(description: "'\(target)' is not SERVICE=REPLICAS") }
                let service = try await lookup(String(parts[0]), client: client)
                guard case .replicated = service.spec.mode else {
                    throw ClusterCommands.Failure(description: "\(service.spec.name): scale can only be used with replicated services")
                }
                var spec = service.spec
                spec.mode = .replicated(replicas: replicas)
                let _: Service = try await client.call(.post, "/v1/services/\(service.id)/update",
                                                       json: ServiceUpdateBody(version: service.meta.version, spec: spec, force: false))
                print("\(service.spec.name) scaled to \(replicas)")
                ids.append(service.id)
            }
            flush()
            if arguments.switches.contains("--detach") || arguments.switches.contains("-d") { return 0 }
            for id in ids where try await waitConverged(id, client: client) != 0 { return 1 }
            return 0

        case "rollback":
            guard targets.count == 1 else { throw ClusterCommands.Failure(description: "usage: shoal service rollback [--detach] SERVICE") }
            return try await rollback(targets[0], arguments: arguments, client: client)

        case "update":
            guard targets.count == 1 else { throw ClusterCommands.Failure(description: "usage: shoal service update [OPTIONS] SERVICE") }
            if arguments.switches.contains("--rollback") { return try await rollback(targets[0], arguments: arguments, client: client) }
            let service = try await lookup(targets[0], client: client)
            var spec = service.spec
            // A new --image (the same tag too) is pinned anew; without it the spec keeps its digest.
            let image = arguments.value("--image")
            if let image { spec.task.image = image }
            try apply(arguments, to: &spec, creating: false)
            let resolve = image != nil && !arguments.switches.contains("--no-resolve-image")
            let updated: Service = try await callWarning(client, "/v1/services/\(service.id)/update?resolveImage=\(resolve)",
                                                         ServiceUpdateBody(version: service.meta.version, spec: spec, force: arguments.switches.contains("--force")))
            print(updated.spec.name)
            flush()
            if arguments.switches.contains("--detach") || arguments.switches.contains("-d") { return 0 }
            // A rollout began with this write: follow it; otherwise (replicas, labels) wait for convergence.
            if let status = updated.updateStatus, status.startedIndex == updated.meta.version {
                return try await waitRolledOut(updated.id, client: client)
            }
            return try await waitConverged(updated.id, client: client)

        case "rm", "remove":
            guard !targets.isEmpty else { throw ClusterCommands.Failure(description: "usage: shoal service rm SERVICE...") }
            for target in targets {
                let service = try await lookup(target, client: client)
                try await client.perform(.delete, "/v1/services/\(service.id)")
                print(target)
            }
            return 0

        case "logs":
            guard targets.count == 1 else { throw ClusterCommands.Failure(description: "usage: shoal service logs [--follow] [--tail N] [--timestamps] SERVICE") }
            return try await logs(targets[0], arguments: arguments, client: client)

        default:
            throw ClusterCommands.Failure(description: "unknown service command \(subcommand)\nusage:\n" + usage)
        }
    }

    /// A pinned image as `ls` and `ps` show it, as docker's do: the tag
    /// without its digest (`web:1@sha256:...` → `web:1`); `inspect` shows all.
    static func displayImage(_ image: String) -> String {
        guard let at = image.firstIndex(of: "@") else { return image }
        let named = image[..<at]
        return (named.split(separator: "/").last ?? "").contains(":") ? String(named) : image
    }

    /// `127.0.0.1:8080->80/tcp` where the task's node bound the port to one
    /// address, `*:8080->80/tcp` on every address (0.0.0.0) or where no
    /// address is known: a spec's ports (published 0: `*:0->80/tcp`, a free
    /// port per task), an older agent's. Docker's `service ps` always says
    /// `*` (Swarm always publishes on every address); Shoal may not.
    static func portsText(_ ports: [TaskTemplate.PublishedPort]) -> String {
        ports.map { port in
            let address = port.hostAddress.flatMap { $0.isEmpty || $0 == "0.0.0.0" ? nil : $0 } ?? "*"
            return "\(address):\(port.publishedPort)->\(port.targetPort)/\(port.transportProtocol.rawValue)"
        }.joined(separator: ",")
    }

    /// Every task's log, each line prefixed `name.slot.task@node | ` (with
    /// `--timestamps`, the time first), stdout to stdout and stderr to
    /// stderr, as `docker service logs`.
    static func logs(_ key: String, arguments: ClusterCommands.Arguments, client: ControlClient) async throws -> Int32 {
        let service = try await lookup(key, client: client)
        var query = "follow=\(arguments.switches.contains("--follow") || arguments.switches.contains("-f"))"
        if let tail = arguments.value("--tail") ?? arguments.value("-n") {
            guard tail == "all" || (Int(tail) ?? -1) >= 0 else { throw ClusterCommands.Failure(description: "--tail '\(tail)' must be a number of lines or all") }
            query += "&tail=\(tail)"
        }
        let timestamps = arguments.switches.contains("--timestamps") || arguments.switches.contains("-t")
        let nodes: [NodeView] = try await client.call(.get, "/v1/nodes")
        var hostnames: [String: String] = [:]
        for node in nodes { hostnames[node.id] = node.status.hostname.isEmpty ? String(node.id.prefix(12)) : node.status.hostname }
        var failures = 0
        let decoder = JSONDecoder()
        for try await text in try await client.lines("/v1/services/\(service.id)/logs?\(query)") {
            let line = try decoder.decode(ServiceLogLine.self, from: Data(text.utf8))
            let slot = line.slot > 0 ? "\(line.slot)" : String(line.nodeID.prefix(12))
            var prefix = "\(service.spec.name).\(slot).\(line.taskID.prefix(12))@\(hostnames[line.nodeID] ?? String(line.nodeID.prefix(12))) | "
            if let error = line.error {
                FileHandle.standardError.write(Data((prefix + "error: " + error + "\n").utf8))
                failures += 1
                continue
            }
            if timestamps { prefix = line.time + " " + prefix }
            var body = line.log
            if !body.hasSuffix("\n") { body += "\n" }
            if line.stream == "stderr" {
                FileHandle.standardError.write(Data((prefix + body).utf8))
            } else {
                FileHandle.standardOutput.write(Data((prefix + body).utf8))
            }
        }
        return failures == 0 ? 0 : 1
    }

    static func rollback(_ key: String, arguments: ClusterCommands.Arguments, client: ControlClient) async throws -> Int32 {
        let service = try await lookup(key, client: client)
        let rolledBack: Service = try await client.call(.post, "/v1/services/\(service.id)/rollback", json: ServiceRollbackRequest(version: service.meta.version))
        print(rolledBack.spec.name)
        flush()
        if arguments.switches.contains("--detach") || arguments.switches.contains("-d") { return 0 }
        return try await waitRolledOut(rolledBack.id, client: client, requestedRollback: true)
    }

    /// Follows a rollout until its status says it completed, paused or
    /// rolled back, printing `updated N/M` (slots running the current spec)
    /// as it changes, as `docker service update` does.
    /// `requestedRollback`: the user asked for the rollback, so its completion is success.
    static func waitRolledOut(_ id: ObjectID, client: ControlClient, requestedRollback: Bool = false, timeout: Duration = .seconds(600)) async throws -> Int32 {
        let outcome = try await follow(id, client: client, timeout: timeout) { service, tasks in
            let current = tasks.filter {
                $0.status.state == .running && $0.desiredState == .running && $0.template == service.spec.task && $0.serviceForceUpdate == service.forceUpdate
            }
            let total: Int
            switch service.spec.mode {
            case .replicated(let replicas): total = replicas
            default: total = Set(tasks.filter { $0.desiredState == .running }.compactMap(\.nodeID)).count
            }
            let status = service.updateStatus
            let verb = status?.isRollback == true ? "rolled back" : "updated"
            let line = "\(verb) \(min(current.count, total))/\(total)" + (status.map { "  (\($0.state.rawValue): \($0.message))" } ?? "")
            switch status?.state {
            case .completed?, nil:
                return (line, "verify: Service \(service.spec.name) converged", 0)
            case .rollbackCompleted?:
                return (line, "rollback: \(service.spec.name) is back on its previous spec", requestedRollback ? 0 : 1)
            case .paused?, .rollbackPaused?:
                FileHandle.standardError.write(Data("shoal service: \(status!.message); `shoal service ps \(service.spec.name)` shows why, `shoal service update` resumes, `shoal service rollback` goes back\n".utf8))
                return (line, nil, 1)
            case .updating?, .rollbackStarted?:
                return (line, nil, nil)
            }
        }
        if let outcome { return outcome }
        FileHandle.standardError.write(Data("shoal service: the rollout did not finish within \(timeout); see `shoal service inspect`\n".utf8))
        return 1
    }

    /// Reads the service and its tasks every 200 ms and hands them to
    /// `check`, which returns a progress line (printed when it changes), a
    /// last line, and an exit code once it is done; nil after `timeout`.
    static func follow(_ id: ObjectID, client: ControlClient, timeout: Duration,
                       _ check: (Service, [ServiceTask]) -> (line: String, last: String?, exitCode: Int32?)) async throws -> Int32? {
        let deadline = ContinuousClock.now + timeout
        var printed = ""
        while ContinuousClock.now < deadline {
            let service: Service = try await client.call(.get, "/v1/services/\(id)")
            let tasks: [ServiceTask] = try await client.call(.get, "/v1/tasks?service=\(id)")
            let (line, last, exitCode) = check(service, tasks)
            if line != printed {
                print(line)
                printed = line
            }
            if let last { print(last) }
            flush()
            if let exitCode { return exitCode }
            try await Task.sleep(for: .milliseconds(200))
        }
        return nil
    }

    struct ServiceUpdateBody: Encodable {
        var version: UInt64
        var spec: Service.Spec
        var force: Bool
    }

    /// POSTs `body`, prints the warning the manager gave (a tag it could
    /// not pin) to stderr as docker does, and decodes the answer.
    static func callWarning<T: Decodable>(_ client: ControlClient, _ target: String, _ body: any Encodable) async throws -> T {
        let response = try await client.send(.post, target, json: body)
        if let error = response.error { throw error }
        if let warning = response.headers[ControlAPI.warningHeader] {
            FileHandle.standardError.write(Data("warning: \(warning)\n".utf8))
        }
        return try JSONDecoder().decode(T.self, from: Data(response.body))
    }

    static func lookup(_ key: String, client: ControlClient) async throws -> Service {
        try await client.call(.get, "/v1/services/" + PercentEncoding.encode(key))
    }

    /// Waits until the service's tasks run, printing progress as `docker service create` does.
    static func waitConverged(_ id: ObjectID, client: ControlClient, timeout: Duration = .seconds(120)) async throws -> Int32 {
        let outcome = try await follow(id, client: client, timeout: timeout) { service, tasks in
            let live = tasks.filter { $0.desiredState == .running && $0.serviceForceUpdate == service.forceUpdate && $0.template == service.spec.task }
            let running = live.filter { $0.status.state == .running }.count
            let desired: Int
            switch service.spec.mode {
            case .replicated(let replicas): desired = replicas
            case .global: desired = max(live.count, 1)
            case .replicatedJob, .globalJob:
                return ("job created; follow it with `shoal service ps \(service.spec.name)`", nil, 0)
            }
            let stale = tasks.filter { $0.desiredState == .running && !live.contains($0) && !$0.status.state.isTerminal }.count
            var line = "\(running)/\(desired) running"
            if let failed = tasks.filter({ $0.status.state >= .failed && !$0.status.error.isEmpty }).max(by: { $0.status.timestampMilliseconds < $1.status.timestampMilliseconds }) {
                line += "  (last error: \(truncate(failed.status.error, 100)))"
            } else if let pending = live.first(where: { $0.status.state == .pending && !$0.status.message.isEmpty && $0.status.message != "waiting to be scheduled" }) {
                line += "  (pending: \(pending.status.message))"
            }
            if running == desired && live.count == desired && stale == 0 && tasks.allSatisfy({ $0.desiredState == .running || $0.status.state.isTerminal }) {
                return (line, "verify: Service \(service.spec.name) converged", 0)
            }
            return (line, nil, nil)
        }
        if let outcome { return outcome }
        FileHandle.standardError.write(Data("shoal service: the service did not converge within \(timeout); see `shoal service ps`\n".utf8))
        return 1
    }

    static func apply(_ arguments: ClusterCommands.Arguments, to spec: inout Service.Spec, creating: Bool) throws {
        func fail(_ text: String) -> ClusterCommands.Failure { ClusterCommands.Failure(description: text) }
        let mode = arguments.value("--mode")
        if let mode {
            guard creating else { throw fail("--mode cannot change after creation") }
            switch mode {
            case "replicated": spec.mode = .replicated(replicas: 1)
            case "global": spec.mode = .global
            case "replicated-job": spec.mode = .replicatedJob(completions: 1, maxConcurrent: 1)
            case "global-job": spec.mode = .globalJob
            default: throw fail("--mode must be replicated, global, replicated-job or global-job")
            }
        }
        if let text = arguments.value("--replicas") {
            guard let replicas = Int(text) else { throw fail("--replicas must be a number") }
            switch spec.mode {
            case .replicated: spec.mode = .replicated(replicas: replicas)
            case .replicatedJob(_, let concurrent):
                // Docker's default for a new job: as many at once as completions.
                spec.mode = .replicatedJob(completions: replicas, maxConcurrent: creating ? max(replicas, 1) : concurrent)
            default: throw fail("--replicas can only be used with replicated mode")
            }
        }
        if let text = arguments.value("--max-concurrent") {
            guard case .replicatedJob(let completions, _) = spec.mode else { throw fail("--max-concurrent can only be used with replicated-job mode") }
            guard let value = Int(text), value >= 1 else { throw fail("--max-concurrent '\(text)' must be a number of at least 1") }
            spec.mode = .replicatedJob(completions: completions, maxConcurrent: value)
        }
        var task = spec.task
        task.placement.constraints.removeAll { arguments.all("--constraint-rm").contains($0) }
        task.placement.constraints += arguments.all("--constraint") + arguments.all("--constraint-add")
        task.placement.preferences.removeAll { arguments.all("--placement-pref-rm").contains($0) }
        task.placement.preferences += arguments.all("--placement-pref") + arguments.all("--placement-pref-add")
        if let text = arguments.value("--max-replicas-per-node") {
            guard let value = Int(text) else { throw fail("--max-replicas-per-node must be a number") }
            task.placement.maxReplicasPerNode = value
        }
        if let text = arguments.value("--reserve-memory") { task.resources.reservedMemoryBytes = try bytes(text, "--reserve-memory") }
        if let text = arguments.value("--limit-memory") { task.resources.limitMemoryBytes = try bytes(text, "--limit-memory") }
        if let text = arguments.value("--reserve-cpu") { task.resources.reservedNanoCPUs = try nanoCPUs(text, "--reserve-cpu") }
        if let text = arguments.value("--limit-cpu") { task.resources.limitNanoCPUs = try nanoCPUs(text, "--limit-cpu") }
        if let text = arguments.value("--restart-condition") {
            guard let condition = TaskTemplate.RestartPolicy.Condition(rawValue: text) else { throw fail("--restart-condition must be none, on-failure or any") }
            task.restartPolicy.condition = condition
        }
        if let text = arguments.value("--restart-delay") { task.restartPolicy.delayMilliseconds = try milliseconds(text, "--restart-delay") }
        if let text = arguments.value("--restart-window") { task.restartPolicy.windowMilliseconds = try milliseconds(text, "--restart-window") }
        if let text = arguments.value("--restart-max-attempts") {
            guard let value = Int(text) else { throw fail("--restart-max-attempts must be a number") }
            task.restartPolicy.maxAttempts = value
        }
        if let text = arguments.value("--stop-grace-period") { task.stopGracePeriodMilliseconds = try milliseconds(text, "--stop-grace-period") }
        if let user = arguments.value("--user") ?? arguments.value("-u") { task.user = user }
        if let workdir = arguments.value("--workdir") ?? arguments.value("-w") { task.workingDirectory = workdir }
        try applyHealthCheck(arguments, to: &task)
        for name in arguments.all("--env-rm") { task.environment.removeAll { $0 == name || $0.hasPrefix(name + "=") } }
        for entry in arguments.all("-e") + arguments.all("--env") + arguments.all("--env-add") {
            let name = entry.split(separator: "=", maxSplits: 1).first.map(String.init) ?? entry
            task.environment.removeAll { $0 == name || $0.hasPrefix(name + "=") }
            task.environment.append(entry)
        }
        for name in arguments.all("--label-rm") { spec.labels[name] = nil }
        for label in arguments.all("--label") + arguments.all("--label-add") {
            let parts = label.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            spec.labels[String(parts[0])] = parts.count == 2 ? String(parts[1]) : ""
        }
        try applyUpdateConfig(arguments, prefix: "--update-", to: &spec.update)
        try applyUpdateConfig(arguments, prefix: "--rollback-", to: &spec.rollback)
        // --publish-rm names the target port (docker's), --mount-rm the target path.
        for text in arguments.all("--publish-rm") {
            let target = try port(text.contains(":") || text.contains("=") ? text : "0:" + text)
            task.ports.removeAll { $0.targetPort == target.targetPort && $0.transportProtocol == target.transportProtocol }
        }
        for target in arguments.all("--mount-rm") { task.mounts.removeAll { $0.target == target } }
        for text in arguments.all("--publish") + arguments.all("-p") + arguments.all("--publish-add") { task.ports.append(try port(text)) }
        for text in arguments.all("--mount") + arguments.all("--mount-add") { task.mounts.append(try mount(text)) }
        spec.task = task
    }

    /// `--health-cmd CMD` (run as `sh -c CMD`, Docker's CMD-SHELL) and the
    /// timings; each left out keeps what the spec (on update) or the image has.
    static func applyHealthCheck(_ arguments: ClusterCommands.Arguments, to task: inout TaskTemplate) throws {
        let flags = ["--health-cmd", "--health-interval", "--health-timeout", "--health-retries", "--health-start-period"]
        let given = flags.filter { arguments.value($0) != nil }
        if arguments.switches.contains("--no-healthcheck") {
            guard given.isEmpty else {
                throw ClusterCommands.Failure(description: "--no-healthcheck cannot be combined with \(given.joined(separator: ", ")): it turns every check off")
            }
            task.healthCheck = .noHealthCheck
            return
        }
        guard !given.isEmpty else { return }
        var check = task.healthCheck ?? TaskTemplate.HealthCheck()
        check.disabled = false
        if let command = arguments.value("--health-cmd") {
            guard !command.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ClusterCommands.Failure(description: "--health-cmd needs the command that exits 0 when the task is healthy")
            }
            check.command = ["sh", "-c", command]
        }
        if let text = arguments.value("--health-interval") { check.intervalMilliseconds = try positiveMilliseconds(text, "--health-interval") }
        if let text = arguments.value("--health-timeout") { check.timeoutMilliseconds = try positiveMilliseconds(text, "--health-timeout") }
        if let text = arguments.value("--health-start-period") { check.startPeriodMilliseconds = try milliseconds(text, "--health-start-period") }
        if let text = arguments.value("--health-retries") {
            guard let retries = Int(text), retries >= 1 else { throw ClusterCommands.Failure(description: "--health-retries '\(text)' must be a number of at least 1") }
            check.retries = retries
        }
        task.healthCheck = check
    }

    static func positiveMilliseconds(_ text: String, _ flag: String) throws -> Int64 {
        let value = try milliseconds(text, flag)
        guard value > 0 else { throw ClusterCommands.Failure(description: "\(flag) '\(text)' must be longer than 0 (e.g. 1s)") }
        return value
    }

    /// `--update-parallelism`, `--update-delay`, ... (or `--rollback-...`) into `config`.
    static func applyUpdateConfig(_ arguments: ClusterCommands.Arguments, prefix: String, to config: inout UpdateConfig) throws {
        func fail(_ text: String) -> ClusterCommands.Failure { ClusterCommands.Failure(description: text) }
        if let text = arguments.value(prefix + "parallelism") {
            guard let value = Int(text), value >= 0 else { throw fail("\(prefix)parallelism must be 0 (all at once) or more") }
            config.parallelism = value
        }
        if let text = arguments.value(prefix + "delay") { config.delayMilliseconds = try milliseconds(text, prefix + "delay") }
        if let text = arguments.value(prefix + "monitor") { config.monitorMilliseconds = try milliseconds(text, prefix + "monitor") }
        if let text = arguments.value(prefix + "order") {
            guard let value = UpdateConfig.Order(rawValue: text) else { throw fail("\(prefix)order must be stop-first or start-first") }
            config.order = value
        }
        if let text = arguments.value(prefix + "failure-action") {
            guard let value = UpdateConfig.FailureAction(rawValue: text) else { throw fail("\(prefix)failure-action must be pause, continue or rollback") }
            config.failureAction = value
        }
        if let text = arguments.value(prefix + "max-failure-ratio") {
            guard let value = Double(text), value >= 0, value <= 1 else { throw fail("\(prefix)max-failure-ratio must be a fraction within 0...1") }
            config.maxFailureRatio = value
        }
    }

    static func port(_ text: String) throws -> TaskTemplate.PublishedPort {
        func fail() -> ClusterCommands.Failure {
            ClusterCommands.Failure(description: "--publish '\(text)' must be [PUBLISHED:]TARGET[/tcp|udp] or [published=P,]target=T[,mode=host][,protocol=udp] (no published port: a free one per task)")
        }
        // Left out: 0, a free port on the node for each task (Docker's random host port).
        var published: Int? = 0
        var target: Int?
        var transport = TaskTemplate.PublishedPort.TransportProtocol.tcp
        var mode = TaskTemplate.PublishedPort.Mode.host
        if text.contains("=") {
            for field in text.split(separator: ",") {
                let parts = field.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw fail() }
                switch parts[0] {
                case "published": published = Int(parts[1]).flatMap { $0 >= 0 ? $0 : nil }
                case "target": target = Int(parts[1])
                case "mode":
                    guard let value = TaskTemplate.PublishedPort.Mode(rawValue: parts[1]) else { throw fail() }
                    mode = value
                case "protocol":
                    guard let value = TaskTemplate.PublishedPort.TransportProtocol(rawValue: parts[1]) else { throw fail() }
                    transport = value
                default: throw fail()
                }
            }
        } else {
            var body = Substring(text)
            if let slash = body.firstIndex(of: "/") {
                guard let value = TaskTemplate.PublishedPort.TransportProtocol(rawValue: String(body[body.index(after: slash)...])) else { throw fail() }
                transport = value
                body = body[..<slash]
            }
            let parts = body.split(separator: ":").map { Int($0) }
            guard parts.count == 2 || parts.count == 1 else { throw fail() }
            published = parts.count == 2 ? parts[0] : 0
            target = parts.last!
        }
        guard let published, let target else { throw fail() }
        if mode == .ingress {
            throw ClusterCommands.Failure(description: "--publish mode=ingress: the routing mesh is not built yet; publish with mode=host")
        }
        return TaskTemplate.PublishedPort(publishedPort: published, targetPort: target, transportProtocol: transport, mode: mode)
    }

    static func mount(_ text: String) throws -> TaskTemplate.Mount {
        var kind = TaskTemplate.Mount.Kind.volume
        var source = ""
        var target = ""
        var readOnly = false
        for field in text.split(separator: ",") {
            let parts = field.split(separator: "=", maxSplits: 1).map(String.init)
            switch parts[0] {
            case "type":
                guard parts.count == 2, let value = TaskTemplate.Mount.Kind(rawValue: parts[1]) else {
                    throw ClusterCommands.Failure(description: "--mount type must be bind or volume")
                }
                kind = value
            case "src", "source": source = parts.count == 2 ? parts[1] : ""
            case "dst", "destination", "target": target = parts.count == 2 ? parts[1] : ""
            case "readonly", "ro": readOnly = parts.count == 1 || parts[1] == "true" || parts[1] == "1"
            default: throw ClusterCommands.Failure(description: "--mount: unknown field '\(parts[0])' (type, src, dst, readonly)")
            }
        }
        return TaskTemplate.Mount(kind: kind, source: source, target: target, readOnly: readOnly)
    }

    /// `512m`, `1g`, `1048576`.
    static func bytes(_ text: String, _ flag: String) throws -> Int64 {
        let lower = text.lowercased()
        let units: [(String, Int64)] = [("kib", 1 << 10), ("mib", 1 << 20), ("gib", 1 << 30), ("kb", 1 << 10), ("mb", 1 << 20), ("gb", 1 << 30),
                                        ("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("b", 1)]
        for (suffix, scale) in units where lower.hasSuffix(suffix) {
            if let value = Double(lower.dropLast(suffix.count)) { return Int64(value * Double(scale)) }
        }
        guard let value = Int64(lower) else { throw ClusterCommands.Failure(description: "\(flag) '\(text)' is not a size like 512m or 1g") }
        return value
    }

    static func nanoCPUs(_ text: String, _ flag: String) throws -> Int64 {
        guard let value = Double(text), value >= 0 else { throw ClusterCommands.Failure(description: "\(flag) '\(text)' is not a CPU count like 0.5") }
        return Int64(value * 1e9)
    }

    /// `5s`, `300ms`, `1m`, `1h`.
    static func milliseconds(_ text: String, _ flag: String) throws -> Int64 {
        if text == "0" { return 0 }
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            if let value = Double(text.dropLast(suffix.count)) { return Int64(value * scale) }
        }
        throw ClusterCommands.Failure(description: "\(flag) '\(text)' is not a duration like 5s or 300ms")
    }

    static func modeName(_ mode: Service.Mode) -> String {
        switch mode {
        case .replicated: return "replicated"
        case .global: return "global"
        case .replicatedJob: return "replicated job"
        case .globalJob: return "global job"
        }
    }

    static func generatedName() -> String {
        let adjectives = ["brave", "calm", "eager", "fair", "keen", "quick", "bold", "wise"]
        let nouns = ["herring", "sprat", "anchovy", "minnow", "sardine", "smelt", "shad", "dace"]
        return "\(adjectives.randomElement()!)_\(nouns.randomElement()!)"
    }

    static func truncate(_ text: String, _ length: Int) -> String {
        let single = text.replacingOccurrences(of: "\n", with: " ")
        return single.count <= length ? single : String(single.prefix(length - 1)) + "…"
    }

    static func flush() { _ = fflush(nil) }
}
