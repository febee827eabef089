import CImagesLinux
import Foundation
import Posix
@testable import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Removed containers' directories kept, emptied, for the next containers.
@Suite("Spare directories")
struct SpareDirectoriesTests {
    let base = NSTemporaryDirectory() + "shoal-spares-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"

    func makeUsed(_ path: String) throws {
        let fileManager = FileManager.default
        try fileManager.createDirectory(atPath: path + "/layer/deep", withIntermediateDirectories: true)
        #expect(fileManager.createFile(atPath: path + "/log", contents: Data("old output\n".utf8)))
        #expect(fileManager.createFile(atPath: path + "/kept", contents: Data("as is".utf8)))
        #expect(fileManager.createFile(atPath: path + "/state.json", contents: Data("{}".utf8)))
        #expect(fileManager.createFile(atPath: path + "/layer/deep/file", contents: Data("x".utf8)))
        try fileManager.createDirectory(atPath: path + "/other", withIntermediateDirectories: true)
        #expect(mkfifo(path + "/out.fifo", 0o600) == 0)
    }

    func spares(limit: Int) -> SpareDirectories {
        SpareDirectories(directory: base + "/spare", limit: limit, reusable: ["log", "kept", "layer", "out.fifo"], emptied: ["log"])
    }

    @Test("a kept directory comes back with only its reusable entries: files emptied where asked, directories emptied, the rest gone")
    func keptDirectoryIsEmptied() throws {
        defer { Syscall.removeTree(base) }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try makeUsed(base + "/a")
        var before = stat()
        #expect(lstat(base + "/a", &before) == 0)
        let spares = spares(limit: 4)
        #expect(spares.keep(base + "/a"))
        #expect(!FileManager.default.fileExists(atPath: base + "/a"))
        #expect(spares.take(to: base + "/b"))
        var after = stat()
        #expect(lstat(base + "/b", &after) == 0 && after.st_ino == before.st_ino, "the same directory, renamed")
        #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/b").sorted() == ["kept", "layer", "log", "out.fifo"])
        #expect(try String(contentsOfFile: base + "/b/log", encoding: .utf8) == "")
        #expect(try String(contentsOfFile: base + "/b/kept", encoding: .utf8) == "as is")
        #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/b/layer").isEmpty)
        var fifo = stat()
        #expect(lstat(base + "/b/out.fifo", &fifo) == 0 && (fifo.st_mode & S_IFMT) == S_IFIFO)
        #expect(!spares.take(to: base + "/c"), "only one was kept")
    }

    @Test("a kept directory's reusable directories come back as made anew: mode 0755, root's, no extended attributes (the root a container changed)")
    func reusableDirectoriesLoseWhatTheirContainerSetOnThem() throws {
        defer { Syscall.removeTree(base) }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try makeUsed(base + "/a")
        let layer = base + "/a/layer"
        #expect(chmod(layer, 0o1700) == 0 && lchown(layer, 1000, 1000) == 0)
        #expect(lsetxattr(layer, "user.mark", "x", 1, 0) == 0 || errno == ENOTSUP)
        let spares = spares(limit: 4)
        #expect(spares.keep(base + "/a"))
        #expect(spares.take(to: base + "/b"))
        var info = stat()
        #expect(lstat(base + "/b/layer", &info) == 0)
        #expect(info.st_mode & 0o7777 == 0o755 && info.st_uid == 0 && info.st_gid == 0, "mode \(String(info.st_mode & 0o7777, radix: 8)) owner \(info.st_uid):\(info.st_gid)")
        #expect(llistxattr(base + "/b/layer", nil, 0) <= 0, "no extended attribute left")
    }

    @Test("prefill makes spares up to the count asked (within the limit), laid out by the caller, which takes them")
    func prefillMakesSparesInTheBackground() throws {
        defer { Syscall.removeTree(base) }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let spares = spares(limit: 3)
        spares.prefill(to: 5, mode: 0o700) { path in
            _ = mkdir(path + "/layer", SpareDirectories.directoryMode)
            _ = mkfifo(path + "/out.fifo", 0o600)
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while (try? FileManager.default.contentsOfDirectory(atPath: base + "/spare").count) ?? 0 < 3, ContinuousClock.now < deadline {
            usleep(10_000)
        }
        usleep(50_000)
        #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/spare").count == 3, "no more than the limit")
        for name in ["x", "y", "z"] {
            #expect(spares.take(to: base + "/" + name))
            #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/" + name).sorted() == ["layer", "out.fifo"])
            var info = stat()
            #expect(lstat(base + "/" + name, &info) == 0 && info.st_mode & 0o777 == 0o700)
        }
        #expect(!spares.take(to: base + "/w"))
    }

    @Test("no more than the limit are kept (the rest are removed), and a new instance finds those kept before")
    func limitAndRestart() throws {
        defer { Syscall.removeTree(base) }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        for name in ["a", "b", "c"] { try makeUsed(base + "/" + name) }
        let spares = spares(limit: 2)
        for name in ["a", "b", "c"] { #expect(spares.keep(base + "/" + name)) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: base + "/spare").count == 2)
        let restarted = self.spares(limit: 2)
        #expect(restarted.take(to: base + "/x") && restarted.take(to: base + "/y"))
        #expect(!restarted.take(to: base + "/z"))
        #expect(spares.keep(base + "/missing"), "a directory already gone counts as removed")
    }

    @Test("overlayfs attributes on a reused directory are removed", .enabled(if: getuid() == 0, "sets trusted.* attributes: needs root"))
    func overlayAttributesAreRemoved() throws {
        defer { Syscall.removeTree(base) }
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        try makeUsed(base + "/a")
        #expect(setxattr(base + "/a/layer", "trusted.overlay.opaque", "y", 1, 0) == 0)
        #expect(setxattr(base + "/a/layer", "user.kept", "1", 1, 0) == 0 || errno == EOPNOTSUPP)
        let spares = spares(limit: 1)
        #expect(spares.keep(base + "/a") && spares.take(to: base + "/b"))
        var value = [UInt8](repeating: 0, count: 8)
        #expect(getxattr(base + "/b/layer", "trusted.overlay.opaque", &value, value.count) < 0)
    }
}
