import CImagesLinux
import Foundation
import Glibc
@testable import Images
import Testing

@Suite struct LayerExtractorTests {
    static let isRoot = geteuid() == 0

    static func xattr(_ path: String, _ name: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = lgetxattr(path, name, &buffer, buffer.count)
        return count < 0 ? nil : String(decoding: buffer[..<count], as: UTF8.self)
    }

    @Test(.enabled(if: isRoot, "overlay whiteouts (char 0/0, trusted.* xattrs) need root"))
    func overlayModeWritesOverlayWhiteoutsAndOpaqueDirectories() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.directory("etc")
        tar.file("etc/.wh.passwd", "")
        tar.directory("var")
        tar.file("var/.wh..wh..opq", "")
        tar.file("var/new", "new")
        tar.file(".wh.gone-dir", "")
        tar.end()
        let report = try fixture.extract(tar, options: .init(mode: .overlay))
        let whiteout = try #require(fixture.lstatInfo("etc/passwd"))
        #expect((whiteout.st_mode & S_IFMT) == S_IFCHR)
        #expect(whiteout.st_rdev == 0)
        #expect((try #require(fixture.lstatInfo("gone-dir")).st_mode & S_IFMT) == S_IFCHR)
        #expect(Self.xattr(fixture.root + "/var", "trusted.overlay.opaque") == "y")
        #expect(fixture.contents("var/new") == "new")
        #expect(!fixture.exists("etc/.wh.passwd"))
        #expect(!fixture.exists("var/.wh..wh..opq"))
        #expect(report.entries == 6)
    }

    @Test func flattenModeDeletesWhiteoutsAndEmptiesOpaqueDirectories() throws {
        let fixture = try ExtractionFixture()
        var lower = TarBuilder()
        lower.file("etc/passwd", "root:x:0:0")
        lower.file("etc/group", "root:x:0:")
        lower.file("var/old", "old")
        lower.file("var/sub/deep", "deep")
        lower.directory("gone-dir", mode: 0o555)
        lower.file("gone-dir/inside", "x")
        lower.end()
        _ = try fixture.extract(lower, options: .init(mode: .flatten))

        var upper = TarBuilder()
        upper.file("etc/.wh.passwd", "")
        upper.directory("var")
        upper.file("var/new", "new")  // before the marker: must survive it
        upper.file("var/.wh..wh..opq", "")
        upper.file("var/newer", "newer")
        upper.file(".wh.gone-dir", "")
        upper.end()
        _ = try fixture.extract(upper, options: .init(mode: .flatten))
        #expect(!fixture.exists("etc/passwd"))
        #expect(fixture.contents("etc/group") == "root:x:0:")
        #expect(!fixture.exists("var/old"))
        #expect(!fixture.exists("var/sub"))
        #expect(fixture.contents("var/new") == "new")
        #expect(fixture.contents("var/newer") == "newer")
        #expect(!fixture.exists("gone-dir"))
        #expect(fixture.outsideUntouched)
    }

    @Test func whiteoutCannotNameDotDot() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.file("a/.wh...", "")
        tar.end()
        #expect(throws: LayerExtractionError.self) { try fixture.extract(tar, options: .init(mode: .flatten)) }
        #expect(fixture.outsideUntouched)
    }

    @Test func modesTimesAndXattrsAreKept() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.directory("bin", mode: 0o711)
        tar.add("bin/su", data: Array("#!/bin/sh".utf8), mode: 0o4755, uid: 1000, gid: 1001, mtime: 1_600_000_000)
        tar.pax([("SCHILY.xattr.user.shoal", "kept"), ("mtime", "1650000000.123456789")])
        tar.add("tagged", data: Array("x".utf8), mode: 0o600)
        tar.add("read-only-dir", type: UInt8(ascii: "5"), mode: 0o555, mtime: 1_500_000_000)
        tar.file("read-only-dir/child", "written before the mode")
        tar.add("fifo", type: UInt8(ascii: "6"), mode: 0o640)
        tar.add("link", type: UInt8(ascii: "2"), mode: 0o777, link: "bin/su", mtime: 1_400_000_000)
        tar.end()
        let report = try fixture.extract(tar)
        let su = try #require(fixture.lstatInfo("bin/su"))
        #expect(su.st_mode & 0o7777 == 0o4755)
        #expect(su.st_mtim.tv_sec == 1_600_000_000)
        if Self.isRoot {
            #expect(su.st_uid == 1000)
            #expect(su.st_gid == 1001)
        }
        #expect(try #require(fixture.lstatInfo("bin")).st_mode & 0o7777 == 0o711)
        let tagged = try #require(fixture.lstatInfo("tagged"))
        #expect(tagged.st_mtim.tv_sec == 1_650_000_000)
        #expect(tagged.st_mtim.tv_nsec == 123_456_789)
        let xattr = Self.xattr(fixture.root + "/tagged", "user.shoal")
        #expect(xattr == "kept" || report.notes.contains { $0.contains("user.shoal") })
        let directory = try #require(fixture.lstatInfo("read-only-dir"))
        #expect(directory.st_mode & 0o7777 == 0o555)
        #expect(directory.st_mtim.tv_sec == 1_500_000_000)
        #expect(fixture.contents("read-only-dir/child") == "written before the mode")
        #expect((try #require(fixture.lstatInfo("fifo")).st_mode & S_IFMT) == S_IFIFO)
        #expect(fixture.linkTarget("link") == "bin/su")
        #expect(try #require(fixture.lstatInfo("link")).st_mtim.tv_sec == 1_400_000_000)
    }

    @Test func laterEntriesReplaceEarlierOnes() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.file("x", "file first")
        tar.directory("x")
        tar.file("x/inside", "now a directory")
        tar.directory("y")
        tar.file("y/inside", "lost")
        tar.file("y", "now a file")
        tar.file("z", "old")
        tar.file("z", "new")
        tar.end()
        _ = try fixture.extract(tar)
        #expect(fixture.contents("x/inside") == "now a directory")
        #expect(fixture.contents("y") == "now a file")
        #expect(fixture.contents("z") == "new")
    }

    @Test func gzipLayerExtractsAndDiffIDIsTheUncompressedDigest() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.directory("data")
        let big = [UInt8]((0..<(3 << 20)).map { UInt8(truncatingIfNeeded: ($0 * 7) ^ ($0 >> 9)) })
        tar.add("data/big", data: big)
        tar.file("data/small", "small")
        tar.end()
        let diffID = Digest.of(tar.bytes)
        let report = try fixture.extract(tar, compression: .gzip, expectedDiffID: diffID)
        #expect(report.diffID == diffID)
        #expect(report.bytesWritten == Int64(big.count + 5))
        #expect(try Data(contentsOf: URL(fileURLWithPath: fixture.root + "/data/big")) == Data(big))
        #expect(try LayerCompression.detect(gzip(tar.bytes)) == .gzip)
        #expect(try LayerCompression.detect(tar.bytes) == LayerCompression.none)
    }

    @Test func concatenatedGzipMembersAreOneStream() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.file("a", String(repeating: "a", count: 5000))
        tar.file("b", "b")
        tar.end()
        let half = tar.bytes.count / 2
        let stream = gzip(Array(tar.bytes[..<half])) + gzip(Array(tar.bytes[half...]))
        let extractor = try LayerExtractor(rootPath: fixture.root)
        let report = try extractor.extract(from: MemoryByteSource(stream), compression: .gzip)
        #expect(report.diffID == Digest.of(tar.bytes))
        #expect(fixture.contents("b") == "b")
    }

    @Test func truncatedOrCorruptGzipIsAnError() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.add("big", data: [UInt8]((0..<200_000).map { UInt8(truncatingIfNeeded: $0 * 31 >> 3) }))
        tar.end()
        let compressed = gzip(tar.bytes)
        let extractor = try LayerExtractor(rootPath: fixture.root)
        #expect {
            try extractor.extract(from: MemoryByteSource(Array(compressed.prefix(compressed.count - 100))), compression: .gzip)
        } throws: { error in
            if case .truncated? = error as? LayerExtractionError { return true }
            return false
        }
        var corrupt = compressed
        corrupt[corrupt.count / 2] ^= 0xFF
        #expect(throws: LayerExtractionError.self) {
            try extractor.extract(from: MemoryByteSource(corrupt), compression: .gzip)
        }
        #expect(throws: LayerExtractionError.self) {
            try LayerCompression.detect([0x28, 0xB5, 0x2F, 0xFD, 0])
        }
    }

    @Test func diffIDMismatchIsReported() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.file("a", "a")
        tar.end()
        let wrong = Digest.of(Array("another layer".utf8))
        #expect {
            try fixture.extract(tar, expectedDiffID: wrong)
        } throws: { error in
            guard case let .diffIDMismatch(expected, actual)? = error as? LayerExtractionError else { return false }
            return expected == wrong && actual == Digest.of(tar.bytes)
        }
    }

    @Test func diffIDCoversTrailingBytesAfterTheEndMarker() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.file("a", "a")
        tar.end()
        // GNU tar pads archives to a 10 KiB record: the padding is part of the layer.
        let padded = tar.bytes + [UInt8](repeating: 0, count: 10240 - tar.bytes.count % 10240)
        let extractor = try LayerExtractor(rootPath: fixture.root)
        let report = try extractor.extract(from: MemoryByteSource(padded), compression: .none)
        #expect(report.diffID == Digest.of(padded))
    }

    @Test func paxRecordsParse() throws {
        var records: [String: [UInt8]] = [:]
        try TarReader.parsePax(Array("30 mtime=1700000000.000000001\n19 path=a/b/c/d/e/\n".utf8), into: &records, offset: 0)
        #expect(records["path"] == Array("a/b/c/d/e/".utf8))
        #expect(TarReader.parseTime("1700000000.000000001")! == (1_700_000_000, 1))
        #expect(TarReader.parseTime("-1.25")! == (-2, 750_000_000))
        #expect(throws: LayerExtractionError.self) {
            try TarReader.parsePax(Array("99 path=x\n".utf8), into: &records, offset: 0)
        }
    }
}
