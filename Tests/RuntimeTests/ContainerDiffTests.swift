import Foundation
import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite("Container diff", .serialized, .enabled(if: TestImage.available, "needs root and busybox-static"),
       .timeLimit(.minutes(5)))
struct ContainerDiffTests {
    /// Writes what `produce` streams into a file under the fixture's directory.
    func archive(_ fixture: RuntimeFixture, _ name: String, _ produce: (Int32) throws -> Void) throws -> String {
        let path = fixture.stateDirectory + "/" + name
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(descriptor >= 0)
        defer { close(descriptor) }
        try produce(descriptor)
        return path
    }

    /// GNU tar, the peer that reads our streams: exit status, stdout, stderr.
    func tar(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/tar")
        process.arguments = arguments
        let output = Pipe(), error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let complaint = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, printed, complaint)
    }

    func overlay(_ fixture: RuntimeFixture, _ name: String) -> RootFilesystem {
        let base = fixture.stateDirectory + "/overlay-" + name
        return .overlay(lowerDirectories: [fixture.rootfs], upperDirectory: base + "/upper",
                        workDirectory: base + "/work", mountPoint: base + "/merged")
    }

    @Test func addedChangedAndDeletedPathsOfTheWritableLayer() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("changer", ["sh", "-c", """
            echo x > /tmp/new && echo more >> /etc/passwd && rm /etc/group && mkdir -p /data/sub && touch /data/sub/f
            """]) { $0.rootFilesystem = overlay(fixture, "changer") }
        #expect(result.status == .exited(0), "\(result.error)")
        let changes = try fixture.runtime.diff("changer").map(\.description)
        #expect(changes == [
            "A /data", "A /data/sub", "A /data/sub/f",
            "C /etc", "D /etc/group", "C /etc/passwd",
            "C /tmp", "A /tmp/new",
        ], "\(changes)")
        // The image itself is untouched.
        #expect(FileManager.default.fileExists(atPath: fixture.rootfs + "/etc/group"))
    }

    @Test func aRunningContainersChangesShowAtOnce() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        try fixture.runtime.run(fixture.spec("live", ["sh", "-c", "touch /root/marker; sleep 1000"]) {
            $0.rootFilesystem = overlay(fixture, "live")
        })
        #expect(try fixture.eventually { try fixture.runtime.diff("live").map(\.description).contains("A /root/marker") })
        try fixture.runtime.stop("live", gracePeriod: .zero)
    }

    @Test func aPlainDirectoryRootHasNoLayerToCompare() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        try fixture.runtime.create(fixture.spec("plain", ["true"]))
        #expect(throws: RuntimeError.noWritableLayer(id: "plain", operation: "diff")) {
            try fixture.runtime.diff("plain")
        }
        #expect(throws: RuntimeError.noSuchContainer("nobody")) { try fixture.runtime.diff("nobody") }
    }

    /// `export` is read back by GNU tar (the peer): the merged view, with the
    /// container's additions, without what it deleted, busybox intact.
    @Test func exportIsTheMergedRootAsATarStream() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("exported", ["sh", "-c", """
            echo hello > /root/made-here && rm /etc/group && mkdir -p /deep/\(String(repeating: "d", count: 90))/\(String(repeating: "e", count: 40))
            """]) { $0.rootFilesystem = overlay(fixture, "exported") }
        #expect(result.status == .exited(0), "\(result.error)")
        let exported = try archive(fixture, "export.tar") { try fixture.runtime.export("exported", to: $0) }
        let unpacked = fixture.stateDirectory + "/unpacked"
        try FileManager.default.createDirectory(atPath: unpacked, withIntermediateDirectories: true)
        let extraction = try tar(["-xf", exported, "-C", unpacked])
        #expect(extraction.status == 0, "GNU tar refused the stream: \(extraction.error)")
        #expect(try String(contentsOfFile: unpacked + "/root/made-here", encoding: .utf8) == "hello\n")
        #expect(!FileManager.default.fileExists(atPath: unpacked + "/etc/group"), "a whiteout hides the image's file")
        #expect(try String(contentsOfFile: unpacked + "/etc/passwd", encoding: .utf8)
            == String(contentsOfFile: fixture.rootfs + "/etc/passwd", encoding: .utf8))
        #expect(FileManager.default.contentsEqual(atPath: unpacked + "/bin/busybox", andPath: fixture.rootfs + "/bin/busybox"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: unpacked + "/bin/sh") == "/bin/busybox")
        #expect(FileManager.default.isExecutableFile(atPath: unpacked + "/bin/busybox"))
        let longPath = "/deep/" + String(repeating: "d", count: 90) + "/" + String(repeating: "e", count: 40)
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: unpacked + longPath, isDirectory: &isDirectory) && isDirectory.boolValue,
                "a name over 100 bytes survives (PAX path)")
    }
    /// A running container that keeps swapping one of its directories for a
    /// symbolic link to a host directory (the race a walk by path loses:
    /// listed as a directory, read through the link) never gets a host file
    /// into `export`, and a link that points out is exported as a link.
    @Test func exportNeverFollowsALinkTheContainerSwapsIn() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let secret = fixture.stateDirectory + "/host-secret"
        try FileManager.default.createDirectory(atPath: secret, withIntermediateDirectories: true)
        try "host-only-\(getpid())\n".write(toFile: secret + "/marker", atomically: true, encoding: .utf8)
        try fixture.runtime.run(fixture.spec("swapper", ["sh", "-c", """
            mkdir -p /swap && echo inside-marker > /swap/marker && ln -s \(secret) /points-out && echo ready
            while true; do mv /swap /swap.real; ln -s \(secret) /swap; rm /swap; mv /swap.real /swap; done
            """]) { $0.rootFilesystem = overlay(fixture, "swapper") })
        defer { _ = try? fixture.runtime.stop("swapper", gracePeriod: .zero) }
        #expect(try fixture.eventually { try fixture.runtime.logs("swapper").standardOutput == "ready\n" })
        var insideSeen = 0
        for round in 0..<40 {
            let exported = try archive(fixture, "swap.tar") { try fixture.runtime.export("swapper", to: $0) }
            let bytes = try Data(contentsOf: URL(fileURLWithPath: exported))
            #expect(bytes.range(of: Data("host-only-".utf8)) == nil, "round \(round): a host file's contents in the export")
            if bytes.range(of: Data("inside-marker".utf8)) != nil { insideSeen += 1 }
            if round == 0 {
                let listing = try tar(["-tvf", exported])
                #expect(listing.status == 0, "\(listing.error)")
                #expect(listing.output.contains("points-out -> \(secret)"), "\(listing.output)")
            }
        }
        #expect(insideSeen > 0, "the swapped directory's own file was exported in some round")
    }

    /// The writable layer as an OCI layer: additions, `.wh.` whiteouts for
    /// deletions and `.wh..wh..opq` for a directory replaced wholesale, as
    /// GNU tar lists them; the runtime's own mount points are not in it.
    @Test func theWritableLayerExportsAsAnOCILayer() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("layer", ["sh", "-c", """
            echo hi > /tmp/x && rm /etc/group && rm -rf /home && mkdir -p /home && touch /home/fresh
            """]) { $0.rootFilesystem = overlay(fixture, "layer") }
        #expect(result.status == .exited(0), "\(result.error)")
        let layer = try archive(fixture, "layer.tar") { try fixture.runtime.exportChanges("layer", to: $0) }
        let listing = try tar(["-tf", layer])
        #expect(listing.status == 0, "\(listing.error)")
        let names = listing.output.split(separator: "\n").map(String.init)
        #expect(names == ["etc/", "etc/.wh.group", "home/", "home/.wh..wh..opq", "home/fresh", "tmp/", "tmp/x"], "\(names)")
        #expect(throws: RuntimeError.noWritableLayer(id: "plain", operation: "export the changes of")) {
            try fixture.runtime.create(fixture.spec("plain", ["true"]))
            try fixture.runtime.exportChanges("plain", to: -1)
        }
    }
}
