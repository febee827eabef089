import Daemon
import Foundation
import HTTP
import Testing

@Suite("Control API input checking, secrets and the OpenAPI document", .serialized, .timeLimit(.minutes(2)))
struct APITests {
    @Test("bad input on every endpoint answers 4xx with a clear message and writes nothing")
    func badInput() async throws {
        try await TestCluster.with { cluster in
            _ = try await cluster.initCluster("m1")
            let client = try cluster.client("m1")
            // No replicas: the service exists (for the name and version cases)
            // without the orchestrator and agents writing in the background.
            let service = try await client.send(.post, "/v1/services", rawBody: Array(#"{"name": "web", "mode": {"replicated": {"replicas": 0}}, "task": {"image": "busybox:latest"}}"#.utf8))
            #expect(service.status == 201, "\(service.text)")
            let before = try await StateFingerprint(client)
            let nodes = try await cluster.nodes(via: "m1")
            let nodeID = nodes[0].id

            let huge = [UInt8](repeating: UInt8(ascii: "a"), count: 2 << 20)
            let cases: [(HTTPMethod, String, [UInt8]?, Int, String)] = [
                (.post, "/v1/configs", Array("{".utf8), 400, "malformed JSON"),
                (.post, "/v1/configs", Array("[]".utf8), 400, "JSON object"),
                (.post, "/v1/configs", Array(#"{"name": 5, "data": "AA=="}"#.utf8), 400, "name"),
                (.post, "/v1/configs", Array(#"{"name": "x", "data": "AA==", "colour": "red"}"#.utf8), 400, "unknown field 'colour'"),
                (.post, "/v1/configs", Array(#"{"name": "x", "data": "not base64!"}"#.utf8), 400, "base64"),
                (.post, "/v1/configs", Array(#"{"name": "-bad", "data": "AA=="}"#.utf8), 400, "config name"),
                (.post, "/v1/configs", Array(#"{"name": "shoal.mine", "data": "AA=="}"#.utf8), 400, "reserved"),
                (.post, "/v1/configs", Array(#"{"data": "AA=="}"#.utf8), 400, "'name'"),
                (.post, "/v1/configs", huge, 413, "larger than"),
                (.post, "/v1/secrets", Array(#"{"name": "s", "data": "AA==", "extra": 1}"#.utf8), 400, "unknown field 'extra'"),
                (.post, "/v1/secrets", Array(#"{"name": "s", "data": 12}"#.utf8), 400, "data"),
                (.post, "/v1/services", Array(#"{"name": "web2", "task": {"image": "busybox", "replicas": 3}}"#.utf8), 400, "unknown field 'task.replicas'"),
                (.post, "/v1/services", Array(#"{"name": "web2", "mode": {"replicated": {"replicas": "three"}}, "task": {"image": "busybox"}}"#.utf8), 400, "mode.replicated.replicas"),
                (.post, "/v1/services", Array(#"{"name": "web2", "mode": {"replicated": {"replicas": -1}}, "task": {"image": "busybox"}}"#.utf8), 400, "replicas"),
                (.post, "/v1/services", Array(#"{"name": "web", "task": {"image": "busybox"}}"#.utf8), 409, "already used"),
                (.post, "/v1/services", Array(#"{"name": "web3", "task": {"image": ""}}"#.utf8), 400, "image"),
                (.post, "/v1/services/web/update", Array(#"{"spec": {"name": "web", "task": {"image": "busybox"}}}"#.utf8), 400, "version"),
                (.post, "/v1/services/web/update", Array(#"{"version": 1, "spec": {"name": "web", "task": {"image": "busybox"}}}"#.utf8), 409, "changed since version"),
                (.post, "/v1/services/nope/update", Array(#"{"version": 1, "spec": {"name": "nope", "task": {"image": "busybox"}}}"#.utf8), 404, "not found"),
                (.get, "/v1/services/nope", nil, 404, "not found"),
                (.delete, "/v1/services/nope", nil, 404, "not found"),
                (.delete, "/v1/services/web?version=abc", nil, 400, "version"),
                (.get, "/v1/tasks/nope", nil, 404, "not found"),
                (.get, "/v1/tasks?service=NOT_AN_ID", nil, 400, "service"),
                (.get, "/v1/nodes/nope", nil, 404, "not found"),
                (.post, "/v1/nodes/\(nodeID)/update", Array(#"{"availability": "sleepy"}"#.utf8), 400, "availability"),
                (.post, "/v1/nodes/\(nodeID)/update", Array(#"{"labelRemove": ["absent"]}"#.utf8), 400, "absent"),
                (.post, "/v1/nodes/\(nodeID)/update", Array(#"{"version": 1, "availability": "drain"}"#.utf8), 409, "changed since version"),
                (.post, "/v1/nodes/\(nodeID)/update", Array(#"{"availability": "drain", "nickname": "x"}"#.utf8), 400, "unknown field 'nickname'"),
                (.post, "/v1/nodes/nope/promote", nil, 404, "not found"),
                (.post, "/v1/nodes/\(nodeID)/demote", nil, 409, "last manager"),
                (.delete, "/v1/nodes/\(nodeID)", nil, 409, "is a manager"),
                (.delete, "/v1/nodes/nope", nil, 404, "not found"),
                (.get, "/v1/secrets/nope", nil, 404, "not found"),
                (.delete, "/v1/secrets/nope", nil, 404, "not found"),
                (.get, "/v1/configs/nope", nil, 404, "not found"),
                (.delete, "/v1/configs/nope", nil, 404, "not found"),
                (.post, "/v1/join-tokens/admin/rotate", nil, 400, "worker or manager"),
                (.get, "/v1/nodes?stale=maybe", nil, 400, "stale"),
                (.get, "/v1/events?since=-1", nil, 400, "since"),
                (.post, "/v1/init", Array(#"{"listenAddress": "not-an-ip"}"#.utf8), 409, "already part"),
                (.post, "/v1/join", Array(#"{"token": "nope", "address": "127.0.0.1:1"}"#.utf8), 409, "already part"),
                (.post, "/v1/leave", nil, 409, "manager"),
                (.post, "/v1/ca/client-certificates", Array(#"{"name": "bad name!"}"#.utf8), 400, "name"),
                (.get, "/v2/nodes", nil, 404, "no API route"),
            ]
            for (method, target, body, status, fragment) in cases {
                let response = try await client.send(method, target, rawBody: body)
                #expect(response.status == status, "\(method) \(target): \(response.status) \(response.text)")
                let error = response.error
                #expect(error != nil && !(error!.code.isEmpty) && error!.message.contains(fragment), "\(method) \(target): expected '\(fragment)' in \(response.text)")
            }
            // Nothing the requests named changed. (The commit index is no
            // measure: agents report node status in the background.)
            let after = try await StateFingerprint(client)
            #expect(after == before)
            #expect(after.configs.isEmpty && after.secrets.isEmpty)
            #expect(after.services.count == 1 && after.services[0].hasPrefix("web@"))
        }
    }

    @Test("secrets are encrypted before they are proposed and never returned")
    func secrets() async throws {
        try await TestCluster.with { cluster in
            _ = try await cluster.initCluster("m1")
            let client = try cluster.client("m1")
            let plaintext = "correct horse battery staple"
            let created = try await client.send(.post, "/v1/secrets", json: ["name": "db-password", "data": Data(plaintext.utf8).base64EncodedString()])
            #expect(created.status == 201)
            #expect(!created.text.contains("data"))
            let listed = try await client.send(.get, "/v1/secrets")
            #expect(listed.text.contains("db-password"))
            #expect(!listed.text.contains("\"data\""))
            // The Raft log on disk never holds the plaintext.
            let log = try Data(contentsOf: URL(fileURLWithPath: "\(cluster.root)/m1/raft.sqlite"))
            let wal = (try? Data(contentsOf: URL(fileURLWithPath: "\(cluster.root)/m1/raft.sqlite-wal"))) ?? Data()
            #expect(log.range(of: Data(plaintext.utf8)) == nil && wal.range(of: Data(plaintext.utf8)) == nil)
            #expect((log + wal).range(of: Data("db-password".utf8)) != nil)
            let key = try FileManager.default.attributesOfItem(atPath: "\(cluster.root)/m1/certs/secrets.key")
            #expect((key[.posixPermissions] as? Int) == 0o600)
            let socket = try FileManager.default.attributesOfItem(atPath: "\(cluster.root)/m1.sock")
            #expect((socket[.posixPermissions] as? Int) == 0o600)
        }
    }

    @Test("the OpenAPI document lists every route, and every documented operation answers a documented status")
    func openAPI() async throws {
        let documentURL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/Daemon/openapi.json")
        let document = try JSONSerialization.jsonObject(with: Data(contentsOf: documentURL)) as! [String: Any]
        #expect((document["openapi"] as? String)?.hasPrefix("3.") == true)
        let paths = document["paths"] as! [String: [String: Any]]
        var documented: Set<String> = []
        for (path, operations) in paths {
            for method in operations.keys { documented.insert("\(method.uppercased()) \(path.replacingOccurrences(of: "{", with: "<").replacingOccurrences(of: "}", with: ">"))") }
        }
        let served = Set(ControlAPI.routeList(local: true))
        #expect(served == documented, "undocumented: \(served.subtracting(documented).sorted()); documented but not served: \(documented.subtracting(served).sorted())")
        let remote = Set(ControlAPI.routeList(local: false))
        for (path, operations) in paths {
            for (method, operation) in operations {
                let localOnly = ((operation as? [String: Any])?["x-shoal-local-only"] as? Bool) == true
                let key = "\(method.uppercased()) \(path.replacingOccurrences(of: "{", with: "<").replacingOccurrences(of: "}", with: ">"))"
                #expect(remote.contains(key) != localOnly, "\(key): x-shoal-local-only does not match the mutual-TLS router")
            }
        }

        try await TestCluster.with { cluster in
            _ = try await cluster.initCluster("m1")
            let client = try cluster.client("m1")
            for (path, operations) in paths.sorted(by: { $0.key < $1.key }) {
                for (method, operation) in operations.sorted(by: { $0.key < $1.key }) {
                    // Skip the calls that would end this daemon's membership or block.
                    if ["/v1/init", "/v1/join", "/v1/leave", "/v1/events"].contains(path) && method == "post" { continue }
                    if path == "/v1/events" { continue }
                    let target = path.replacingOccurrences(of: "{id}", with: "missing").replacingOccurrences(of: "{role}", with: "worker")
                    let body: [UInt8]? = method == "post" ? Array("{}".utf8) : nil
                    let response = try await client.send(HTTPMethod(method.uppercased()), target, rawBody: body)
                    let statuses = ((operation as! [String: Any])["responses"] as! [String: Any]).keys
                    #expect(statuses.contains(String(response.status)), "\(method.uppercased()) \(target) answered \(response.status), documented: \(statuses.sorted())")
                    if response.status >= 400 {
                        #expect(response.error?.message.isEmpty == false, "\(method.uppercased()) \(target): \(response.text)")
                    }
                }
            }
            // The event stream: a created config arrives as one JSON line.
            let lines = try await client.lines("/v1/events")
            let created = try await client.send(.post, "/v1/configs", json: ["name": "watched", "data": "AA=="])
            #expect(created.status == 201)
            var iterator = lines.makeAsyncIterator()
            let first = try await iterator.next()
            #expect(first?.contains("watched") == true)
        }
    }
}


/// What the bad-input cases could have written: configs, secrets, services
/// and node specs, as name@version strings.
struct StateFingerprint: Equatable {
    var configs: [String]
    var secrets: [String]
    var services: [String]
    var nodeSpecs: [String]

    init(_ client: ControlClient) async throws {
        let configs: [ConfigView] = try await client.call(.get, "/v1/configs")
        let secrets: [SecretView] = try await client.call(.get, "/v1/secrets")
        let services = try await client.send(.get, "/v1/services")
        let nodes: [NodeView] = try await client.call(.get, "/v1/nodes")
        self.configs = configs.map { "\($0.name)@\($0.version)" }.sorted()
        self.secrets = secrets.map { "\($0.name)@\($0.version)" }.sorted()
        let serviceObjects = (try JSONSerialization.jsonObject(with: Data(services.body)) as? [[String: Any]]) ?? []
        self.services = serviceObjects.map { object -> String in
            let name = ((object["spec"] as? [String: Any])?["name"] as? String) ?? "?"
            let version = (object["meta"] as? [String: Any])?["version"] ?? object["version"] ?? "?"
            return "\(name)@\(version)"
        }.sorted()
        nodeSpecs = nodes.map { "\($0.id):\($0.spec.availability.rawValue):\($0.spec.labels.sorted { $0.key < $1.key })" }.sorted()
    }
}
