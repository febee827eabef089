import Foundation
import Posix
@testable import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// How the runtime writes its files: the state's dates, and tree removal.
@Suite("State files and tree removal")
struct StateFileTests {
    @Test("the state's dates keep their microseconds through a write and a read, and whole-second dates of older state files still read")
    func datesKeepTheirMicroseconds() throws {
        let dates = [0, 1, 59.999, 946_684_799.5, 951_782_400, 1_795_972_130.272837, 1_795_972_130.999_999, 4_102_444_799]
            .map(Date.init(timeIntervalSince1970:)) + [Date()]
        for date in dates {
            let text = ContainerState.iso8601(date)
            let read = try #require(ContainerState.date(iso8601: text), "\(text)")
            #expect(abs(read.timeIntervalSince1970 - date.timeIntervalSince1970) < 0.000_002, "\(text)")
        }
        #expect(ContainerState.iso8601(Date(timeIntervalSince1970: 1_795_972_130.272837)) == "2026-11-29T17:08:50.272837Z")
        // As Foundation's .iso8601 strategy wrote them before.
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        struct Stamp: Codable { var at: Date }
        let old = Date(timeIntervalSince1970: 1_795_972_130)
        let foundation = String(decoding: try encoder.encode(Stamp(at: old)), as: UTF8.self)
        let text = String(foundation.dropFirst(7).dropLast(2))
        #expect(ContainerState.date(iso8601: text) == old, "\(text)")
        for bad in ["", "2026-11-29", "2026-11-29T12:28:50", "2026-11-29T12:28:50.Z", "2026-1x-29T12:28:50Z"] {
            #expect(ContainerState.date(iso8601: bad) == nil, "\(bad)")
        }
    }

    @Test("removeTree removes files, nested and read-only directories, and links without following them")
    func removeTreeRemovesEverythingBelow() throws {
        let base = NSTemporaryDirectory() + "shoal-remove-tree-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let tree = base + "/tree"
        let outside = base + "/outside"
        defer { _ = Syscall.removeTree(base) }
        let fileManager = FileManager.default
        try fileManager.createDirectory(atPath: tree + "/a/b/c", withIntermediateDirectories: true)
        try fileManager.createDirectory(atPath: outside, withIntermediateDirectories: true)
        for path in [tree + "/top", tree + "/a/one", tree + "/a/b/c/deep", outside + "/kept"] {
            #expect(fileManager.createFile(atPath: path, contents: Data("x".utf8)))
        }
        try fileManager.createSymbolicLink(atPath: tree + "/a/link-to-outside", withDestinationPath: outside)
        try fileManager.createSymbolicLink(atPath: tree + "/dangling", withDestinationPath: "/nonexistent/at/all")
        #expect(mkfifo(tree + "/a/fifo", 0o600) == 0)
        #expect(chmod(tree + "/a/b", 0o500) == 0)

        #expect(Syscall.removeTree(tree))
        #expect(!fileManager.fileExists(atPath: tree))
        #expect(fileManager.fileExists(atPath: outside + "/kept"), "the link was followed")
        #expect(Syscall.removeTree(tree), "a path already gone counts as removed")
        #expect(Syscall.removeTree(outside + "/kept") && !fileManager.fileExists(atPath: outside + "/kept"), "a single file")
    }

    @Test("removeTree leaves a file system mounted below the path, and its mount point", .enabled(if: getuid() == 0, "mounts a tmpfs: needs root"))
    func removeTreeStopsAtMounts() throws {
        let tree = NSTemporaryDirectory() + "shoal-remove-mount-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: tree + "/mounted", withIntermediateDirectories: true)
        #expect(FileManager.default.createFile(atPath: tree + "/file", contents: nil))
        try #require(mount("tmpfs", tree + "/mounted", "tmpfs", 0, nil) == 0)
        defer {
            umount2(tree + "/mounted", Int32(MNT_DETACH))
            _ = Syscall.removeTree(tree)
        }
        #expect(FileManager.default.createFile(atPath: tree + "/mounted/inside", contents: nil))
        #expect(!Syscall.removeTree(tree), "the mount point cannot go")
        #expect(FileManager.default.fileExists(atPath: tree + "/mounted/inside"))
        #expect(!FileManager.default.fileExists(atPath: tree + "/file"))
    }
}
