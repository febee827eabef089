import Daemon
import Foundation
import HTTP
import Runtime

/// `shoal daemon`, and the cluster commands that talk to a daemon's control
/// API: `init`, `join`, `join-token`, `leave`, `node`, `cluster`, `events`,
/// `ca issue-client`.
enum ClusterCommands {
    static let commands: Set<String> = ["daemon", "init", "join", "join-token", "leave", "node", "cluster", "events", "ca"]

    static let usage = """
        shoal daemon [--data DIR] [--host unix:///run/shoal/shoal.sock] [--hostname NAME] [--cgroup-parent shoal] [--bridge shoal0 --bip 10.88.0.1/16]
                     [--default-publish-address IP (dockerd's --ip; default 0.0.0.0)]
                     [--heartbeat-period 5s (as a manager: how often workers report; down after 3 missed; give every manager the same)]
        shoal init [--advertise-addr IP[:PORT]] [--listen-addr IP:PORT] [--api-listen-addr IP:PORT] [--force-new-cluster]
        shoal join --token TOKEN [--advertise-addr IP[:PORT]] [--listen-addr IP:PORT] [--api-listen-addr IP:PORT] MANAGER-IP:PORT
        shoal join-token worker|manager [--rotate] [-q]
        shoal leave [--force]
        shoal node ls | inspect NODE | update NODE [--availability active|pause|drain] [--label-add K=V] [--label-rm K]
                   | promote NODE... | demote NODE... | rm [--force] NODE...
        shoal cluster inspect
        shoal events [--since INDEX]
        shoal ca issue-client --out DIR [--name NAME]
        Common: --host unix:///PATH | https://IP:PORT (or SHOAL_HOST), --tls-dir DIR (with https), --format table|json
        """

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Parsed flags: `--name value`, `--name=value`, switches, and positionals.
    struct Arguments {
        var values: [String: [String]] = [:]
        var switches: Set<String> = []
        var positional: [String] = []

        init(_ arguments: [String], switches known: Set<String>) throws {
            var index = 0
            while index < arguments.count {
                let argument = arguments[index]
                if argument.hasPrefix("-") && argument.count > 1 {
                    var name = argument
                    var value: String?
                    if let equals = argument.firstIndex(of: "=") {
                        name = String(argument[..<equals])
                        value = String(argument[argument.index(after: equals)...])
                    }
                    if known.contains(name) {
                        switches.insert(name)
                    } else {
                        if value == nil {
                            index += 1
                            guard index < arguments.count else { throw Failure(description: "\(name) needs a value") }
                            value = arguments[index]
                        }
                        values[name, default: []].append(value!)
                    }
                } else {
                    positional.append(argument)
                }
                index += 1
            }
        }

        func value(_ name: String) -> String? { values[name]?.last }
        func all(_ name: String) -> [String] { values[name] ?? [] }

        /// Refuses flags outside `known`: a long-running daemon that silently
        /// ignored a misspelt `--socket` would serve somewhere else.
        func rejectingUnknown(_ known: Set<String>, positionals: Int = 0) throws -> Arguments {
            let unknown = Set(values.keys).union(switches).subtracting(known).sorted()
            guard unknown.isEmpty else {
                throw Failure(description: "unknown flag\(unknown.count == 1 ? "" : "s") \(unknown.joined(separator: ", ")); known: \(known.sorted().joined(separator: " "))")
            }
            guard positional.count <= positionals else {
                throw Failure(description: "unexpected argument '\(positional[positionals])'")
            }
            return self
        }
    }

    static func run(_ command: String, _ rest: [String]) -> Int32 {
        if command == "daemon" { return runDaemon(rest) }
        return blocking {
            do {
                let switches: Set<String> = ["--rotate", "-q", "--quiet", "--force", "--force-new-cluster", "--json"]
                let arguments = try Arguments(rest, switches: switches)
                let host = arguments.value("--host") ?? ProcessInfo.processInfo.environment["SHOAL_HOST"] ?? "unix://\(DaemonSettings.defaultSocketPath)"
                let client = try ControlClient(host: host, tlsDirectory: arguments.value("--tls-dir") ?? ProcessInfo.processInfo.environment["SHOAL_TLS_DIR"])
                defer { Task { await client.shutdown() } }
                let format = arguments.value("--format") ?? (arguments.switches.contains("--json") ? "json" : "table")
                guard format == "table" || format == "json" else { throw Failure(description: "--format must be table or json") }
                return try await dispatch(command, arguments, client: client, json: format == "json")
            } catch let error as APIError {
                var text = "shoal \(command): \(error.message)"
                if !error.hint.isEmpty { text += "\nhint: \(error.hint)" }
                FileHandle.standardError.write(Data((text + "\n").utf8))
                return 1
            } catch {
                FileHandle.standardError.write(Data("shoal \(command): \(describe(error))\n".utf8))
                return 1
            }
        }
    }

    static func describe(_ error: any Error) -> String {
        let text = "\(error)"
        if text.contains("ENOENT") || text.contains("No such file") || text.contains("ECONNREFUSED") || text.contains("Connection refused") {
            return "cannot reach the daemon (\(text)); is `shoal daemon` running? (--host or SHOAL_HOST selects another)"
        }
        return text
    }

    static func blocking(_ body: @escaping @Sendable () async -> Int32) -> Int32 {
        let semaphore = DispatchSemaphore(value: 0)
        let box = CodeBox()
        Task {
            box.code = await body()
            semaphore.signal()
        }
        semaphore.wait()
        return box.code
    }

    final class CodeBox: @unchecked Sendable { var code: Int32 = 0 }

    // MARK: daemon

    static func runDaemon(_ rest: [String]) -> Int32 {
        let arguments: Arguments
        do {
            arguments = try Arguments(rest, switches: []).rejectingUnknown(networkFlags.union(["--host", "--data", "--hostname", "--cgroup-parent", "--heartbeat-period"]))
        } catch {
            FileHandle.standardError.write(Data("shoal daemon: \(error)\n".utf8))
            return 2
        }
        var host = arguments.value("--host") ?? ProcessInfo.processInfo.environment["SHOAL_HOST"] ?? "unix://\(DaemonSettings.defaultSocketPath)"
        if host.hasPrefix("unix://") { host.removeFirst("unix://".count) }
        guard host.hasPrefix("/") else {
            FileHandle.standardError.write(Data("shoal daemon: --host must be unix:///PATH (the local API is a Unix socket)\n".utf8))
            return 2
        }
        var settings = DaemonSettings(dataDirectory: arguments.value("--data") ?? DaemonSettings.defaultDataDirectory, socketPath: host)
        // Several daemons on one machine (tests, Cluster/ scripts) tell their nodes and containers apart with these.
        if let hostname = arguments.value("--hostname") { settings.hostname = hostname }
        if let parent = arguments.value("--cgroup-parent") {
            guard !parent.isEmpty, !parent.contains(".."), !parent.hasPrefix("/") else {
                FileHandle.standardError.write(Data("shoal daemon: --cgroup-parent must be a relative cgroup name like shoal\n".utf8))
                return 2
            }
            settings.cgroupParent = parent
        }
        if let problem = network(arguments, into: &settings) ?? heartbeatPeriod(arguments, into: &settings) {
            FileHandle.standardError.write(Data("shoal daemon: \(problem)\n".utf8))
            return 2
        }
        let daemon = Daemon(settings: settings)
        let settingsUsed = settings
        return ForegroundDaemon.run(daemon, name: "shoal daemon") {
            try await daemon.start()
            print("shoal daemon: serving on unix://\(settingsUsed.socketPath), state in \(settingsUsed.dataDirectory)")
        }
    }

    static let networkFlags: Set<String> = ["--bridge", "--bip", "--default-publish-address", "--ip"]

    /// `--heartbeat-period DURATION` (Swarm's `--dispatcher-heartbeat`):
    /// how often the workers in session with this manager report; a worker
    /// silent for three periods is down and its tasks move. Returns what is
    /// wrong, or nil.
    static func heartbeatPeriod(_ arguments: Arguments, into settings: inout DaemonSettings) -> String? {
        guard let text = arguments.value("--heartbeat-period") else { return nil }
        guard let milliseconds = try? ServiceCommands.milliseconds(text, "--heartbeat-period"), milliseconds >= 100 else {
            return "--heartbeat-period '\(text)' must be a duration of at least 100ms, like 5s (the default)"
        }
        settings.heartbeatPeriod = .milliseconds(milliseconds)
        return nil
    }

    /// `--bridge NAME` and `--bip A.B.C.1/N` (dockerd's flags): the node
    /// bridge of bridge containers and service tasks, and its address and
    /// subnet. Several daemons on one machine need one each.
    /// `--default-publish-address IP` (dockerd's `--ip`): where published
    /// ports that name no address bind. Returns what is wrong, or nil.
    static func network(_ arguments: Arguments, into settings: inout DaemonSettings) -> String? {
        for flag in ["--default-publish-address", "--ip"] {
            guard let text = arguments.value(flag) else { continue }
            guard IPv4Subnet.parseAddress(text) != nil else {
                return "\(flag) '\(text)' must be an IPv4 address of this host, like 127.0.0.1 (0.0.0.0: every interface)"
            }
            settings.defaultPublishAddress = text
        }
        if let name = arguments.value("--bridge") { settings.bridge.name = name }
        if let text = arguments.value("--bip") {
            let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, let address = IPv4Subnet.parseAddress(parts[0]), let length = Int(parts[1]), (0...32).contains(length) else {
                return "--bip '\(text)' must be the bridge's address and prefix length, like 10.89.0.1/24"
            }
            let subnet = IPv4Subnet(network: address, prefixLength: length)
            guard address == subnet.network + 1 else {
                return "--bip '\(text)': the bridge holds its subnet's first address; use \(IPv4Subnet.format(subnet.network + 1))/\(length)"
            }
            settings.bridge.subnet = subnet
        }
        return settings.bridge.problem.map { "--bridge/--bip: \($0)" }
    }

    // MARK: commands

    static func dispatch(_ command: String, _ arguments: Arguments, client: ControlClient, json: Bool) async throws -> Int32 {
        switch command {
        case "init":
            let request = InitRequest(listenAddress: arguments.value("--listen-addr"), advertiseAddress: arguments.value("--advertise-addr"),
                                      apiListenAddress: arguments.value("--api-listen-addr"),
                                      forceNewCluster: arguments.switches.contains("--force-new-cluster") ? true : nil)
            let reply: InitReply = try await client.call(.post, "/v1/init", json: request)
            if json { return output(reply) }
            if request.forceNewCluster == true {
                print("Restarted the cluster from this manager's state with this node (\(reply.nodeID)) as its only manager.")
            } else {
                print("Cluster initialized: this node (\(reply.nodeID)) is now a manager.")
            }
            print("\nTo add a worker to this cluster, run the following command:\n\n    shoal join --token \(reply.workerToken) \(reply.advertiseAddress)\n")
            print("To add a manager to this cluster, run the following command:\n\n    shoal join --token \(reply.managerToken) \(reply.advertiseAddress)\n")
            return 0

        case "join":
            guard let token = arguments.value("--token"), arguments.positional.count == 1 else {
                throw Failure(description: "usage: shoal join --token TOKEN MANAGER-IP:PORT")
            }
            let reply: JoinReply = try await client.call(.post, "/v1/join", json: JoinRequest(
                token: token, address: arguments.positional[0], listenAddress: arguments.value("--listen-addr"),
                advertiseAddress: arguments.value("--advertise-addr"), apiListenAddress: arguments.value("--api-listen-addr")))
            if json { return output(reply) }
            print("This node (\(reply.nodeID)) joined the cluster as a \(reply.role).")
            return 0

        case "join-token":
            guard arguments.positional.count == 1, ["worker", "manager"].contains(arguments.positional[0]) else {
                throw Failure(description: "usage: shoal join-token worker|manager [--rotate]")
            }
            let role = arguments.positional[0]
            var token: String
            if arguments.switches.contains("--rotate") {
                let rotated: RotatedTokenView = try await client.call(.post, "/v1/join-tokens/\(role)/rotate")
                token = rotated.token
                if !json && !quiet(arguments) { print("Successfully rotated the \(role) join token.\n") }
            } else {
                let tokens: JoinTokensView = try await client.call(.get, "/v1/join-tokens")
                token = role == "worker" ? tokens.worker : tokens.manager
            }
            if json { return output(["role": role, "token": token]) }
            if quiet(arguments) {
                print(token)
            } else {
                let status: DaemonStatus = try await client.call(.get, "/v1/status")
                print("To add a \(role) to this cluster, run the following command:\n\n    shoal join --token \(token) \(status.advertiseAddress ?? "MANAGER-IP:4242")\n")
            }
            return 0

        case "leave":
            try await client.perform(.post, "/v1/leave", json: LeaveRequest(force: arguments.switches.contains("--force")))
            if !json { print("Node left the cluster.") }
            return 0

        case "node":
            return try await node(arguments, client: client, json: json)

        case "cluster":
            guard arguments.positional.first == "inspect" else { throw Failure(description: "usage: shoal cluster inspect") }
            let view: ClusterView = try await client.call(.get, "/v1/cluster")
            if json { return output(view) }
            print("Cluster:        \(view.clusterID)")
            print("Leader:         \(view.leaderNodeID ?? "none") (Raft member \(view.raft.leader))")
            print("Term:           \(view.raft.term)")
            print("Commit index:   \(view.raft.commitIndex)")
            print("Applied index:  \(view.raft.appliedIndex) (on the answering manager)")
            print("Snapshot index: \(view.raft.snapshotIndex)")
            if let period = view.heartbeatPeriodMilliseconds { print("Heartbeat:      every \(Double(period) / 1000)s (a worker silent for \(3 * Double(period) / 1000)s is down)") }
            print("Members:")
            printTable(["RAFT ID", "NODE", "ADDRESS", "SUFFRAGE", "STATUS"], view.members.map { member in
                [String(member.raftID), member.nodeID ?? "-", member.address ?? "-", member.suffrage, member.leader ? "Leader" : member.reachability.capitalized]
            })
            return 0

        case "events":
            var target = "/v1/events"
            if let since = arguments.value("--since") {
                guard UInt64(since) != nil else { throw Failure(description: "--since must be a log index") }
                target += "?since=\(since)"
            }
            for try await line in try await client.lines(target) {
                if json {
                    print(line)
                } else if let event = try? JSONDecoder().decode(EventLine.self, from: Data(line.utf8)) {
                    print("\(event.index)  \(event.kind) \(event.action)  \(event.id)")
                }
                flushOutput()
            }
            return 0

        case "ca":
            guard arguments.positional.first == "issue-client", let directory = arguments.value("--out") else {
                throw Failure(description: "usage: shoal ca issue-client --out DIR [--name NAME]")
            }
            let name = arguments.value("--name") ?? "client"
            let reply: ClientCertificateReply = try await client.call(.post, "/v1/ca/client-certificates", json: ClientCertificateRequest(name: name))
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            FileManager.default.createFile(atPath: directory + "/client.key", contents: Data(reply.keyPEM.utf8), attributes: [.posixPermissions: 0o600])
            FileManager.default.createFile(atPath: directory + "/client.crt", contents: Data(reply.certificatePEM.utf8), attributes: [.posixPermissions: 0o644])
            FileManager.default.createFile(atPath: directory + "/ca.crt", contents: Data(reply.rootPEM.utf8), attributes: [.posixPermissions: 0o644])
            if !json { print("Wrote client.crt, client.key and ca.crt to \(directory); use --host https://MANAGER:4243 --tls-dir \(directory)") }
            return 0

        default:
            throw Failure(description: "unknown command \(command)")
        }
    }

    struct EventLine: Decodable {
        var index: UInt64
        var action: String
        var kind: String
        var id: String
    }

    static func flushOutput() { _ = fflush(nil) }

    static func quiet(_ arguments: Arguments) -> Bool { arguments.switches.contains("-q") || arguments.switches.contains("--quiet") }

    static func node(_ arguments: Arguments, client: ControlClient, json: Bool) async throws -> Int32 {
        guard let subcommand = arguments.positional.first else { throw Failure(description: "usage: shoal node ls|inspect|update|promote|demote|rm") }
        let targets = Array(arguments.positional.dropFirst())
        func path(_ id: String) -> String { "/v1/nodes/" + PercentEncoding.encode(id) }
        switch subcommand {
        case "ls", "list":
            let nodes: [NodeView] = try await client.call(.get, "/v1/nodes")
            if json { return output(nodes) }
            let status: DaemonStatus = try await client.call(.get, "/v1/status")
            printTable(["ID", "HOSTNAME", "STATUS", "AVAILABILITY", "MANAGER STATUS", "ADDRESS"], nodes.map { node in
                let managerStatus = node.managerStatus.map { $0.leader ? "Leader" : $0.reachability.capitalized } ?? ""
                let id = node.id + (node.id == status.nodeID ? " *" : "")
                return [id, node.status.hostname, node.status.state.rawValue.capitalized, node.spec.availability.rawValue.capitalized, managerStatus, node.status.address]
            })
            return 0
        case "inspect":
            guard !targets.isEmpty else { throw Failure(description: "usage: shoal node inspect NODE...") }
            var views: [NodeView] = []
            for target in targets { views.append(try await client.call(.get, path(target))) }
            return output(views)
        case "update":
            guard targets.count == 1 else { throw Failure(description: "usage: shoal node update [--availability A] [--label-add K=V] [--label-rm K] NODE") }
            var request = NodeUpdateRequest()
            if let availability = arguments.value("--availability") {
                guard let value = NodeAvailabilityParser.parse(availability) else { throw Failure(description: "--availability must be active, pause or drain") }
                request.availability = value
            }
            var add: [String: String] = [:]
            for pair in arguments.all("--label-add") {
                let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                add[String(parts[0])] = parts.count == 2 ? String(parts[1]) : ""
            }
            if !add.isEmpty { request.labelAdd = add }
            let remove = arguments.all("--label-rm")
            if !remove.isEmpty { request.labelRemove = remove }
            let view: NodeView = try await client.call(.post, path(targets[0]) + "/update", json: request)
            if json { return output(view) }
            print(view.id)
            return 0
        case "promote", "demote":
            guard !targets.isEmpty else { throw Failure(description: "usage: shoal node \(subcommand) NODE...") }
            var views: [NodeView] = []
            for target in targets {
                let view: NodeView = try await client.call(.post, path(target) + "/\(subcommand)")
                views.append(view)
                if !json { print("Node \(view.id) \(subcommand == "promote" ? "promoted to a manager" : "demoted to a worker") in the cluster.") }
            }
            if json { return output(views) }
            return 0
        case "rm", "remove":
            guard !targets.isEmpty else { throw Failure(description: "usage: shoal node rm [--force] NODE...") }
            for target in targets {
                try await client.perform(.delete, path(target) + (arguments.switches.contains("--force") ? "?force=true" : ""))
                if !json { print(target) }
            }
            return 0
        default:
            throw Failure(description: "unknown node command \(subcommand); use ls, inspect, update, promote, demote or rm")
        }
    }

    enum NodeAvailabilityParser {
        static func parse(_ text: String) -> NodeUpdateRequest.Availability? { NodeUpdateRequest.Availability(rawValue: text) }
    }

    static func output<T: Encodable>(_ value: T) -> Int32 {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        print(String(decoding: try! encoder.encode(value), as: UTF8.self))
        return 0
    }

    static func printTable(_ header: [String], _ rows: [[String]]) {
        var widths = header.map(\.count)
        for row in rows { for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) } }
        for row in [header] + rows {
            let line = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index] + 3, withPad: " ", startingAt: 0)
            }.joined()
            print(line)
        }
    }
}
