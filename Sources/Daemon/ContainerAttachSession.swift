import Foundation
import HTTP
import Runtime

/// Drives one attached stream (``ContainerStreamFrame``s over an upgraded
/// connection): output chunks go out as they come, input frames are applied
/// in order, and once the output ends (the process exited and its exit is
/// recorded) the exit frame goes last and the connection closes. A client
/// that closes the connection first has detached: the process runs on.
struct ContainerAttachSession: Sendable {
    var output: any AsyncSequence<ContainerOutput, Never> & Sendable
    /// Applies one client frame (stdin, end of input, resize).
    var input: @Sendable (ContainerStreamFrame) async throws -> Void
    /// How the process ended; called once the output has ended.
    var exit: @Sendable () async -> ContainerStreamExit
    /// Called when the client went away first (detach) or broke the protocol.
    var detached: @Sendable () -> Void = {}
    /// Whether the output ended because the client did not keep up (no exit to report then).
    var outputWasCutOff: @Sendable () -> Bool = { false }

    /// How long the last frames may take to reach a client that stopped reading.
    static let closeTimeout: Duration = .seconds(5)

    private enum Ending { case outputEnded, clientGone }

    func run(_ stream: HTTPUpgradedStream) async {
        let ending = await withTaskGroup(of: Ending.self) { group in
            group.addTask { [output, exit, outputWasCutOff] in
                do {
                    for await chunk in output {
                        let kind: ContainerStreamFrame.Kind = chunk.stream == "stderr" ? .standardError : .standardOutput
                        try await stream.write(ContainerStreamFrame(kind, chunk.bytes).encoded())
                    }
                    // Cancelled (the client left) or cut off: no exit to report.
                    if Task.isCancelled || outputWasCutOff() { return .clientGone }
                    try await stream.write(ContainerStreamFrame.exit(await exit()).encoded())
                    return .outputEnded
                } catch {
                    return .clientGone
                }
            }
            group.addTask { [input] in
                var decoder = ContainerStreamFrameDecoder()
                do {
                    while true {
                        let bytes = try await stream.read()
                        if bytes.isEmpty { return .clientGone }
                        decoder.feed(bytes)
                        while let frame = try decoder.next() {
                            // A frame the process cannot take (it exited meanwhile) is dropped.
                            try? await input(frame)
                        }
                    }
                } catch {
                    return .clientGone
                }
            }
            let first = await group.next() ?? .clientGone
            group.cancelAll()
            return first
        }
        if ending == .clientGone { detached() }
        do {
            try await stream.close(deadline: .now + Self.closeTimeout)
        } catch {
            stream.abort()
        }
    }
}
