import Foundation
import Glibc
@testable import Images
import Testing

/// Archives that try to write outside the target directory. Each must be
/// refused with a clear error or neutralised (kept inside the root), and
/// nothing outside the root may change.
@Suite struct LayerExtractorSecurityTests {
    static let isRoot = geteuid() == 0

    @Test(arguments: ["../../etc/passwd", "../outside/secret", "a/../../x", "./../escaped", "a/b/../../../pwned"])
    func dotDotAboveTheRootIsRefused(name: String) throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.file(name, "pwned")
        tar.end()
        #expect {
            try fixture.extract(tar)
        } throws: { error in
            guard case let .unsafePath(entry, reason) = error as? LayerExtractionError else { return false }
            return entry == name && reason.contains("..")
        }
        #expect(fixture.outsideUntouched)
        #expect(fixture.rootEntries().isEmpty)
    }

    @Test func dotDotInsideTheRootIsCleaned() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.file("a/../b", "fine")
        tar.file("./c/./d", "fine too")
        tar.end()
        _ = try fixture.extract(tar)
        #expect(fixture.contents("b") == "fine")
        #expect(fixture.contents("c/d") == "fine too")
        #expect(!fixture.exists("a/b"))
        #expect(fixture.outsideUntouched)
    }

    @Test func absoluteNamesLandInsideTheRoot() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.file("/abs/path", "inside")
        tar.file(fixture.secret, "pwned")  // the decoy's absolute host path
        tar.end()
        _ = try fixture.extract(tar)
        #expect(fixture.contents("abs/path") == "inside")
        #expect(fixture.contents(String(fixture.secret.dropFirst())) == "pwned")
        #expect(fixture.outsideUntouched)
    }

    @Test func symlinkToSlashThenWritingThroughItStaysInside() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.symlink("a", to: "/")
        tar.file("a/etc/x", "through the link")
        tar.symlink("b", to: fixture.outside)
        tar.file("b/secret", "pwned")
        tar.end()
        _ = try fixture.extract(tar)
        // The links are kept verbatim (they are valid inside the container)...
        #expect(fixture.linkTarget("a") == "/")
        #expect(fixture.linkTarget("b") == fixture.outside)
        // ...and writing through them resolves inside the root, as in the container.
        #expect(fixture.contents("etc/x") == "through the link")
        #expect(fixture.contents(String(fixture.secret.dropFirst())) == "pwned")
        #expect(fixture.outsideUntouched)
    }

    @Test func symlinkClimbingUpThenWritingThroughItStaysInside() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.symlink("up", to: "../..")
        tar.file("up/escaped", "pwned")
        tar.symlink("deep/up2", to: "../../../../../../../../outside")
        tar.file("deep/up2/secret", "pwned")
        tar.end()
        _ = try fixture.extract(tar)
        #expect(fixture.contents("escaped") == "pwned")
        #expect(fixture.contents("outside/secret") == "pwned")
        #expect(fixture.outsideUntouched)
    }

    @Test func hardLinkToAHostFileIsRefused() throws {
        let fixture = try ExtractionFixture()
        var shadowBefore = stat()
        let hasShadow = lstat("/etc/shadow", &shadowBefore) == 0
        for target in ["/etc/shadow", fixture.secret, "../outside/secret"] {
            var tar = TarBuilder()
            tar.hardlink("stolen", to: target)
            tar.end()
            #expect {
                try fixture.extract(tar)
            } throws: { error in
                switch error as? LayerExtractionError {
                case .hardLinkTargetMissing(let entry, _): return entry == "stolen"
                case .unsafePath(let entry, _): return entry == "stolen" && target.hasPrefix("..")
                default: return false
                }
            }
            #expect(!fixture.exists("stolen"))
        }
        #expect(fixture.outsideUntouched)
        if hasShadow {
            var shadowAfter = stat()
            #expect(lstat("/etc/shadow", &shadowAfter) == 0)
            #expect(shadowAfter.st_nlink == shadowBefore.st_nlink)
        }
    }

    @Test func hardLinkToAnInLayerFileWithAnAbsoluteNameWorks() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.file("etc/shadow", "layer's own")
        tar.hardlink("shadow-link", to: "/etc/shadow")
        tar.end()
        _ = try fixture.extract(tar)
        #expect(fixture.contents("shadow-link") == "layer's own")
        #expect(fixture.lstatInfo("etc/shadow")?.st_nlink == 2)
        #expect(fixture.outsideUntouched)
    }

    @Test func hardLinkToASymlinkPointingOutsideLinksTheLinkNotTheTarget() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.symlink("s", to: fixture.secret)
        tar.hardlink("h", to: "s")
        tar.end()
        _ = try fixture.extract(tar)
        let link = try #require(fixture.lstatInfo("h"))
        #expect((link.st_mode & S_IFMT) == S_IFLNK)
        #expect(fixture.linkTarget("h") == fixture.secret)
        #expect(link.st_ino == fixture.lstatInfo("s")?.st_ino)

        // Writing the link's name again replaces the link, never the file it names.
        var second = TarBuilder()
        second.file("h", "pwned")
        second.file("s", "pwned again")
        second.end()
        _ = try fixture.extract(second)
        #expect(fixture.contents("h") == "pwned")
        #expect(fixture.contents("s") == "pwned again")
        #expect(fixture.outsideUntouched)
    }

    @Test func directoryReplacedBySymlinkMidArchiveCannotRedirectWrites() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.directory("d")
        tar.file("d/a", "first")
        tar.symlink("d", to: fixture.outside)
        tar.file("d/b", "pwned")
        tar.directory("e")
        tar.file("e/a", "first")
        tar.symlink("e", to: "../outside")
        tar.file("e/secret", "pwned")
        tar.end()
        _ = try fixture.extract(tar)
        #expect(fixture.linkTarget("d") == fixture.outside)
        #expect(fixture.contents(String(fixture.outside.dropFirst()) + "/b") == "pwned")
        #expect(fixture.contents("outside/secret") == "pwned")
        #expect(!FileManager.default.fileExists(atPath: fixture.outside + "/b"))
        #expect(fixture.outsideUntouched)
    }

    @Test func componentWalkResolverRefusesSymlinkedParents() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.symlink("a", to: "/")
        tar.file("a/x", "pwned")
        tar.end()
        #expect {
            try fixture.extract(tar, options: .init(resolver: .componentWalk))
        } throws: { error in
            if case .symlinkInPath(let entry) = error as? LayerExtractionError { return entry == "a/x" }
            return false
        }
        #expect(!fixture.exists("x"))
        #expect(fixture.outsideUntouched)
    }

    @Test func openat2IsAvailableOnThisKernel() throws {
        let fixture = try ExtractionFixture()
        // Kernel 5.6+; the hosts Shoal targets run 6.x. If this fails, the
        // component walk (which refuses symlinked parents) is in use.
        #expect(try LayerExtractor(rootPath: fixture.root).resolvesInRoot)
    }

    @Test func longNamesViaPaxAndGNU() throws {
        let fixture = try ExtractionFixture()
        let paxName = (0..<30).map { "directory\($0)" }.joined(separator: "/") + "/pax-file"
        let gnuName = String(repeating: "g", count: 150) + "/" + String(repeating: "n", count: 120)
        let longTarget = String(repeating: "t", count: 180)
        var tar = TarBuilder()
        tar.pax([("path", paxName), ("mtime", "1700000000.25")])
        tar.add("short-name-ignored", data: Array("pax".utf8))
        tar.gnuLong("L", gnuName)
        tar.add(String(gnuName.prefix(100)), data: Array("gnu".utf8), format: .gnu)
        tar.gnuLong("L", "long-link-name-" + String(repeating: "l", count: 100))
        tar.gnuLong("K", longTarget)
        tar.add("ignored", type: UInt8(ascii: "2"), link: String(longTarget.prefix(100)), format: .gnu)
        tar.add("name-in-ustar-prefix", data: Array("prefix".utf8), prefix: String(repeating: "p", count: 120))
        tar.end()
        _ = try fixture.extract(tar)
        #expect(fixture.contents(paxName) == "pax")
        #expect(fixture.lstatInfo(paxName)?.st_mtim.tv_nsec == 250_000_000)
        #expect(fixture.contents(gnuName) == "gnu")
        #expect(fixture.linkTarget("long-link-name-" + String(repeating: "l", count: 100)) == longTarget)
        #expect(fixture.contents(String(repeating: "p", count: 120) + "/name-in-ustar-prefix") == "prefix")
        #expect(!fixture.exists("short-name-ignored"))
        #expect(fixture.outsideUntouched)
    }

    @Test func paxPathCannotSmuggleDotDot() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.pax([("path", "../outside/secret")])
        tar.add("innocent", data: Array("pwned".utf8))
        tar.end()
        #expect(throws: LayerExtractionError.self) { try fixture.extract(tar) }
        #expect(!fixture.exists("innocent"))
        #expect(fixture.outsideUntouched)
    }

    @Test func deviceNodesAreSkippedByDefault() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.add("dev/null", type: UInt8(ascii: "3"), mode: 0o666, deviceMajor: 1, deviceMinor: 3)
        tar.add("dev/sda", type: UInt8(ascii: "4"), mode: 0o660, deviceMajor: 8, deviceMinor: 0)
        tar.file("dev/ok", "regular")
        tar.end()
        let report = try fixture.extract(tar)
        #expect(!fixture.exists("dev/null"))
        #expect(!fixture.exists("dev/sda"))
        #expect(fixture.contents("dev/ok") == "regular")
        #expect(report.notes.count == 2)
        #expect(report.notes.allSatisfy { $0.contains("skipped device node") })
    }

    @Test(.enabled(if: isRoot, "creating device nodes needs root"))
    func deviceNodesWhenAllowedAsRoot() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.add("dev/null", type: UInt8(ascii: "3"), mode: 0o666, deviceMajor: 1, deviceMinor: 3)
        tar.end()
        _ = try fixture.extract(tar, options: .init(allowDeviceNodes: true))
        let info = try #require(fixture.lstatInfo("dev/null"))
        #expect((info.st_mode & S_IFMT) == S_IFCHR)
        #expect(info.st_rdev == shoal_test_makedev(1, 3))
        #expect(info.st_mode & 0o7777 == 0o666)
    }

    @Test func truncatedFileIsAnErrorAndLeavesNoPartialFile() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.file("complete", "whole")
        tar.add("huge", data: [UInt8](repeating: 0x41, count: 1000), declaredSize: 10 << 20)
        // No end blocks: the stream simply stops, as a cut download does.
        #expect {
            try fixture.extract(tar)
        } throws: { error in
            guard case let .truncated(entry, reason)? = error as? LayerExtractionError else { return false }
            return entry == "huge" && reason.contains("declared size")
        }
        #expect(!fixture.exists("huge"))
        #expect(fixture.contents("complete") == "whole")
        #expect(fixture.outsideUntouched)
    }

    @Test func truncatedHeaderAndCorruptChecksumAreErrors() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.file("a", "x")
        var cut = tar
        cut.add("b", data: [])
        let truncatedHeader = Array(cut.bytes.prefix(tar.bytes.count + 300))
        let extractor = try LayerExtractor(rootPath: fixture.root)
        #expect(throws: LayerExtractionError.self) {
            try extractor.extract(from: MemoryByteSource(truncatedHeader), compression: .none)
        }
        var corrupt = tar.bytes
        corrupt[0] ^= 0x20
        #expect {
            try extractor.extract(from: MemoryByteSource(corrupt), compression: .none)
        } throws: { error in
            (error as? LayerExtractionError)?.description.contains("checksum") == true
        }
    }

    @Test func overlayXattrsFromTheLayerAreIgnored() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.pax([("SCHILY.xattr.trusted.overlay.redirect", "/etc"), ("SCHILY.xattr.trusted.overlay.opaque", "y")])
        tar.directory("d")
        tar.end()
        let report = try fixture.extract(tar)
        #expect(LayerExtractorTests.xattr(fixture.root + "/d", "trusted.overlay.redirect") == nil)
        #expect(LayerExtractorTests.xattr(fixture.root + "/d", "trusted.overlay.opaque") == nil)
        #expect(report.notes.filter { $0.contains("ignored xattr trusted.overlay.") }.count == 2)
    }

    @Test func sparseFilesAreRefused() throws {
        let fixture = try ExtractionFixture()
        var tar = TarBuilder()
        tar.add("sparse", type: UInt8(ascii: "S"), data: [1, 2, 3])
        tar.end()
        #expect(throws: LayerExtractionError.self) { try fixture.extract(tar) }
    }
}
