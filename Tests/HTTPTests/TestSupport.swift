import TestSupport
import Foundation
import Testing
import Net
@testable import HTTP

/// A cluster CA with node credentials for TLS tests.
struct TestPKI {
    let authority: CertificateAuthority

    init() throws {
        authority = try CertificateAuthority.createRoot(clusterID: "http-tests")
    }

    func context(nodeID: String, role: NodeRole, side: TLSContext.Side) throws -> TLSContext {
        let (certificate, key) = try authority.issueNodeCredentials(nodeID: nodeID, role: role)
        return try TLSContext(.node(certificate: certificate, key: key, root: authority.certificate), side: side)
    }

    /// Writes client credentials for curl; returns (certificate, key, root) paths.
    func writeClientFiles(in directory: String) throws -> (String, String, String) {
        let (certificate, key) = try authority.issueNodeCredentials(nodeID: "curl-1", role: .worker)
        try certificate.write(toFile: directory + "/client.pem")
        try key.write(toFile: directory + "/client.key")
        try authority.certificate.write(toFile: directory + "/root.pem")
        return (directory + "/client.pem", directory + "/client.key", directory + "/root.pem")
    }
}

func temporaryDirectory() throws -> String {
    let path = NSTemporaryDirectory() + "shoal-http-\(UUID().uuidString.prefix(8))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

let curlPath = "/usr/bin/curl"
let curlAvailable = FileManager.default.isExecutableFile(atPath: curlPath)

/// The process's resident memory now, from /proc/self/status.
func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return kilobytes * 1024
    }
    return 0
}

/// Reads raw responses off a plain connection with a response parser.
struct RawResponseReader {
    let connection: Connection
    var parser = HTTPParser(kind: .response)

    init(connection: Connection) {
        self.connection = connection
    }

    /// The next complete response (head and collected body); nil at end of stream.
    mutating func next(for method: HTTPMethod = .get, timeout: Duration = .seconds(10)) async throws -> (HTTPResponseHead, [UInt8])? {
        parser.expectResponse(to: method)
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        let deadline = ContinuousClock.now + timeout
        while true {
            while let event = try parser.next() {
                switch event {
                case .response(let received): if !received.status.isInformational { head = received }
                case .body(let bytes): body += bytes
                case .end: if let head { return (head, body) }
                case .request: break
                }
            }
            let bytes = try await connection.read(deadline: deadline)
            if bytes.isEmpty {
                parser.finishInput()
                if let event = try parser.next(), case .end = event, let head { return (head, body) }
                return nil
            }
            parser.feed(bytes)
        }
    }
}

/// Bytes of a deterministic pattern, for checking streamed bodies.
func pattern(_ count: Int, offset: Int = 0) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: ($0 + offset) &* 31 &+ 7) }
}
