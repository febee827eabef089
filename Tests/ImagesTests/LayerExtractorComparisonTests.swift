import TestSupport
import Foundation
import Glibc
@testable import Images
import Testing

/// Extraction against GNU tar on the same layer: a busybox-static rootfs
/// (install busybox-static; Cluster/install-dependencies.sh does) and a
/// generated layer with many files.
@Suite(.serialized) struct LayerExtractorComparisonTests {
    /// A small distribution: busybox with every applet linked, a hard link,
    /// set-user-ID, odd modes, empty and nested directories.
    static func makeBusyboxRootfs(at rootfs: String, busybox: String) throws {
        let manager = FileManager.default
        for directory in ["bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "var/empty", "root", "dev", "proc"] {
            try manager.createDirectory(atPath: rootfs + "/" + directory, withIntermediateDirectories: true)
        }
        try manager.copyItem(atPath: busybox, toPath: rootfs + "/bin/busybox")
        for line in try run(busybox, ["--list-full"]).split(separator: "\n") {
            let target = rootfs + "/" + line
            guard line != "bin/busybox", !manager.fileExists(atPath: target) else { continue }
            try manager.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let depth = line.split(separator: "/").count - 1
            try manager.createSymbolicLink(atPath: target, withDestinationPath: String(repeating: "../", count: depth) + "bin/busybox")
        }
        try "root:x:0:0:root:/root:/bin/sh\n".write(toFile: rootfs + "/etc/passwd", atomically: false, encoding: .utf8)
        try "root:x:0:\n".write(toFile: rootfs + "/etc/group", atomically: false, encoding: .utf8)
        try manager.linkItem(atPath: rootfs + "/etc/passwd", toPath: rootfs + "/etc/passwd-hardlink")
        try manager.createSymbolicLink(atPath: rootfs + "/etc/mtab", withDestinationPath: "/proc/mounts")
        chmod(rootfs + "/tmp", 0o1777)
        chmod(rootfs + "/root", 0o700)
        try "#!/bin/sh\n".write(toFile: rootfs + "/bin/suid-tool", atomically: false, encoding: .utf8)
        chmod(rootfs + "/bin/suid-tool", 0o4755)
        if geteuid() == 0 { chown(rootfs + "/bin/suid-tool", 1000, 1000) }
    }

    @Test(.enabled(if: busyboxPath != nil, "needs busybox-static (Cluster/install-dependencies.sh)"))
    func busyboxRootfsMatchesGNUTar() throws {
        let directory = try TemporaryDirectory()
        let rootfs = directory.file("rootfs")
        try Self.makeBusyboxRootfs(at: rootfs, busybox: busyboxPath!)
        for (format, compress) in [("gnu", false), ("pax", true)] {
            let layer = directory.file("layer-\(format).tar")
            try run("/bin/tar", ["--format=\(format)", "--numeric-owner", "-C", rootfs, "-cf", layer, "."])
            var layerPath = layer
            if compress {
                try run("/bin/gzip", ["-k", layer])
                layerPath = layer + ".gz"
            }
            let ours = directory.file("ours-\(format)")
            let theirs = directory.file("theirs-\(format)")
            try FileManager.default.createDirectory(atPath: ours, withIntermediateDirectories: false)
            try FileManager.default.createDirectory(atPath: theirs, withIntermediateDirectories: false)
            let diffID = Digest.of(Array(try Data(contentsOf: URL(fileURLWithPath: layer))))
            let report = try LayerExtractor(rootPath: ours).extract(layerAt: layerPath, expectedDiffID: diffID)
            #expect(report.diffID == diffID)
            try run("/bin/tar", ["-C", theirs, "-xf", layerPath])
            let differences = TreeEntry.differences(try TreeEntry.scan(ours), try TreeEntry.scan(theirs))
            #expect(differences.isEmpty, "\(format): \(differences.prefix(10).joined(separator: "\n"))")
            let scanned = try TreeEntry.scan(ours)
            #expect(scanned.count > 250, "busybox links every applet")
            #expect(scanned["bin/sh"]?.linkTarget == "../bin/busybox")
            #expect(scanned["etc/passwd"]?.linkCount == 2)
            // The extracted busybox runs.
            #expect(try run(ours + "/bin/busybox", ["echo", "extracted"]) == "extracted\n")
        }
    }

    /// A layer of `fileCount` files (0–16 KiB, one in 97 of 300 KB) in 100
    /// directories, each directory followed by its members as `tar -c` orders them.
    static func makeManyFilesLayer(fileCount: Int) -> TarBuilder {
        var tar = TarBuilder()
        var generator = SystemRandomNumberGenerator()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        for index in chunk.indices { chunk[index] = UInt8.random(in: 0...255, using: &generator) }
        tar.directory("./")
        for directory in 0..<100 {
            tar.directory("./d\(directory)/")
            for index in stride(from: directory, to: fileCount, by: 100) {
                let size = index % 97 == 0 ? 300_000 : Int.random(in: 0...16_384, using: &generator)
                let start = Int.random(in: 0..<(chunk.count - size), using: &generator)
                tar.add("./d\(directory)/file-\(index)", data: Array(chunk[start..<(start + size)]), mode: 0o644)
                if index % 50 == 0 { tar.symlink("./d\(directory)/link-\(index)", to: "file-\(index)") }
            }
        }
        tar.end()
        return tar
    }

    /// RUSAGE_THREAD (1): glibc declares it only under _GNU_SOURCE.
    static let rusageThread = __rusage_who(rawValue: 1)

    /// CPU seconds (user + system) of this thread, or of waited-for children.
    static func cpuSeconds(_ who: __rusage_who) -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(who.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    /// Same layer, same file system, same run: GNU `tar -x` against the
    /// extractor, best of five interleaved rounds. Wall time (throughput) is
    /// asserted; CPU time of both threads is printed beside it (ours is higher:
    /// it also computes the layer's SHA-256 diff ID, which tar does not, on
    /// the read-ahead thread). The targets are on tmpfs when available so
    /// that disk writeback from other work on a shared machine does not
    /// decide the result.
    @Test func extractionThroughputComparedWithGNUTar() throws {
        let directory = try TemporaryDirectory()
        let scratchBase = FileManager.default.isWritableFile(atPath: "/dev/shm") ? "/dev/shm" : directory.path
        let scratch = scratchBase + "/shoal-extract-bench-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let layer = scratch + "/many-files.tar"
        let fileCount = 8_000
        let tar = Self.makeManyFilesLayer(fileCount: fileCount)
        try Data(tar.bytes).write(to: URL(fileURLWithPath: layer))
        func fresh(_ name: String) throws -> String {
            let path = scratch + "/" + name
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            return path
        }
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        var ours = (wall: Double.infinity, cpu: Double.infinity)
        var gnu = (wall: Double.infinity, cpu: Double.infinity)
        for round in 0..<5 {
            let theirs = try fresh("theirs-\(round)")
            var wall = now()
            var cpu = Self.cpuSeconds(RUSAGE_CHILDREN)
            try run("/bin/tar", ["-C", theirs, "-xf", layer])
            gnu = (min(gnu.wall, now() - wall), min(gnu.cpu, Self.cpuSeconds(RUSAGE_CHILDREN) - cpu))
            let target = try fresh("ours-\(round)")
            wall = now()
            cpu = Self.cpuSeconds(Self.rusageThread)
            let report = try LayerExtractor(rootPath: target).extract(layerAt: layer)
            ours = (min(ours.wall, now() - wall),
                    min(ours.cpu, Self.cpuSeconds(Self.rusageThread) - cpu + report.readAheadCPUSeconds))
            if round == 0 {
                let differences = TreeEntry.differences(try TreeEntry.scan(target), try TreeEntry.scan(theirs))
                #expect(differences.isEmpty, "\(differences.count): \(differences.prefix(5).joined(separator: "\n"))")
            }
            try FileManager.default.removeItem(atPath: target)
            try FileManager.default.removeItem(atPath: theirs)
        }
        let megabytes = Double(tar.bytes.count) / 1_048_576
        let wallRatio = ours.wall / gnu.wall
        let cpuRatio = ours.cpu / gnu.cpu
        print(String(format: "extraction of %.1f MiB, %d files on %@: shoal %.3f s wall / %.3f s CPU (%.0f MiB/s), "
                     + "GNU tar %.3f s wall / %.3f s CPU (%.0f MiB/s); ratio %.2f× wall, %.2f× CPU",
                     megabytes, fileCount, scratchBase, ours.wall, ours.cpu, megabytes / ours.wall,
                     gnu.wall, gnu.cpu, megabytes / gnu.wall, wallRatio, cpuRatio))
        // Target 1.5× in a release build; a debug build (no optimisation) gets more room.
        #expect(wallRatio < (_isDebugAssertConfiguration() ? 4.0 : 1.5))
    }
}
