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
    @Test("the state's dates are written as the .iso8601 strategy writes them, so a restarted runtime reads them alike")
    func datesMatchFoundationsISO8601() throws {
        struct Stamp: Codable { var at: Date }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let dates = [0, 1, 59.999, 946_684_799.5, 951_782_400, 1_795_972_130.272837, 1_795_972_130.999_999, 4_102_444_799]
            .map(Date.init(timeIntervalSince1970:)) + [Date()]
        for date in dates {
            let foundation = String(decoding: try encoder.encode(Stamp(at: date)), as: UTF8.self)
            #expect(foundation == "{\"at\":\"\(ContainerState.iso8601(date))\"}", "\(date.timeIntervalSince1970)")
            let read = try decoder.decode(Stamp.self, from: Data("{\"at\":\"\(ContainerState.iso8601(date))\"}".utf8)).at
            #expect(read.timeIntervalSince1970 == date.timeIntervalSince1970.rounded(.down))
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
