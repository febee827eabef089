import Foundation
import Posix
@testable import Runtime
import Testing
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// How the runtime writes its files: the state's dates, and tree removal.
@Suite("State files and tree removal")
struct StateFileTests {
    @Test("makeDirectories makes every missing parent, accepts what exists, and names what is in the way")
    func makeDirectoriesMakesParentsAndReportsWhatIsInTheWay() throws {
        let base = NSTemporaryDirectory() + "shoal-mkdirs-\(getpid())"
        defer { Syscall.removeTree(base) }
        try Syscall.makeDirectories(base + "/a/b/c/")
        var info = stat()
        #expect(stat(base + "/a/b/c", &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR)
        try Syscall.makeDirectories(base + "/a/b/c")  // already there
        try Syscall.makeDirectories(base + "/a/b/d", mode: 0o700)
        #expect(stat(base + "/a/b/d", &info) == 0 && info.st_mode & 0o777 == 0o700)
        try "x".write(toFile: base + "/file", atomically: false, encoding: .utf8)
        let blocked = #expect(throws: SystemError.self) { try Syscall.makeDirectories(base + "/file/sub/dir") }
        #expect(blocked?.errno == ENOTDIR, "\(String(describing: blocked))")
        #expect(!FileManager.default.fileExists(atPath: base + "/file/sub"))
    }

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

/// state.json's encoding (``ContainerStateEncoder``): the fixed part kept,
/// the run's fields by hand; it must read back as the Codable form does.
@Suite("State file encoding")
struct StateEncodingTests {
    static let awkward = "quote \" backslash \\ slash / newline \n tab \t return \r bell \u{07} nul \u{00} escape \u{1B} del \u{7F} é ☃ 🐳"

    /// Every optional set, every string awkward.
    static func fullState(_ status: ContainerStatus = .exited, exit: Runtime.ExitStatus = .signaled(9)) -> ContainerState {
        var spec = ContainerSpec(
            id: "every-field", rootFilesystem: .overlay(lowerDirectories: ["/l1", "/l2"], upperDirectory: "/u", workDirectory: "/w", mountPoint: "/m"),
            command: ["sh", "-c", awkward], environment: ["A=" + awkward], user: "app:staff", workingDirectory: "/work",
            hostname: "host", network: .bridge, mounts: [BindMount(source: "/src", destination: "/dst", readOnly: true)],
            publishedPorts: [PortMapping(hostAddress: "127.0.0.1", hostPort: 8080, containerPort: 80, transport: .udp)],
            links: [ContainerLink(container: "other", alias: "db")], logging: LogOptions(maxSizeBytes: 1024, maxFiles: 3),
            healthCheck: HealthCheck(command: ["true"]), stdio: StdioOptions(openStandardInput: true, terminal: true, windowSize: TerminalSize(rows: 24, columns: 80)))
        spec.limits = ResourceLimits(memoryLimitBytes: 32 << 20, memorySwapLimitBytes: 64 << 20, cpuQuotaMicroseconds: 50_000, cpuWeight: 100, pidsLimit: 64)
        spec.userNamespace = UserNamespaceMapping(hostUID: 100_000, hostGID: 100_000, size: 65536)
        spec.resourceLimits = [ProcessLimit(resource: 7, soft: 1024, hard: 4096)]
        return ContainerState(
            spec: spec, status: status, user: ResolvedUser(uid: 1000, gid: 1000, additionalGroups: [10, 20], home: "/home/" + awkward),
            cgroupLayout: .hybrid, cgroupParent: "shoal", pid: 4242, processStartTicks: UInt64.max, exitStatus: exit, oomKilled: true,
            startError: awkward, createdAt: Date(timeIntervalSince1970: 1_795_972_130.272837),
            startedAt: Date(timeIntervalSince1970: 1_795_972_131.5), finishedAt: Date(timeIntervalSince1970: 1_795_972_132.000001),
            network: NetworkAttachment(bridge: "shoal0", address: "10.88.0.2", prefixLength: 16, gateway: "10.88.0.1", hostInterface: "shv1234",
                                       ports: [PublishedPort(hostAddress: "0.0.0.0", hostPort: 1, containerPort: 65535, transport: .tcp),
                                               PublishedPort(hostAddress: "127.0.0.1", hostPort: 443, containerPort: 443, transport: .udp)]),
            monitorPid: Int32.max, monitorStartTicks: 17,
            health: HealthState(status: .unhealthy, failingStreak: 3, log: [
                HealthProbeResult(start: Date(timeIntervalSince1970: 1_795_972_133), end: Date(timeIntervalSince1970: 1_795_972_134), exitCode: -1, output: awkward),
            ]))
    }

    static func codableForm(_ state: ContainerState) throws -> Data {
        try ContainerStateEncoder.makeJSONEncoder().encode(state)
    }

    static func decode(_ bytes: some Sequence<UInt8>) throws -> ContainerState {
        let path = NSTemporaryDirectory() + "shoal-state-encoding-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).json"
        defer { unlink(path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        return try ContainerState.read(from: path)
    }

    static func keys(_ bytes: some Sequence<UInt8>) throws -> Set<String> {
        Set(try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any]).keys)
    }

    @Test("a state with every field set reads back equal, with the same keys and values as its Codable form")
    func everyFieldReadsBack() throws {
        for exit in [Runtime.ExitStatus.exited(0), .exited(-3), .signaled(9), .unknown] {
            let state = Self.fullState(exit: exit)
            var encoder = ContainerStateEncoder()
            let bytes = try encoder.encode(state)
            #expect(try Self.decode(bytes) == state)
            let codable = try Self.codableForm(state)
            #expect(try Self.keys(bytes) == Self.keys(codable), "a field of ContainerState is missing from ContainerStateEncoder")
            #expect(try Self.decode(bytes) == Self.decode(codable))
            let ours = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary)
            let theirs = try #require(try JSONSerialization.jsonObject(with: codable) as? NSDictionary)
            #expect(ours == theirs, "values differ from the Codable form")
        }
    }

    @Test("the test's spec sets every field (a field added to ContainerSpec or a type it holds must be set here, and so gets compared)")
    func fullSpecSetsEveryField() {
        func unset(_ value: Any, path: String) -> [String] {
            let mirror = Mirror(reflecting: value)
            if mirror.displayStyle == .optional {
                guard let wrapped = mirror.children.first?.value else { return [path] }
                return unset(wrapped, path: path)
            }
            if mirror.displayStyle == .collection { return mirror.children.isEmpty ? [path] : unset(mirror.children.first!.value, path: path + "[0]") }
            return mirror.children.flatMap { child in unset(child.value, path: path + "." + (child.label ?? "?")) }
        }
        #expect(unset(Self.fullState().spec, path: "spec") == [])
        #expect(unset(Self.fullState().user, path: "user") == [])
    }

    @Test("a spec with a directory root and one without any optional field read back equal, with the Codable form's keys and values")
    func sparseSpecsReadBack() throws {
        var state = Self.fullState(.created)
        state.spec = ContainerSpec(id: "sparse", rootFilesystem: .directory("/rootfs/" + Self.awkward), command: ["true"])
        var encoder = ContainerStateEncoder()
        let bytes = try encoder.encode(state)
        #expect(try Self.decode(bytes) == state)
        let ours = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? NSDictionary)
        let theirs = try #require(try JSONSerialization.jsonObject(with: Self.codableForm(state)) as? NSDictionary)
        #expect(ours == theirs)
    }

    @Test("optional fields left out read back as nil, as the Codable form leaves them out")
    func absentFieldsStayAbsent() throws {
        var state = Self.fullState(.created)
        state.pid = nil
        state.processStartTicks = nil
        state.exitStatus = nil
        state.startError = nil
        state.startedAt = nil
        state.finishedAt = nil
        state.network = nil
        state.monitorPid = nil
        state.monitorStartTicks = nil
        state.health = nil
        state.oomKilled = false
        var encoder = ContainerStateEncoder()
        let bytes = try encoder.encode(state)
        #expect(try Self.decode(bytes) == state)
        #expect(try Self.keys(bytes) == Self.keys(Self.codableForm(state)))
        var noPorts = Self.fullState()
        noPorts.network?.ports = []
        noPorts.network?.hostInterface = nil
        #expect(try Self.decode(encoder.encode(noPorts)) == noPorts)
    }

    @Test("the kept fixed part is encoded again when it changes")
    func fixedPartFollowsChanges() throws {
        var encoder = ContainerStateEncoder()
        var state = Self.fullState(.running)
        _ = try encoder.encode(state)
        state.spec.command = ["changed"]
        state.user.home = "/elsewhere"
        state.cgroupParent = "other"
        state.createdAt = Date(timeIntervalSince1970: 5)
        state.status = .exited
        #expect(try Self.decode(encoder.encode(state)) == state)
    }

    @Test("strings keep every character through the hand-written escaping, control characters included")
    func escapingRoundTrips() throws {
        var characters = (0..<0x80).map { String(UnicodeScalar(UInt8($0))) }
        characters += ["é", "☃", "🐳", "\u{2028}", "\u{FEFF}", "\"\\", "\\u0041"]
        for text in characters + [characters.joined()] {
            var writer = JSONObjectWriter()
            writer.field(text, text)
            // Read as state.json is read (JSONDecoder), and as Foundation's encoder writes it.
            let object = try JSONDecoder().decode([String: String].self, from: Data(writer.finished))
            #expect(object == [text: text], "\(text.unicodeScalars.map(\.value))")
            #expect(object == (try JSONDecoder().decode([String: String].self, from: JSONEncoder().encode([text: text]))))
        }
    }

    @Test("overwriting a file leaves exactly the new content, shorter or longer, in the same inode")
    func overwriteLeavesExactlyTheNewContent() throws {
        let path = NSTemporaryDirectory() + "shoal-overwrite-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(path) }
        var inode: ino_t?
        for text in ["a longer first content\n", "short", "", "longer again than short"] {
            try Syscall.overwriteFile(path, Array(text.utf8))
            #expect(try String(contentsOfFile: path, encoding: .utf8) == text)
            var info = stat()
            #expect(stat(path, &info) == 0 && (info.st_mode & 0o777) == 0o600)
            #expect(inode == nil || inode == info.st_ino)
            inode = info.st_ino
        }
    }

    @Test("an exit record's placeholder (a run that has not ended) is no record")
    func placeholderIsNoRecord() throws {
        #expect(ExitRecord.parse(String(decoding: ExitRecord.placeholder, as: UTF8.self)) == nil)
        let directory = NSTemporaryDirectory() + "shoal-exit-record-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { _ = Syscall.removeTree(directory) }
        let stale = "signaled 9 1795972130.123456789\n"
        #expect(FileManager.default.createFile(atPath: ExitRecord.path(directory: directory), contents: Data(stale.utf8)))
        #expect(ExitRecord.read(directory: directory)?.status == .signaled(9))
        let descriptor = try ExitRecord.openForRun(directory: directory)
        #expect(ExitRecord.read(directory: directory) == nil, "the stale record still counts")
        // As shoal-monitor writes it: from offset 0, over the placeholder.
        let record = Array("exited 3 1795972131.000000001\n".utf8)
        #expect(pwrite(descriptor, record, record.count, 0) == record.count)
        Syscall.close(descriptor)
        #expect(ExitRecord.read(directory: directory)?.status == .exited(3))
    }
}
