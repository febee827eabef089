import Foundation
import Testing
@testable import Net

/// Interoperability with an independent TLS implementation: the `openssl`
/// command-line tool as a client of our server.
@Suite("openssl s_client against our server", .timeLimit(.minutes(2)), .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl")))
struct OpenSSLPeerTests {
    /// Writes client credentials as files for s_client.
    private func files(_ cluster: TestCluster, in directory: String) throws -> (certificate: String, key: String, root: String) {
        let (certificate, key) = try cluster.authority.issueNodeCredentials(nodeID: "cli-1", role: .worker)
        try certificate.write(toFile: directory + "/node.pem")
        try key.write(toFile: directory + "/node.key")
        try cluster.root.write(toFile: directory + "/root.pem")
        return (directory + "/node.pem", directory + "/node.key", directory + "/root.pem")
    }

    @Test func sClientWithClusterCertificateIsAcceptedOverTLS13() async throws {
        let cluster = try TestCluster(clusterID: "interop")
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let paths = try files(cluster, in: directory)
        let server = try TLSEchoServer(context: cluster.serverContext())
        let output = try await runProcess("/usr/bin/openssl", [
            "s_client", "-connect", "\(server.address)", "-cert", paths.certificate, "-key", paths.key,
            "-CAfile", paths.root, "-verify_return_error", "-brief",
        ], input: "")
        let outcome = try #require(await server.nextOutcome())
        #expect(try outcome.get() == DistinguishedName(commonName: "cli-1", organizationalUnit: "worker", organization: "interop"))
        #expect(output.contains("TLSv1.3"), "s_client said: \(output)")
        #expect(output.contains("Verification: OK"), "s_client said: \(output)")
        await server.stop()
    }

    @Test func tls11ClientIsRefused() async throws {
        let cluster = try TestCluster()
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let paths = try files(cluster, in: directory)
        let server = try TLSEchoServer(context: cluster.serverContext())
        // SECLEVEL=0 lets s_client itself offer TLS 1.1, so the refusal must come from us.
        let output = try await runProcess("/usr/bin/openssl", [
            "s_client", "-connect", "\(server.address)", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0",
            "-cert", paths.certificate, "-key", paths.key, "-CAfile", paths.root,
        ], input: "")
        let outcome = try #require(await server.nextOutcome())
        guard case .failure(let error) = outcome, case TLSError.protocolVersionRefused = error else {
            Issue.record("expected a protocol version refusal, got \(outcome); s_client said: \(output)")
            await server.stop()
            return
        }
        #expect("\(error)".contains("TLS 1.2 or newer"))
        #expect(output.contains("alert protocol version") || output.contains("unsupported protocol"), "s_client said: \(output)")
        await server.stop()
    }
}

/// Runs a process off the cooperative pool and returns its combined output.
func runProcess(_ executable: String, _ arguments: [String], input: String) async throws -> String {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            let output = Pipe(), stdin = Pipe()
            process.standardOutput = output
            process.standardError = output
            process.standardInput = stdin
            do {
                try process.run()
                stdin.fileHandleForWriting.write(Data(input.utf8))
                try stdin.fileHandleForWriting.close()
                let data = output.fileHandleForReading.readDataToEndOfFile()
                process.waitUntilExit()
                continuation.resume(returning: String(decoding: data, as: UTF8.self))
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }
}
