import CZlib
import Foundation
import HTTP
import Images
import Net
import Registry
#if canImport(Glibc)
import Glibc
#endif

/// `shoal-bench registry`: push and pull throughput of one image with a
/// large layer (incompressible bytes from a seeded generator, plus a
/// config) on loopback, Shoal's client against Shoal's registry server
/// beside skopeo against the CNCF distribution registry (Debian's
/// `docker-registry`), in the same run, rounds interleaved.
///
/// Fair terms: the layer is gzip (deflate level 0, "stored" blocks) so both
/// clients move the same bytes as they are (skopeo gzips an uncompressed
/// layer on push, which would measure gzip, not the registry). Every round
/// starts both registries empty on fresh ports and uses new clients, so no
/// blob is skipped or cross-mounted. Shoal's client and server run in this
/// process; each skopeo figure includes starting a skopeo process (its
/// start-up time is printed too, to judge that share).
struct RegistryBenchmark {
    struct Options {
        var layerMiB = 200
        var rounds = 3
        static let usage = "usage: shoal-bench registry [--layer-mib MIB] [--rounds N]"

        init(parsing arguments: [String]) throws {
            var index = 0
            while index < arguments.count {
                guard index + 1 < arguments.count, let value = Int(arguments[index + 1]), value > 0 else {
                    throw BenchmarkError(description: Self.usage)
                }
                switch arguments[index] {
                case "--layer-mib": layerMiB = value
                case "--rounds": rounds = value
                default: throw BenchmarkError(description: Self.usage)
                }
                index += 2
            }
        }
    }

    /// The generator's seed: every run pushes the same layer bytes.
    static let seed: UInt64 = 0x5EED_5B0A_1200
    static let repository = "bench/image"
    static let skopeoPath = "/usr/bin/skopeo"
    static let distributionPath = "/usr/bin/docker-registry"
    static let readyTimeout: Duration = .seconds(20)

    let options: Options

    func run() async throws {
        let processes = try BenchProcesses(label: "registry")
        defer { processes.stopAll() }
        let directory = processes.directory
        let source = try ContentStore(root: directory + "/source")
        let image = try makeImage(in: source, directory: directory)
        let layerBytes = try source.size(of: image.layer)
        report("registry.layer_size", Double(layerBytes) / 1_048_576, "MiB")

        let peersPresent = FileManager.default.isExecutableFile(atPath: Self.skopeoPath)
            && FileManager.default.isExecutableFile(atPath: Self.distributionPath)
        var layout: String?
        if peersPresent {
            layout = try writeLayout(of: image, from: source, to: directory + "/layout")
            let started = MonotonicClock.nanoseconds
            _ = try processes.run(Self.skopeoPath, ["--version"])
            report("registry.skopeo.process_start", Double(MonotonicClock.nanoseconds - started) / 1e6, "ms")
        } else {
            FileHandle.standardError.write(Data("shoal-bench registry: skopeo or docker-registry is missing (apt-get install -y skopeo docker-registry): measuring Shoal alone\n".utf8))
        }

        var shoalPush: [Double] = [], shoalPull: [Double] = []
        var skopeoPush: [Double] = [], skopeoPull: [Double] = []
        for round in 0..<options.rounds {
            let (push, pull) = try await measureShoal(image, source: source, round: round, directory: directory)
            shoalPush.append(Double(layerBytes) / 1_048_576 / push)
            shoalPull.append(Double(layerBytes) / 1_048_576 / pull)
            if let layout {
                let (push, pull) = try await measureSkopeo(layout: layout, round: round, processes: processes)
                skopeoPush.append(Double(layerBytes) / 1_048_576 / push)
                skopeoPull.append(Double(layerBytes) / 1_048_576 / pull)
            }
        }
        report("registry.shoal.push", median(shoalPush), "MiB/s")
        report("registry.shoal.pull", median(shoalPull), "MiB/s")
        guard !skopeoPush.isEmpty else { return }
        report("registry.skopeo_distribution.push", median(skopeoPush), "MiB/s")
        report("registry.skopeo_distribution.pull", median(skopeoPull), "MiB/s")
        report("registry.push_ratio_shoal_to_skopeo", median(shoalPush) / median(skopeoPush), "ratio")
        report("registry.pull_ratio_shoal_to_skopeo", median(shoalPull) / median(skopeoPull), "ratio")
    }

    // MARK: The image

    /// A one-layer image: a tar holding `data.bin` of random bytes, gzip at
    /// level 0, imported into `store` (which stores the layer, a config with
    /// its diff ID, and a manifest).
    private func makeImage(in store: ContentStore, directory: String) throws -> ImageImporter.ImportedImage {
        let path = directory + "/layer.tar.gz"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw BenchmarkError(description: "open \(path): errno \(errno)") }
        let compressed = try LevelZeroGzipWriter(descriptor: descriptor)
        let generator = ByteGenerator(seed: Self.seed)
        let dataBytes = options.layerMiB << 20
        compressed.write(tarHeader(name: "data.bin", size: dataBytes))
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        for _ in 0..<(dataBytes >> 20) {
            generator.fill(&chunk)
            compressed.write(chunk)
        }
        compressed.write([UInt8](repeating: 0, count: 1024))
        try compressed.finish()
        close(descriptor)
        defer { unlink(path) }
        return try ImageImporter(store: store).importRootfs(tarballAt: path, tag: "bench:1",
                                                            containerConfig: .init(cmd: ["/bin/true"]))
    }

    private func tarHeader(name: String, size: Int) -> [UInt8] {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ text: String, at offset: Int) {
            for (index, byte) in text.utf8.enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int, at offset: Int, width: Int) {
            let digits = String(value, radix: 8)
            put(String(repeating: "0", count: width - 1 - digits.count) + digits, at: offset)
        }
        put(name, at: 0)
        octal(0o644, at: 100, width: 8)
        octal(0, at: 108, width: 8)
        octal(0, at: 116, width: 8)
        octal(size, at: 124, width: 12)
        octal(0, at: 136, width: 12)
        header[156] = UInt8(ascii: "0")
        put("ustar\0" + "00", at: 257)
        for index in 148..<156 { header[index] = UInt8(ascii: " ") }
        octal(header.reduce(0) { $0 + Int($1) }, at: 148, width: 7)
        return header
    }

    /// An OCI image layout directory for skopeo's `oci:` transport, its blobs
    /// hard links to the store's files.
    private func writeLayout(of image: ImageImporter.ImportedImage, from store: ContentStore, to layout: String) throws -> String {
        try FileManager.default.createDirectory(atPath: layout + "/blobs/sha256", withIntermediateDirectories: true)
        for digest in [image.manifest, image.config, image.layer] {
            guard link(store.path(for: digest), layout + "/blobs/sha256/" + digest.hex) == 0 else {
                throw BenchmarkError(description: "link \(digest) into the layout: errno \(errno)")
            }
        }
        try Data(#"{"imageLayoutVersion":"1.0.0"}"#.utf8).write(to: URL(fileURLWithPath: layout + "/oci-layout"))
        let index = ImageIndex(manifests: [Descriptor(mediaType: MediaType.ociManifest, digest: image.manifest,
                                                      size: try store.size(of: image.manifest),
                                                      annotations: ["org.opencontainers.image.ref.name": "bench"])])
        try Data(ImageDocument.encode(index)).write(to: URL(fileURLWithPath: layout + "/index.json"))
        return layout
    }

    // MARK: Shoal

    /// Seconds to push the image to a fresh Shoal registry, and to pull it back into a fresh store.
    private func measureShoal(_ image: ImageImporter.ImportedImage, source: ContentStore, round: Int,
                              directory: String) async throws -> (Double, Double) {
        let roundDirectory = directory + "/shoal-\(round)"
        try FileManager.default.createDirectory(atPath: roundDirectory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: roundDirectory) }
        let server = try RegistryServer(store: try ContentStore(root: roundDirectory + "/registry"))
        let address = try server.listen(on: .loopbackIPv4())
        let reference = try ImageReference(parsing: "\(address)/\(Self.repository):1")

        let pusher = RegistryClient()
        var started = MonotonicClock.nanoseconds
        let pushed = try await pusher.push(from: source, manifest: image.manifest, to: reference)
        let push = Double(MonotonicClock.nanoseconds - started) / 1e9
        await pusher.shutdown()
        guard pushed.manifest == image.manifest, pushed.existingBlobs == 0, pushed.mountedBlobs == 0 else {
            throw BenchmarkError(description: "the Shoal push skipped blobs or changed the manifest: \(pushed)")
        }

        let puller = RegistryClient()
        let destination = try ContentStore(root: roundDirectory + "/pulled")
        started = MonotonicClock.nanoseconds
        let pulled = try await puller.pull(reference, into: destination)
        let pull = Double(MonotonicClock.nanoseconds - started) / 1e9
        await puller.shutdown()
        await server.shutdown(gracePeriod: .seconds(1))
        guard pulled.manifest == image.manifest, destination.contains(image.layer) else {
            throw BenchmarkError(description: "the Shoal pull did not bring the image back: \(pulled)")
        }
        return (push, pull)
    }

    // MARK: skopeo and the distribution registry

    /// Seconds for `skopeo copy` from the layout to a fresh distribution
    /// registry, and back from it into a fresh layout.
    private func measureSkopeo(layout: String, round: Int, processes: BenchProcesses) async throws -> (Double, Double) {
        let roundDirectory = processes.directory + "/distribution-\(round)"
        defer { try? FileManager.default.removeItem(atPath: roundDirectory) }
        try FileManager.default.createDirectory(atPath: roundDirectory, withIntermediateDirectories: true)
        let port = BenchProcesses.freePort()
        let config = roundDirectory + "/config.yml"
        try """
            version: 0.1
            log:
              level: error
            storage:
              filesystem:
                rootdirectory: \(roundDirectory)/storage
            http:
              addr: 127.0.0.1:\(port)
            """.write(toFile: config, atomically: false, encoding: .utf8)
        let name = "docker-registry-\(round)"
        try processes.start(name, Self.distributionPath, ["serve", config])
        defer { processes.stop(name) }
        try await waitUntilReady("http://127.0.0.1:\(port)/v2/")

        let target = "docker://127.0.0.1:\(port)/\(Self.repository):1"
        var started = MonotonicClock.nanoseconds
        try check(processes.run(Self.skopeoPath, ["--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false", "oci:\(layout):bench", target]), "skopeo push")
        let push = Double(MonotonicClock.nanoseconds - started) / 1e9
        started = MonotonicClock.nanoseconds
        try check(processes.run(Self.skopeoPath, ["--insecure-policy", "copy", "--quiet", "--src-tls-verify=false", target, "oci:\(roundDirectory)/pulled:bench"]), "skopeo pull")
        let pull = Double(MonotonicClock.nanoseconds - started) / 1e9
        return (push, pull)
    }

    private func waitUntilReady(_ url: String) async throws {
        let client = HTTPClient()
        defer { Task { await client.shutdown() } }
        let deadline = ContinuousClock.now + Self.readyTimeout
        while ContinuousClock.now < deadline {
            if let response = try? await client.execute(HTTPClientRequest(method: .get, url: try HTTPURL(url))) {
                _ = try? await response.body.collect(upTo: 1 << 20)
                if response.status.code == 200 { return }
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchmarkError(description: "docker-registry did not answer \(url) within \(Self.readyTimeout)")
    }

    private func check(_ result: (status: Int32, output: String), _ what: String) throws {
        guard result.status == 0 else {
            throw BenchmarkError(description: "\(what) failed (exit \(result.status)): \(result.output.suffix(2000))")
        }
    }

    // MARK: Output

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return 0 }
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    private func report(_ name: String, _ value: Double, _ unit: String) {
        let formatted = value >= 100 ? String(format: "%.0f", value) : String(format: "%.3f", value)
        FileHandle.standardOutput.write(Data("\(name) \(formatted) \(unit)\n".utf8))
    }
}

/// xorshift64*: a seeded generator fast enough to fill hundreds of MiB (its
/// output does not compress, which is all the benchmark needs of it).
final class ByteGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed
    }

    func fill(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { buffer in
            let words = buffer.bindMemory(to: UInt64.self)
            for index in words.indices {
                state ^= state >> 12
                state ^= state << 25
                state ^= state >> 27
                words[index] = state &* 0x2545_F491_4F6C_DD1D
            }
        }
    }
}

/// Writes a gzip stream with deflate level 0 (stored blocks): valid gzip
/// that any client passes through as it is, at memory-copy speed.
final class LevelZeroGzipWriter {
    private let descriptor: Int32
    private var stream = z_stream()
    private var output = [UInt8](repeating: 0, count: 1 << 20)

    init(descriptor: Int32) throws {
        self.descriptor = descriptor
        guard shoal_deflateInit2(&stream, 0, 15 + 16) == Z_OK else {
            throw BenchmarkError(description: "zlib deflateInit2 failed")
        }
    }

    deinit {
        deflateEnd(&stream)
    }

    func write(_ bytes: [UInt8]) {
        deflate(bytes, flush: Z_NO_FLUSH)
    }

    func finish() throws {
        deflate([], flush: Z_FINISH)
    }

    /// Feeds `bytes` to zlib and writes what it produces; with `Z_FINISH`,
    /// until the stream's end (trailer included) is out.
    private func deflate(_ bytes: [UInt8], flush: Int32) {
        var input = bytes
        input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(source.count)
            while true {
                var status: Int32 = Z_OK
                let produced: Int = output.withUnsafeMutableBufferPointer { target in
                    stream.next_out = target.baseAddress
                    stream.avail_out = uInt(target.count)
                    status = CZlib.deflate(&stream, flush)
                    return target.count - Int(stream.avail_out)
                }
                precondition(status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR, "deflate failed: \(status)")
                var offset = 0
                while offset < produced {
                    let written = output.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, produced - offset) }
                    precondition(written > 0, "writing the benchmark layer failed: errno \(errno)")
                    offset += written
                }
                let done = flush == Z_FINISH ? status == Z_STREAM_END : (stream.avail_in == 0 && stream.avail_out > 0)
                if done { break }
            }
        }
    }
}
