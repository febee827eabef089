import Foundation
@testable import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `-t` and `-i` at the runtime: a pty from the container's own devpts held
/// by its monitor, stdin through the monitor, and an exec with a terminal.
@Suite("Container terminal and stdin (-t, -i)", .serialized, .enabled(if: TestImage.available, "needs root and busybox-static"),
       .timeLimit(.minutes(3)))
struct ContainerTerminalTests {
    /// Everything an output stream yields until it ends (the container exited).
    static func collect(_ output: ContainerOutputSubscription) async -> String {
        var text = ""
        for await chunk in output { text += String(decoding: chunk.bytes, as: UTF8.self) }
        return text
    }

    @Test func ttyIsTheControllingTerminalFromTheContainersDevptsWithTheGivenSize() async throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let container = try fixture.runtime.create(fixture.spec("tty", ["sh", "-c", "tty; stty size; [ -t 0 ] && [ -t 2 ] && echo all-terminals"]) { spec in
            spec.stdio = StdioOptions(terminal: true, windowSize: TerminalSize(rows: 37, columns: 101))
        })
        let output = container.output.subscribe()
        try fixture.runtime.start("tty")
        let seen = await Self.collect(output)
        #expect(container.wait(timeout: .seconds(30)) == .exited(0))
        // The terminal turns newlines into CR LF; all of it is one stream.
        let lines = seen.split(separator: "\r\n").map(String.init)
        #expect(lines.first == "/dev/pts/0", "\(seen.debugDescription)")
        #expect(lines.contains("37 101"), "\(seen.debugDescription)")
        #expect(lines.contains("all-terminals"), "\(seen.debugDescription)")
        // The log has it too, as stdout.
        let logged = try fixture.runtime.logEntries("tty")
        #expect(logged.allSatisfy { $0.stream == "stdout" } && logged.map(\.log).joined().contains("/dev/pts/0"), "\(logged)")
    }

    @Test func interactiveStdinIsForwardedAndItsEndEndsTheProcess() async throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let container = try fixture.runtime.create(fixture.spec("cat", ["sh", "-c", "cat; echo done; exit 3"]) { spec in
            spec.stdio = StdioOptions(openStandardInput: true)
        })
        let output = container.output.subscribe()
        try fixture.runtime.start("cat")
        // Larger than a pipe's buffer and than one frame: it must arrive whole and in order.
        let big = (0..<20_000).map { "line \($0)\n" }.joined()
        try fixture.runtime.writeInput("cat", Array("first\n".utf8))
        try fixture.runtime.writeInput("cat", Array(big.utf8))
        try fixture.runtime.closeInput("cat")
        let seen = await Self.collect(output)
        #expect(container.wait(timeout: .seconds(30)) == .exited(3))
        #expect(seen == "first\n" + big + "done\n", "\(seen.count) bytes, ends \(seen.suffix(40).debugDescription)")
        // Without -i there is no stdin to write to.
        _ = try fixture.runtime.run(fixture.spec("plain", ["sleep", "5"]))
        #expect(throws: RuntimeError.self) { try fixture.runtime.writeInput("plain", Array("x".utf8)) }
    }

    @Test func aSlowSubscriberGetsEveryByteAndHoldsTheContainerBack() async throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        // Several times the subscriber's queue bound: without back-pressure it would pile up (or be dropped).
        let total = 3 * ContainerOutputHub.maxQueuedBytes
        let container = try fixture.runtime.create(fixture.spec("flood", ["sh", "-c", "head -c \(total) /dev/zero | tr '\\0' x"]))
        let output = container.output.subscribe()
        try fixture.runtime.start("flood")
        var received = 0
        var iterator = output.makeAsyncIterator()
        var sawRunningWhileBehind = false
        while let chunk = await iterator.next() {
            if received == 0 {
                // Hold back: the container cannot finish while we take nothing.
                try await Task.sleep(for: .milliseconds(500))
                sawRunningWhileBehind = container.state.status == .running
            }
            received += chunk.bytes.count
        }
        #expect(container.wait(timeout: .seconds(60)) == .exited(0))
        #expect(received == total)
        #expect(sawRunningWhileBehind)
        #expect(!output.wasCutOff)
    }

    @Test func aTerminalAndStdinOutliveTheRuntime() async throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        _ = try fixture.runtime.run(fixture.spec("kept", ["sh"]) { spec in
            spec.stdio = StdioOptions(openStandardInput: true, terminal: true, windowSize: TerminalSize(rows: 10, columns: 20))
        })
        try fixture.reopen()  // the daemon restarts; the monitor keeps the pty
        let container = try #require(fixture.runtime.container("kept"))
        #expect(container.state.status == .running)
        let output = container.output.subscribe()
        try fixture.runtime.resizeTerminal("kept", TerminalSize(rows: 44, columns: 55))
        try fixture.runtime.writeInput("kept", Array("stty size; exit 4\n".utf8))
        let seen = await Self.collect(output)
        #expect(container.wait(timeout: .seconds(30)) == .exited(4))
        #expect(seen.contains("44 55"), "\(seen.debugDescription)")
    }

    @Test func execWithATerminalGetsItsOwnPtyAndSize() async throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        _ = try fixture.runtime.run(fixture.spec("host", ["sleep", "60"]))
        var exec = ExecSpec(command: ["sh", "-c", "tty; stty size; read line; echo got $line; exit 5"])
        exec.windowSize = TerminalSize(rows: 12, columns: 34)
        let process = try fixture.runtime.startExec("host", exec, streams: .terminal)
        #expect(process.terminal >= 0 && process.standardOutput < 0)
        try process.writeInput(Array("hello\n".utf8))
        #expect(process.wait() == .exited(5))
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(process.terminal, $0.baseAddress, $0.count) }
            if count <= 0 { break }  // EIO: the slave is closed
            output += buffer[0..<count]
        }
        let text = String(decoding: output, as: UTF8.self)
        // The terminal may echo our input before or after the first lines.
        #expect(text.contains("/dev/pts/0\r\n") && text.contains("12 34\r\n"), "\(text.debugDescription)")
        #expect(text.contains("got hello"), "\(text.debugDescription)")
    }
}
