import Foundation
import HTTP
import Images
import Net
import Registry
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// A fresh directory under the system temporary directory, removed with its contents on release.
final class TemporaryDirectory: @unchecked Sendable {
    let path: String

    init(_ label: String = #function) throws {
        let name = "shoal-registry-tests-\(label.filter { $0.isLetter || $0.isNumber }.prefix(40))-\(UUID().uuidString.prefix(8))"
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// A registry on a loopback port over a fresh store; shut down by the test.
struct RegistryFixture {
    let directory: TemporaryDirectory
    let store: ContentStore
    let server: RegistryServer
    let address: SocketAddress
    var base: String { "http://\(address)" }
    var hostPort: String { address.description }

    init(configuration: RegistryServer.Configuration = RegistryServer.Configuration(), label: String = #function) throws {
        directory = try TemporaryDirectory(label)
        store = try ContentStore(root: directory.file("registry"), limits: .init(maximumBlobBytes: configuration.maximumBlobBytes))
        server = try RegistryServer(store: store, configuration: configuration)
        address = try server.listen(on: .loopbackIPv4())
    }

    func stop() async {
        await server.shutdown(gracePeriod: .milliseconds(300))
    }
}

/// One HTTP exchange with the body collected.
struct Exchange {
    let status: Int
    let headers: HTTPHeaders
    let body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }

    /// The first error code of a spec error body.
    var errorCode: String? {
        struct Body: Decodable { struct Entry: Decodable { var code: String }; var errors: [Entry] }
        return (try? JSONDecoder().decode(Body.self, from: Data(body)))?.errors.first?.code
    }

    func json<T: Decodable>(_ type: T.Type) throws -> T { try JSONDecoder().decode(type, from: Data(body)) }
}

extension HTTPClient {
    func exchange(_ method: HTTPMethod, _ url: String, headers: HTTPHeaders = [:], body: [UInt8]? = nil) async throws -> Exchange {
        let response = try await execute(HTTPClientRequest(method: method, url: try HTTPURL(url), headers: headers, body: body.map { .bytes($0) } ?? .empty))
        let collected = try await response.body.collect(upTo: 256 << 20)
        return Exchange(status: response.status.code, headers: response.headers, body: collected)
    }
}

/// Bytes of a deterministic pattern.
func pattern(_ count: Int, seed: UInt8 = 7) -> [UInt8] {
    (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ ($0 >> 12)) }
}

/// Runs a process on a thread of its own (not Dispatch's pool, whose
/// blocked workers starve the cooperative pool) and collects its output.
func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) async throws -> (output: String, error: String, status: Int32) {
    try await withCheckedThrowingContinuation { continuation in
        Thread {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
            if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
            let output = Pipe(), error = Pipe()
            process.standardOutput = output
            process.standardError = error
            process.standardInput = FileHandle.nullDevice
            do {
                try process.run()
                final class Box: @unchecked Sendable { var data = Data() }
                let stderrBox = Box()
                let stderrDone = DispatchSemaphore(value: 0)
                Thread {
                    stderrBox.data = error.fileHandleForReading.readDataToEndOfFile()
                    stderrDone.signal()
                }.start()
                let data = output.fileHandleForReading.readDataToEndOfFile()
                stderrDone.wait()
                process.waitUntilExit()
                continuation.resume(returning: (String(decoding: data, as: UTF8.self), String(decoding: stderrBox.data, as: UTF8.self), process.terminationStatus))
            } catch {
                continuation.resume(throwing: error)
            }
        }.start()
    }
}

func executable(_ candidates: [String]) -> String? {
    candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
}

let curlPath = executable(["/usr/bin/curl"])
let skopeoPath = executable(["/usr/bin/skopeo"])
let distributionPath = executable(["/usr/bin/docker-registry"])
let busyboxPath = executable(["/bin/busybox", "/usr/bin/busybox"])
let tarPath = executable(["/bin/tar", "/usr/bin/tar"])

/// Builds a busybox-static root file system, tars and gzips it, and imports
/// it into `store` as `tag`: the test image, made offline.
func importBusyboxImage(into store: ContentStore, tag: String, in directory: TemporaryDirectory) async throws -> ImageImporter.ImportedImage {
    let rootfs = directory.file("rootfs-\(UUID().uuidString.prefix(6))")
    let manager = FileManager.default
    for sub in ["bin", "etc", "tmp", "root"] {
        try manager.createDirectory(atPath: rootfs + "/" + sub, withIntermediateDirectories: true)
    }
    try manager.copyItem(atPath: busyboxPath!, toPath: rootfs + "/bin/busybox")
    for applet in ["sh", "ls", "echo", "cat"] {
        try manager.createSymbolicLink(atPath: rootfs + "/bin/" + applet, withDestinationPath: "busybox")
    }
    try "root:x:0:0:root:/root:/bin/sh\n".write(toFile: rootfs + "/etc/passwd", atomically: false, encoding: .utf8)
    let tarball = rootfs + ".tar"
    let tar = try await run(tarPath!, ["--numeric-owner", "-C", rootfs, "-czf", tarball, "."])
    #expect(tar.status == 0, "tar: \(tar.error)")
    return try ImageImporter(store: store).importRootfs(
        tarballAt: tarball, tag: tag, containerConfig: .init(cmd: ["/bin/sh"]))
}

/// Imports a single-layer image whose layer is `layerBytes` of incompressible
/// data wrapped in a tar (for throughput and chunking tests).
func importLargeImage(into store: ContentStore, tag: String, layerBytes: Int, in directory: TemporaryDirectory) async throws -> ImageImporter.ImportedImage {
    let rootfs = directory.file("large-\(UUID().uuidString.prefix(6))")
    try FileManager.default.createDirectory(atPath: rootfs, withIntermediateDirectories: true)
    let dd = try await run("/bin/dd", ["if=/dev/urandom", "of=\(rootfs)/data.bin", "bs=1M", "count=\(layerBytes >> 20)"])
    #expect(dd.status == 0, "dd: \(dd.error)")
    let tarball = rootfs + ".tar"
    let tar = try await run(tarPath!, ["--numeric-owner", "-C", rootfs, "-cf", tarball, "."])
    #expect(tar.status == 0, "tar: \(tar.error)")
    return try ImageImporter(store: store).importRootfs(tarballAt: tarball, tag: tag)
}

/// Picks a free loopback port (bind to 0, read it, close).
func freePort() throws -> UInt16 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) } }
    return UInt16(bigEndian: address.sin_port)
}

/// A long-running child process (a peer registry) the test owns and kills by its pid.
final class ChildProcess: @unchecked Sendable {
    let process = Process()
    let logPath: String

    init(_ executable: String, _ arguments: [String], logPath: String) throws {
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Kills the child (by its pid) and reaps it.
    func stop() {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        for _ in 0..<100 where process.isRunning { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}
