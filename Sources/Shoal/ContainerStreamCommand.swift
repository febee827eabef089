import Daemon
import Dispatch
import Foundation
import HTTP
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// The client side of an attached stream (``ContainerStreamFrame``s over an
/// upgraded connection): `run -i/-t`, `exec -i/-t` and `attach`. Copies this
/// process's stdin to the container and its output to ours, keeps the
/// container's terminal the size of ours, and ends with the process's exit
/// code, or at the detach keys (Ctrl-P Ctrl-Q) with the container running on.
struct ContainerStreamCommand {
    var stream: HTTPUpgradedStream
    /// Send our stdin (`-i`).
    var sendsInput: Bool
    /// The container has a terminal: ours goes raw while attached (when it is one).
    var terminal: Bool
    /// The sequence that detaches, nil: none (`--detach-keys ""`).
    var detachKeys: [UInt8]?

    /// Docker's default: Ctrl-P Ctrl-Q.
    static let defaultDetachKeys: [UInt8] = [0x10, 0x11]
    static let readChunkBytes = 32 * 1024

    enum Outcome {
        case exited(ContainerStreamExit)
        case detached
        /// The daemon closed the stream without an exit (it stopped).
        case lost
    }

    /// Docker's `--detach-keys` grammar: comma-separated `ctrl-X` (X a
    /// letter or one of @[\]^_) or single characters; "" turns detaching off.
    static func parseDetachKeys(_ text: String?) throws -> [UInt8]? {
        guard let text else { return defaultDetachKeys }
        if text.isEmpty { return nil }
        return try text.split(separator: ",", omittingEmptySubsequences: false).map { part -> UInt8 in
            let key = part.lowercased()
            if key.hasPrefix("ctrl-"), key.count == 6, let character = key.last?.asciiValue {
                let upper = character >= 0x61 && character <= 0x7a ? character - 0x20 : character
                if (0x40...0x5f).contains(upper) { return upper & 0x1f }
            } else if part.count == 1, let character = part.first?.asciiValue {
                return character
            }
            throw ClusterCommands.Failure(description: "--detach-keys \(text): give keys such as ctrl-p,ctrl-q (ctrl-a..ctrl-z, ctrl-@, ctrl-[, ctrl-\\, ctrl-], ctrl-^, ctrl-_, or single characters)")
        }
    }

    /// Runs until the exit frame, the detach keys, or the end of the stream.
    /// `ready` runs once the stream is being read (`run` starts the
    /// container there).
    func run(ready: () async throws -> Void = {}) async throws -> Outcome {
        let (outgoing, send) = AsyncStream.makeStream(of: [UInt8].self)
        let mode = terminal && sendsInput ? TerminalMode() : nil
        let writer = Task { [stream] in
            for await bytes in outgoing { try await stream.write(bytes) }
        }
        var resizes: DispatchSourceSignal?
        var endings: [DispatchSourceSignal] = []
        let detached = DetachFlag()
        defer {
            resizes?.cancel()
            endings.forEach { $0.cancel() }
            send.finish()
            writer.cancel()
            mode?.restore()
        }
        if terminal {
            if let size = TerminalMode.size() { send.yield(ContainerStreamFrame.resize(size).encoded()) }
            signal(SIGWINCH, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: SIGWINCH, queue: .global())
            source.setEventHandler {
                if let size = TerminalMode.size() { send.yield(ContainerStreamFrame.resize(size).encoded()) }
            }
            source.resume()
            resizes = source
        }
        if let mode {
            // Killed while raw (a closed window, kill): give the terminal back first.
            for number in [SIGTERM, SIGHUP] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    mode.restore()
                    exit(128 + number)
                }
                source.resume()
                endings.append(source)
            }
        }
        try await ready()
        mode?.makeRaw()
        if sendsInput {
            let keys = terminal ? detachKeys : nil
            let stream = self.stream
            let thread = Thread {
                Self.copyInput(send: send, detachKeys: keys) {
                    detached.set()
                    // Ends the output loop below: the daemon sees us leave.
                    stream.abort()
                }
            }
            thread.name = "shoal-attach-stdin"
            thread.start()
        }
        var decoder = ContainerStreamFrameDecoder()
        while true {
            let bytes: [UInt8]
            do {
                bytes = try await stream.read()
            } catch {
                if detached.isSet { return .detached }
                throw error
            }
            if bytes.isEmpty { return detached.isSet ? .detached : .lost }
            decoder.feed(bytes)
            while let frame = try decoder.next() {
                switch frame.kind {
                case .standardOutput: Self.writeAll(STDOUT_FILENO, frame.payload)
                case .standardError: Self.writeAll(STDERR_FILENO, frame.payload)
                case .exit:
                    let exit = (try? JSONDecoder().decode(ContainerStreamExit.self, from: Data(frame.payload))) ?? ContainerStreamExit(exitCode: -1)
                    try? await stream.close(deadline: .now + .seconds(1))
                    return .exited(exit)
                case .standardInput, .endOfInput, .resize:
                    continue
                }
            }
        }
    }

    /// Reads stdin on this (dedicated) thread until end of file, turning it
    /// into frames; calls `detach` and stops at the detach keys.
    private static func copyInput(send: AsyncStream<[UInt8]>.Continuation, detachKeys: [UInt8]?, detach: () -> Void) {
        var buffer = [UInt8](repeating: 0, count: readChunkBytes)
        var matched = 0  // bytes of the detach sequence seen and held back
        while true {
            let count = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 {
                send.yield(ContainerStreamFrame(.endOfInput).encoded())
                return
            }
            var forward: [UInt8] = []
            for byte in buffer[0..<count] {
                guard let keys = detachKeys else { forward.append(byte); continue }
                if byte == keys[matched] {
                    matched += 1
                    if matched == keys.count {
                        if !forward.isEmpty { send.yield(ContainerStreamFrame(.standardInput, forward).encoded()) }
                        detach()
                        return
                    }
                    continue
                }
                // Not the sequence after all: the held-back keys go through.
                forward += keys[0..<matched]
                matched = 0
                if byte == keys[0] { matched = 1 } else { forward.append(byte) }
            }
            if !forward.isEmpty { send.yield(ContainerStreamFrame(.standardInput, forward).encoded()) }
        }
    }

    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { return }  // our output is gone (closed pipe): nothing to show it on
            offset += count
        }
    }
}

/// Set once by the stdin thread when the detach keys arrive.
final class DetachFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}
