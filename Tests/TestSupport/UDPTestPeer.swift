import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A UDP socket on 127.0.0.1 for the published-UDP tests: a client that
/// sends a datagram and waits for the answer, or (``serveEcho()``) a server
/// that answers `PAYLOAD from ADDRESS:PORT` as shoal-test-udp-echo does.
public final class UDPTestPeer: @unchecked Sendable {
    /// The static echo server built beside the test bundle, for containers.
    public static var echoExecutable: String? {
        guard let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        let path = (executable as NSString).deletingLastPathComponent + "/shoal-test-udp-echo"
        return FileManager.default.isExecutableFile(atPath: path) ? path : nil
    }

    public let descriptor: Int32
    public let port: UInt16
    /// Signalled by ``serveEcho()``'s thread as it ends.
    private let echoEnded = DispatchSemaphore(value: 0)
    /// Whether an echo thread runs (set and cleared on the test's thread).
    private var echoing = false

    public init() throws {
        let opened = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard opened >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(opened, $0, length) == 0 && getsockname(opened, $0, &length) == 0 }
        }
        guard bound else {
            let failure = POSIXErrorCode(rawValue: errno) ?? .EIO
            close(opened)
            throw POSIXError(failure)
        }
        descriptor = opened
        port = UInt16(bigEndian: address.sin_port)
    }

    // The echo thread is gone before the descriptor is closed: a thread still
    // reading would read from whatever socket reuses the number next.
    deinit {
        shutdown()
        close(descriptor)
    }

    /// Sends `text` to 127.0.0.1:`port` (again every 200 ms: the other end
    /// may not listen yet) until an answer comes or `within` passes.
    public func exchange(_ text: String, port: UInt16, within: Duration = .seconds(20)) -> String? {
        var destination = Self.loopback(port: port)
        let deadline = ContinuousClock.now + within
        repeat {
            _ = withUnsafePointer(to: &destination) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(descriptor, text, text.utf8.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            if poll(&ready, 1, 200) == 1 {
                var buffer = [UInt8](repeating: 0, count: 2048)
                let count = recv(descriptor, &buffer, buffer.count, 0)
                if count >= 0 { return String(decoding: buffer[..<count], as: UTF8.self) }
            }
        } while ContinuousClock.now < deadline
        return nil
    }

    /// Answers every datagram on its own thread until ``shutdown()``.
    public func serveEcho() {
        echoing = true
        let thread = Thread { [descriptor, echoEnded] in
            defer { echoEnded.signal() }
            var buffer = [UInt8](repeating: 0, count: 2048)
            while true {
                var peer = sockaddr_in()
                var length = socklen_t(MemoryLayout<sockaddr_in>.size)
                let count = withUnsafeMutablePointer(to: &peer) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(descriptor, &buffer, buffer.count, 0, $0, &length) }
                }
                // A UDP socket shut down answers every recvfrom with 0 at once
                // (never -1): end there, or spin until the descriptor is closed
                // and then read from the next socket given its number. (The
                // tests send no empty datagram.)
                if count <= 0 { return }
                let address = String(cString: inet_ntoa(peer.sin_addr))
                let reply = String(decoding: buffer[..<count], as: UTF8.self) + " from \(address):\(UInt16(bigEndian: peer.sin_port))"
                _ = withUnsafePointer(to: &peer) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(descriptor, reply, reply.utf8.count, 0, $0, length) }
                }
            }
        }
        thread.start()
    }

    /// Ends ``serveEcho()``'s thread and returns once it has ended.
    public func shutdown() {
        guard echoing else { return }
        _ = Glibc.shutdown(descriptor, Int32(SHUT_RDWR))
        echoEnded.wait()
        echoing = false
    }

    public static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = port.bigEndian
        return address
    }

    /// The `from ADDRESS:PORT` of an echo answer.
    public static func sender(_ answer: String?) -> String? {
        answer?.components(separatedBy: " from ").last
    }
}
