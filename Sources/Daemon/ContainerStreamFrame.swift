import Foundation
import Runtime

/// One frame of an attached stream, after `101 Switching Protocols` on
/// `POST /v1/containers/{id}/attach` or a streaming exec: an 8-byte header
/// (kind, three zero bytes, big-endian u32 payload length) and the payload,
/// in both directions. Docker's multiplexed stream header, with kinds for what
/// Docker sends out of band: the exit (its wait call), the end of input (its
/// half-close) and the window size (its resize call), so one connection
/// carries everything and a client can detach by simply closing it.
public struct ContainerStreamFrame: Equatable, Sendable {
    public enum Kind: UInt8, Sendable {
        /// Client to daemon: bytes for the process's stdin.
        case standardInput = 0
        /// Daemon to client: output (a terminal's output is all stdout).
        case standardOutput = 1
        case standardError = 2
        /// Daemon to client, last: JSON ``ContainerStreamExit``.
        case exit = 3
        /// Client to daemon: no more input (stdin closes where the container
        /// was created with `stdinOnce`, or for an exec's stdin pipe).
        case endOfInput = 4
        /// Client to daemon: big-endian u16 rows and u16 columns.
        case resize = 5
    }

    public var kind: Kind
    public var payload: [UInt8]

    public static let headerBytes = 8
    /// A frame announcing more than this is a protocol error.
    public static let maxPayloadBytes = 1 << 20

    public init(_ kind: Kind, _ payload: [UInt8] = []) {
        self.kind = kind
        self.payload = payload
    }

    public static func resize(_ size: TerminalSize) -> ContainerStreamFrame {
        ContainerStreamFrame(.resize, [UInt8(size.rows >> 8), UInt8(size.rows & 0xff), UInt8(size.columns >> 8), UInt8(size.columns & 0xff)])
    }

    public static func exit(_ exit: ContainerStreamExit) -> ContainerStreamFrame {
        ContainerStreamFrame(.exit, Array((try? JSONEncoder().encode(exit)) ?? Data()))
    }

    /// The size a `.resize` frame carries.
    public var terminalSize: TerminalSize? {
        guard kind == .resize, payload.count == 4 else { return nil }
        return TerminalSize(rows: UInt16(payload[0]) << 8 | UInt16(payload[1]), columns: UInt16(payload[2]) << 8 | UInt16(payload[3]))
    }

    public func encoded() -> [UInt8] {
        let length = UInt32(payload.count)
        return [kind.rawValue, 0, 0, 0, UInt8(length >> 24), UInt8((length >> 16) & 0xff), UInt8((length >> 8) & 0xff), UInt8(length & 0xff)] + payload
    }
}

/// The last frame of an attached stream: how the process ended.
public struct ContainerStreamExit: Codable, Equatable, Sendable {
    /// Docker's convention (128 + signal); -1 when unknown.
    public var exitCode: Int32
    /// Why it could not start, when it did not.
    public var error: String?

    public init(exitCode: Int32, error: String? = nil) {
        self.exitCode = exitCode
        self.error = error
    }
}

/// Splits the bytes of an attached stream into frames as they arrive.
public struct ContainerStreamFrameDecoder: Sendable {
    private var buffer: [UInt8] = []

    public init() {}

    public mutating func feed(_ bytes: [UInt8]) {
        buffer += bytes
    }

    /// The next complete frame; nil until more bytes arrive.
    public mutating func next() throws -> ContainerStreamFrame? {
        guard buffer.count >= ContainerStreamFrame.headerBytes else { return nil }
        guard let kind = ContainerStreamFrame.Kind(rawValue: buffer[0]), buffer[1] == 0, buffer[2] == 0, buffer[3] == 0 else {
            throw APIError(status: 400, code: "bad_frame", message: "not a stream frame (header \(buffer.prefix(8)))", hint: "speak the attach protocol of the API document")
        }
        let length = Int(buffer[4]) << 24 | Int(buffer[5]) << 16 | Int(buffer[6]) << 8 | Int(buffer[7])
        guard length <= ContainerStreamFrame.maxPayloadBytes else {
            throw APIError(status: 400, code: "bad_frame", message: "a stream frame of \(length) bytes", hint: "send at most \(ContainerStreamFrame.maxPayloadBytes) bytes per frame")
        }
        guard buffer.count >= ContainerStreamFrame.headerBytes + length else { return nil }
        let frame = ContainerStreamFrame(kind, Array(buffer[ContainerStreamFrame.headerBytes..<ContainerStreamFrame.headerBytes + length]))
        buffer.removeFirst(ContainerStreamFrame.headerBytes + length)
        return frame
    }
}
