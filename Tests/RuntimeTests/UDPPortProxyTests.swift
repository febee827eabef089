import Foundation
import TestSupport
@testable import Runtime
import Testing

/// The UDP relay on loopback alone (no container): each client gets its
/// own session, replies go back to the client that asked, idle sessions
/// close, and nothing is relayed once the proxy is closed.
@Suite("Published UDP port relay", .timeLimit(.minutes(2)))
struct UDPPortProxyTests {
    @Test func eachClientHasItsOwnSessionUntilItIsIdle() throws {
        let server = try UDPTestPeer()
        server.serveEcho()
        defer { server.shutdown() }
        let proxy = try UDPPortProxy(mapping: PublishedPort(hostAddress: "127.0.0.1", hostPort: 0, containerPort: server.port, transport: .udp),
                                     containerAddress: "127.0.0.1", sessionIdleTimeout: .milliseconds(300))
        proxy.start()
        defer { proxy.close() }
        let port = proxy.published.hostPort
        #expect(port != 0)
        let first = try UDPTestPeer()
        let second = try UDPTestPeer()
        let a1 = first.exchange("a1", port: port)
        let b1 = second.exchange("b1", port: port)
        #expect(a1?.hasPrefix("a1 from 127.0.0.1:") == true, "\(String(describing: a1))")
        #expect(b1?.hasPrefix("b1 from 127.0.0.1:") == true, "\(String(describing: b1))")
        // Two clients, two sessions: the server saw two source ports, not the clients' own.
        #expect(UDPTestPeer.sender(a1) != UDPTestPeer.sender(b1))
        #expect(UDPTestPeer.sender(a1) != "127.0.0.1:\(first.port)")
        let a2 = first.exchange("a2", port: port)
        #expect(a2?.hasPrefix("a2 ") == true && UDPTestPeer.sender(a2) == UDPTestPeer.sender(a1), "same client, same session: \(String(describing: a2))")
        // Idle past the timeout: the next datagram opens a new session.
        usleep(1_500_000)
        let a3 = first.exchange("a3", port: port)
        #expect(a3?.hasPrefix("a3 ") == true && UDPTestPeer.sender(a3) != UDPTestPeer.sender(a1), "\(String(describing: a3))")

        proxy.close()
        #expect(first.exchange("after", port: port, within: .milliseconds(600)) == nil, "closed: nothing relayed")
    }

    @Test func aPortInUseIsAClearError() throws {
        let taken = try UDPTestPeer()
        let error = #expect(throws: RuntimeError.self) {
            try UDPPortProxy(mapping: PublishedPort(hostAddress: "127.0.0.1", hostPort: taken.port, containerPort: 53, transport: .udp),
                             containerAddress: "127.0.0.1")
        }
        // A CI run once saw this bind succeed: say which network namespace
        // this thread was in and which sockets held the port, should it happen again.
        let namespaces = ["thread-self", "self"].map { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\($0)/ns/net")) ?? "?" }
        let holders = ((try? String(contentsOfFile: "/proc/net/udp", encoding: .utf8)) ?? "")
            .split(separator: "\n").filter { $0.contains(String(format: ":%04X ", taken.port)) }
        #expect("\(error.map { "\($0)" } ?? "")".contains("127.0.0.1:\(taken.port): it is already in use"),
                "thread in \(namespaces[0]), process in \(namespaces[1]); sockets on the port: \(holders)")
    }
}
