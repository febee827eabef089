import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Processes a benchmark starts, each ended by its own PID (never by name).
final class BenchProcesses: @unchecked Sendable {
    let directory: String
    private var running: [String: Process] = [:]

    init(label: String) throws {
        directory = NSTemporaryDirectory() + "shoal-bench-\(label)-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    /// Starts `executable` with its output in `<directory>/<name>.log`.
    func start(_ name: String, _ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let log = "\(directory)/\(name).log"
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle(forWritingAtPath: log)
        process.standardError = FileHandle(forWritingAtPath: log)
        try process.run()
        running[name] = process
    }

    /// The PID of a process started by ``start(_:_:_:environment:)``, while it is ours.
    func pid(_ name: String) -> Int32? { running[name]?.processIdentifier }

    func isRunning(_ name: String) -> Bool { running[name]?.isRunning ?? false }

    /// Runs a command to completion; returns its exit status and output.
    func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        process.environment = merged
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Ends one process: SIGTERM, then SIGKILL if it has not exited within 5 s.
    func stop(_ name: String) {
        guard let process = running.removeValue(forKey: name) else { return }
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(5)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    func kill9(_ name: String) {
        guard let process = running.removeValue(forKey: name) else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// Ends every process this benchmark started, then removes its files.
    func stopAll() {
        for (_, process) in running where process.isRunning {
            kill(process.processIdentifier, SIGTERM)
        }
        let deadline = Date().addingTimeInterval(5)
        for (_, process) in running {
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
        running.removeAll()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A free loopback TCP port (bound then released).
    static func freePort() -> UInt16 {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
        return UInt16(bigEndian: address.sin_port)
    }
}
