import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What a process that ran to its exit printed.
public struct ProcessOutput: Sendable {
    public var status: Int32
    public var output: String
    public var error: String
}

/// Runs `executable` to its exit and collects stdout and stderr, both read at
/// once so a full stderr pipe cannot block the child. With `mergingError`
/// stderr goes into `output` too. `input`, when given, is written to stdin,
/// which is closed after it (else stdin is /dev/null).
public func runToExit(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                      input: String? = nil, mergingError: Bool = false) throws -> ProcessOutput {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
    let output = Pipe(), error = Pipe(), stdin = Pipe()
    process.standardOutput = output
    process.standardError = mergingError ? output : error
    process.standardInput = input == nil ? FileHandle.nullDevice : stdin
    try process.run()
    if let input {
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
    }
    final class Box: @unchecked Sendable { var data = Data() }
    let errorBox = Box()
    let errorDone = DispatchSemaphore(value: 0)
    if mergingError {
        errorDone.signal()
    } else {
        Thread {
            errorBox.data = error.fileHandleForReading.readDataToEndOfFile()
            errorDone.signal()
        }.start()
    }
    let data = output.fileHandleForReading.readDataToEndOfFile()
    errorDone.wait()
    process.waitUntilExit()
    return ProcessOutput(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self),
                         error: String(decoding: errorBox.data, as: UTF8.self))
}

/// Runs a process on threads of its own (not Dispatch's global queues: blocked
/// workers there starve the pool, and libdispatch adds a thread only after
/// about a second, which would show up as a one-second stall in every test).
public func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> (output: String, error: String, status: Int32) {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            do {
                let result = try runToExit(executable, arguments, environment: environment)
                continuation.resume(returning: (result.output, result.error, result.status))
            } catch {
                continuation.resume(throwing: error)
            }
        }.start()
    }
}

/// The first of `candidates` that is an executable file.
public func executable(_ candidates: [String]) -> String? {
    candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Starts a long-running child (a daemon) with stdin from /dev/null, stdout
/// discarded and stderr appended to `logPath`; the caller stops it by PID.
public func startBackground(_ executable: String, _ arguments: [String], logPath: String) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.standardInput = FileHandle.nullDevice
    process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
    FileManager.default.createFile(atPath: logPath, contents: nil)
    process.standardError = FileHandle(forWritingAtPath: logPath)
    try process.run()
    return process
}

/// Ends processes this test started, by PID: SIGTERM to all, up to `grace`
/// for each to exit, then SIGKILL; all are reaped.
public func terminate(_ processes: [Process], grace: TimeInterval = 5) {
    for process in processes where process.isRunning { kill(process.processIdentifier, SIGTERM) }
    for process in processes {
        let deadline = Date().addingTimeInterval(grace)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// SIGKILL by PID and reap.
public func kill9(_ process: Process) {
    kill(process.processIdentifier, SIGKILL)
    process.waitUntilExit()
}

/// A loopback TCP port the kernel says is free now (bind to 0, read it, close).
public func freePort() throws -> UInt16 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    guard bound else { throw FreePortUnavailable(errno: errno) }
    return UInt16(bigEndian: address.sin_port)
}

public struct FreePortUnavailable: Error, CustomStringConvertible {
    public var errno: Int32
    public var description: String { "could not bind a loopback port to find a free one (errno \(errno))" }
}
