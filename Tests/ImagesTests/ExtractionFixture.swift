import TestSupport
import Foundation
import Glibc
@testable import Images

/// A temporary directory with `root/` (the extraction target) beside
/// `outside/secret` (a decoy the archives try to reach), and checks that
/// nothing outside `root/` changed.
final class ExtractionFixture {
    let directory: TemporaryDirectory
    let root: String
    let outside: String
    let secret: String
    static let secretText = "the host's secret"
    private let before: [String]
    /// Escape targets next to the temporary directory that already existed
    /// (the parent is a shared /tmp), so only new ones count as escapes.
    private let escapeTargetsBefore: Set<String>
    private static let escapeTargets = ["escaped", "x", "etc/x", "pwned"]

    init(_ label: String = #function) throws {
        directory = try TemporaryDirectory(label)
        root = directory.file("root")
        outside = directory.file("outside")
        secret = outside + "/secret"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try Self.secretText.write(toFile: secret, atomically: false, encoding: .utf8)
        before = Self.listing(directory.path, excluding: root)
        escapeTargetsBefore = Self.existingEscapeTargets(besides: directory.path)
    }

    private static func existingEscapeTargets(besides path: String) -> Set<String> {
        let parent = (path as NSString).deletingLastPathComponent
        return Set(escapeTargets.filter { FileManager.default.fileExists(atPath: parent + "/" + $0) })
    }

    func extract(_ tar: TarBuilder, options: LayerExtractor.Options = .init(), compression: LayerCompression = .none,
                 expectedDiffID: Digest? = nil) throws -> LayerExtractor.Report {
        let extractor = try LayerExtractor(rootPath: root, options: options)
        let bytes = compression == .gzip ? gzip(tar.bytes) : tar.bytes
        return try extractor.extract(from: MemoryByteSource(bytes), compression: compression, expectedDiffID: expectedDiffID)
    }

    /// True when nothing outside `root/` appeared, vanished or changed.
    var outsideUntouched: Bool {
        var info = stat()
        guard lstat(secret, &info) == 0, info.st_nlink == 1, (info.st_mode & S_IFMT) == S_IFREG else { return false }
        guard (try? String(contentsOfFile: secret, encoding: .utf8)) == Self.secretText else { return false }
        // Nothing was created next to the temporary directory either.
        guard Self.existingEscapeTargets(besides: directory.path).isSubset(of: escapeTargetsBefore) else { return false }
        return Self.listing(directory.path, excluding: root) == before
    }

    func exists(_ relative: String) -> Bool {
        var info = stat()
        return lstat(root + "/" + relative, &info) == 0
    }

    func contents(_ relative: String) -> String? {
        try? String(contentsOfFile: root + "/" + relative, encoding: .utf8)
    }

    func lstatInfo(_ relative: String) -> stat? {
        var info = stat()
        return lstat(root + "/" + relative, &info) == 0 ? info : nil
    }

    func linkTarget(_ relative: String) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/" + relative)
    }

    func rootEntries() -> [String] {
        ((try? FileManager.default.subpathsOfDirectory(atPath: root)) ?? []).sorted()
    }

    private static func listing(_ path: String, excluding: String) -> [String] {
        let all = (try? FileManager.default.subpathsOfDirectory(atPath: path)) ?? []
        let rootName = (excluding as NSString).lastPathComponent
        return all.filter { $0 != rootName && !$0.hasPrefix(rootName + "/") }.sorted()
    }
}

/// `makedev` for comparisons with `st_rdev` (glibc's encoding).
func shoal_test_makedev(_ major: UInt32, _ minor: UInt32) -> UInt {
    let major = UInt(major), minor = UInt(minor)
    return (minor & 0xFF) | ((major & 0xFFF) << 8) | ((minor & ~0xFF) << 12) | ((major & ~0xFFF) << 32)
}
