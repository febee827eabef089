import TestSupport
import Foundation
import HTTP
import Images
import Net
import Registry
import Testing
#if canImport(Glibc)
import Glibc
#endif

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
