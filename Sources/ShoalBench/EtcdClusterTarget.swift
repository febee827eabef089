import Foundation
import HTTP
import Net

/// Three etcd members (Debian's etcd-server 3.4) with TLS between peers and
/// for clients, on loopback; clients write through etcd's JSON gateway
/// (`/v3/kv/put`) over HTTP/1.1 with a client certificate — the same
/// protocol stack as Shoal's API.
final class EtcdClusterTarget: ClusterTarget, @unchecked Sendable {
    let name = "etcd"
    let leaderHint = 0
    private let processes: BenchProcesses
    private let clientPorts: [UInt16]
    private let clientContext: TLSContext

    private init(processes: BenchProcesses, clientPorts: [UInt16], clientContext: TLSContext) {
        self.processes = processes
        self.clientPorts = clientPorts
        self.clientContext = clientContext
    }

    static func start() async throws -> EtcdClusterTarget {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/etcd") else {
            throw BenchmarkError(description: "/usr/bin/etcd is missing; install the benchmarks' peers with `Cluster/install-dependencies.sh --bench` (Debian's etcd-server)")
        }
        let processes = try BenchProcesses(label: "etcd")
        let directory = processes.directory
        do {
            try makeCertificates(in: directory, processes: processes)
            let clientPorts = (0..<3).map { _ in BenchProcesses.freePort() }
            let peerPorts = (0..<3).map { _ in BenchProcesses.freePort() }
            let initialCluster = (0..<3).map { "e\($0)=https://127.0.0.1:\(peerPorts[$0])" }.joined(separator: ",")
            for member in 0..<3 {
                try processes.start("e\(member)", "/usr/bin/etcd", [
                    "--name", "e\(member)", "--data-dir", "\(directory)/e\(member).etcd",
                    "--listen-client-urls", "https://127.0.0.1:\(clientPorts[member])",
                    "--advertise-client-urls", "https://127.0.0.1:\(clientPorts[member])",
                    "--listen-peer-urls", "https://127.0.0.1:\(peerPorts[member])",
                    "--initial-advertise-peer-urls", "https://127.0.0.1:\(peerPorts[member])",
                    "--initial-cluster", initialCluster, "--initial-cluster-state", "new",
                    "--cert-file", "\(directory)/server.crt", "--key-file", "\(directory)/server.key",
                    "--client-cert-auth", "--trusted-ca-file", "\(directory)/ca.crt",
                    "--peer-cert-file", "\(directory)/server.crt", "--peer-key-file", "\(directory)/server.key",
                    "--peer-client-cert-auth", "--peer-trusted-ca-file", "\(directory)/ca.crt",
                    // Equal to Shoal's defaults: 100 ms ticks, 1 s election timeout.
                    "--heartbeat-interval", "100", "--election-timeout", "1000",
                ], environment: ["ETCD_UNSUPPORTED_ARCH": "amd64"])
            }
            let certificate = try Certificate.read(fromFile: "\(directory)/client.crt")
            let key = try PrivateKey.read(fromFile: "\(directory)/client.key")
            let root = try Certificate.read(fromFile: "\(directory)/ca.crt")
            let context = try TLSContext(.node(certificate: certificate, key: key, root: root), side: .client)
            let target = EtcdClusterTarget(processes: processes, clientPorts: clientPorts, clientContext: context)
            _ = try await target.leader()
            return target
        } catch {
            processes.stopAll()
            throw error
        }
    }

    /// A CA, one server certificate for 127.0.0.1 (etcd checks IP SANs between
    /// peers), and a client certificate, made with the openssl CLI.
    private static func makeCertificates(in directory: String, processes: BenchProcesses) throws {
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(directory)/ca.key",
             "-out", "\(directory)/ca.crt", "-days", "2", "-subj", "/CN=bench-ca"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(directory)/server.key",
             "-out", "\(directory)/server.csr", "-subj", "/CN=etcd"],
            ["x509", "-req", "-in", "\(directory)/server.csr", "-CA", "\(directory)/ca.crt", "-CAkey", "\(directory)/ca.key",
             "-CAcreateserial", "-out", "\(directory)/server.crt", "-days", "2", "-extfile", "\(directory)/server.ext"],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(directory)/client.key",
             "-out", "\(directory)/client.csr", "-subj", "/CN=bench-client"],
            ["x509", "-req", "-in", "\(directory)/client.csr", "-CA", "\(directory)/ca.crt", "-CAkey", "\(directory)/ca.key",
             "-CAcreateserial", "-out", "\(directory)/client.crt", "-days", "2", "-extfile", "\(directory)/client.ext"],
        ]
        try "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n".write(toFile: "\(directory)/server.ext", atomically: true, encoding: .utf8)
        try "extendedKeyUsage=clientAuth\n".write(toFile: "\(directory)/client.ext", atomically: true, encoding: .utf8)
        for step in steps {
            let result = try processes.run("/usr/bin/openssl", step)
            guard result.status == 0 else { throw BenchmarkError(description: "openssl \(step[0]) failed: \(result.output)") }
        }
    }

    func writer(member: Int) throws -> ClusterWriter {
        var configuration = HTTPClient.Configuration(tls: clientContext)
        configuration.responseTimeout = .seconds(5)
        return Writer(client: HTTPClient(configuration: configuration), url: try HTTPURL("https://127.0.0.1:\(clientPorts[member])/v3/kv/put"))
    }

    private struct Writer: ClusterWriter {
        let client: HTTPClient
        let url: HTTPURL
        func put(key: String, value: [UInt8]) async throws {
            let body = #"{"key":"\#(Data(key.utf8).base64EncodedString())","value":"\#(Data(value).base64EncodedString())"}"#
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            let response = try await client.execute(HTTPClientRequest(method: .post, url: url, headers: headers, body: .bytes(Array(body.utf8))))
            let answer = try await response.body.collect(upTo: 1 << 20)
            guard response.status.code == 200 else {
                throw BenchmarkError(description: "etcd put answered \(response.status.code): \(String(decoding: answer, as: UTF8.self))")
            }
        }
    }

    func leader() async throws -> Int {
        try await eventually("an etcd leader", seconds: 60) { () -> Int? in
            for member in 0..<3 {
                var configuration = HTTPClient.Configuration(tls: clientContext)
                configuration.responseTimeout = .seconds(1)
                let client = HTTPClient(configuration: configuration)
                guard let url = try? HTTPURL("https://127.0.0.1:\(clientPorts[member])/v3/maintenance/status"),
                      let response = try? await client.execute(HTTPClientRequest(method: .post, url: url, body: .bytes(Array("{}".utf8)))),
                      let body = try? await response.body.collect(upTo: 1 << 20),
                      let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
                      let header = object["header"] as? [String: Any],
                      let memberID = header["member_id"] as? String, let leader = object["leader"] as? String else { continue }
                if memberID == leader { return member }
            }
            return nil
        }
    }

    func kill(member: Int) { processes.kill9("e\(member)") }

    var memberPIDs: [Int32] { (0..<3).compactMap { processes.pid("e\($0)") } }

    func stop() { processes.stopAll() }
}
