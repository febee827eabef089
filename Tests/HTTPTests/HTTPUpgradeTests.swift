import Foundation
import Testing
import Net
@testable import HTTP

/// `101 Switching Protocols`: after the head, the connection is the
/// handler's raw byte stream in both directions (Docker's hijacked attach).
@Suite("HTTP upgrade (101 Switching Protocols)")
struct HTTPUpgradeTests {
    static func upgradeRouter() -> HTTPRouter {
        var router = HTTPRouter()
        router.add(.post, "/echo-upper") { request in
            guard request.headers.contains(name: "Upgrade", token: "tcp") else { return .text(.badRequest, "upgrade to tcp\n") }
            return .upgrade(to: "tcp", headers: ["X-Mode": "upper"]) { stream in
                // Echo upper-cased until the client ends its side, then say bye.
                while let bytes = try? await stream.read(), !bytes.isEmpty {
                    try? await stream.write(bytes.map { $0 >= 0x61 && $0 <= 0x7a ? $0 - 0x20 : $0 })
                }
                try? await stream.write(Array("BYE".utf8))
            }
        }
        return router
    }

    @Test func bothDirectionsFlowAfterTheSwitchAndHalfCloseEndsTheClientsSide() async throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let server = HTTPServer(router: Self.upgradeRouter())
        try server.listen(on: .unix(path: directory + "/http.sock"))
        let client = HTTPClient()
        let url = try HTTPURL("http+unix://\(PercentEncoding.encode(directory + "/http.sock"))/echo-upper")
        guard case .switched(let head, let stream) = try await client.upgrade(HTTPClientRequest(method: .post, url: url), to: "tcp") else {
            Issue.record("the server did not switch")
            return
        }
        #expect(head.status == .switchingProtocols && head.headers["X-Mode"] == "upper" && head.headers["Upgrade"] == "tcp")
        var received: [UInt8] = []
        // Each word answered before the next is sent: the stream is live, not buffered until the end.
        var expected = 0
        for word in ["hello ", "over ", "the upgrade"] {
            try await stream.write(Array(word.utf8))
            expected += word.utf8.count
            while received.count < expected {
                let bytes = try await stream.read(deadline: .now + .seconds(10))
                guard !bytes.isEmpty else { break }
                received += bytes
            }
        }
        try await stream.shutdownWrite()
        while true {
            let bytes = try await stream.read(deadline: .now + .seconds(10))
            if bytes.isEmpty { break }
            received += bytes
        }
        #expect(String(decoding: received, as: UTF8.self) == "HELLO OVER THE UPGRADEBYE")
        await server.shutdown(gracePeriod: .seconds(2))
    }

    @Test func aRefusedUpgradeComesBackAsTheFinalAnswerWithItsBody() async throws {
        let server = HTTPServer(router: Self.upgradeRouter())
        let address = try server.listen(on: .loopbackIPv4())
        let client = HTTPClient()
        let url = HTTPURL(address: address).with(target: "/echo-upper")
        // The route wants `tcp`; asking for another protocol is refused with the handler's answer.
        guard case .refused(let head, let body) = try await client.upgrade(HTTPClientRequest(method: .post, url: url), to: "websocket") else {
            Issue.record("the server switched to a protocol it does not speak")
            return
        }
        #expect(head.status == .badRequest && String(decoding: body, as: UTF8.self) == "upgrade to tcp\n")
        await server.shutdown(gracePeriod: .seconds(2))
    }
}
