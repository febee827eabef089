import Daemon
import Foundation
import HTTP
import Images
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// `shoal container cp` (as `docker cp`), for running and stopped containers:
///
///     shoal container cp [-a] [-L] CONTAINER:SRC DEST|-
///     shoal container cp [-a] [-L] SRC|- CONTAINER:DEST
///
/// Docker's naming rules: a file or directory copied onto an existing
/// directory lands inside it under its own name (`SRC/.` copies a
/// directory's contents instead); onto a missing path it takes that name
/// (its parent must exist; a trailing `/` on a missing destination is an
/// error for a file); a file replaces an existing file; a directory never
/// replaces a file. `-` is a tar stream on stdin or stdout. Paths inside the
/// container resolve inside its root, so its symbolic links never reach the
/// host's files. Files copied in are owned by root unless `-a` keeps the
/// host's owners; files copied out belong to whoever runs the command.
enum ContainerCopyCommand {
    static let usage = """
        usage: shoal container cp [-a] [-L] CONTAINER:SRC_PATH DEST_PATH|-
               shoal container cp [-a] [-L] SRC_PATH|- CONTAINER:DEST_PATH
        """

    static let flags: [ContainerFlags.Definition] = [.flag("--archive", "-a"), .flag("--follow-link", "-L")]

    /// One side of the copy: a container's path, or a local one.
    struct Location {
        var container: String?
        var path: String
    }

    static func run(_ arguments: [String]) async throws -> Int32 {
        let flags = try ContainerFlags(arguments, definitions: flags)
        guard flags.positional.count == 2 else { throw ClusterCommands.Failure(description: usage) }
        let source = location(flags.positional[0])
        let destination = location(flags.positional[1])
        guard !source.path.isEmpty, !destination.path.isEmpty else {
            throw ClusterCommands.Failure(description: "give a path on both sides (CONTAINER:PATH, a local path or -)\n" + usage)
        }
        let client = try ContainerCommands.client(flags)
        defer { Task { await client.shutdown() } }
        switch (source.container, destination.container) {
        case (let container?, nil):
            return try await copyOut(client, container: container, source: source.path, destination: destination.path,
                                     followLink: flags.has("--follow-link"))
        case (nil, let container?):
            return try await copyIn(client, source: source.path, container: container, destination: destination.path,
                                    keepOwners: flags.has("--archive"), followLink: flags.has("--follow-link"))
        case (.some, .some):
            throw ClusterCommands.Failure(description: "copying between containers is not supported: copy out to a local path, then in")
        case (nil, nil):
            throw ClusterCommands.Failure(description: "one side must be CONTAINER:PATH (a local path starts with / or . when it holds a colon)\n" + usage)
        }
    }

    /// `NAME:PATH` names a container's path; a path starting with `/` or
    /// `.`, or without a colon, is local (as Docker splits them).
    static func location(_ argument: String) -> Location {
        if argument.hasPrefix("/") || argument.hasPrefix(".") { return Location(container: nil, path: argument) }
        guard let colon = argument.firstIndex(of: ":") else { return Location(container: nil, path: argument) }
        return Location(container: String(argument[..<colon]), path: String(argument[argument.index(after: colon)...]))
    }

    /// The last component of `path` (`/` for the root), ignoring trailing slashes.
    static func baseName(_ path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? "/"
    }

    /// The directory holding `path` (`.` or `/` when it has none).
    static func parent(_ path: String) -> String {
        var components = path.split(separator: "/", omittingEmptySubsequences: true)
        guard !components.isEmpty else { return "/" }
        components.removeLast()
        if components.isEmpty { return path.hasPrefix("/") ? "/" : "." }
        return (path.hasPrefix("/") ? "/" : "") + components.joined(separator: "/")
    }

    /// `SRC/.` (or the root itself): a directory's contents, not the directory.
    static func wantsContents(_ path: String) -> Bool {
        path.hasSuffix("/.") || path == "." || path.split(separator: "/").isEmpty
    }

    /// Where an archive of the source is extracted and what its top entry
    /// is named, by Docker's rules, given what the destination is.
    static func plan(source: String, sourceIsDirectory: Bool, destination: String, destinationIsDirectory: Bool?) throws -> (directory: String, name: String) {
        switch destinationIsDirectory {
        case true?:
            return (destination, sourceIsDirectory && wantsContents(source) ? "." : baseName(source))
        case false?:
            guard !sourceIsDirectory else {
                throw ClusterCommands.Failure(description: "cannot copy a directory onto the file \(destination)")
            }
            guard !destination.hasSuffix("/") else {
                throw ClusterCommands.Failure(description: "\(destination) is not a directory")
            }
            return (parent(destination), baseName(destination))
        case nil:
            if destination.hasSuffix("/") && !sourceIsDirectory {
                throw ClusterCommands.Failure(description: "the destination directory \(destination) does not exist: create it first, or drop the trailing / to name the copy")
            }
            return (parent(destination), baseName(destination))
        }
    }

    // MARK: Out of a container

    static func copyOut(_ client: ControlClient, container: String, source: String, destination: String, followLink: Bool) async throws -> Int32 {
        let follow = followLink ? "&follow=true" : ""
        let query = "?path=" + PercentEncoding.encode(source) + follow
        if destination == "-" {
            guard isatty(STDOUT_FILENO) == 0 else {
                throw ClusterCommands.Failure(description: "refusing to write a tar archive to a terminal\nhint: redirect the output (`> FILE.tar`) or give a destination path")
            }
            try await client.download(ContainerCommands.path(container, "/archive" + query), to: STDOUT_FILENO)
            return 0
        }
        let sourceStat: ContainerPathStat = try await client.call(.get, ContainerCommands.path(container, "/archive/stat" + query))
        var local = Glibc.stat()
        let exists = stat(destination, &local) == 0
        let (directory, name) = try plan(source: source, sourceIsDirectory: sourceStat.isDirectory, destination: destination,
                                         destinationIsDirectory: exists ? (local.st_mode & S_IFMT) == S_IFDIR : nil)
        var parentInfo = Glibc.stat()
        guard stat(directory, &parentInfo) == 0, (parentInfo.st_mode & S_IFMT) == S_IFDIR else {
            throw ClusterCommands.Failure(description: "no such directory: \(directory) (the copy's parent must exist)")
        }
        let spool = try spoolFile()
        defer { close(spool) }
        try await client.download(ContainerCommands.path(container, "/archive" + query + "&name=" + PercentEncoding.encode(name)), to: spool)
        lseek(spool, 0, SEEK_SET)
        // Plain mode: the container's `.wh.` names and xattrs are only names and data here, and set-id bits are dropped.
        let extractor = try LayerExtractor(rootPath: directory, options: .init(mode: .plain, preserveOwnership: false))
        _ = try extractor.extract(from: FileByteSource(descriptor: spool, path: "the copy"), compression: LayerCompression.none)
        return 0
    }

    // MARK: Into a container

    static func copyIn(_ client: ControlClient, source: String, container: String, destination: String, keepOwners: Bool,
                       followLink: Bool) async throws -> Int32 {
        let spool = try spoolFile()
        defer { close(spool) }
        let directory: String
        if source == "-" {
            // A tar on stdin goes as it is into the destination directory.
            directory = destination
            try copyAll(from: STDIN_FILENO, to: spool)
        } else {
            var info = Glibc.stat()
            let found = followLink ? stat(source, &info) : lstat(source, &info)
            guard found == 0 else {
                throw ClusterCommands.Failure(description: "cannot read \(source): \(String(cString: strerror(errno)))")
            }
            let sourceIsDirectory = (info.st_mode & S_IFMT) == S_IFDIR
            // A link at the destination stands for what it points to (inside the container), as Docker has it.
            var target = destination
            var stat = try await containerStat(client, container: container, path: target, followLink: false)
            if let link = stat?.linkTarget, stat?.isSymbolicLink == true {
                target = link.hasPrefix("/") ? link : parent(destination) + "/" + link
                stat = try await containerStat(client, container: container, path: target, followLink: true)
            }
            let name: String
            (directory, name) = try plan(source: source, sourceIsDirectory: sourceIsDirectory, destination: target,
                                         destinationIsDirectory: stat?.isDirectory)
            let writer = RootfsTarWriter(descriptor: spool)
            try archiveLocal(source, info: info, name: name, keepOwners: keepOwners, writer: writer)
            try writer.finish()
        }
        let length = Int(lseek(spool, 0, SEEK_END))
        lseek(spool, 0, SEEK_SET)
        try await client.upload(.put, ContainerCommands.path(container, "/archive?path=" + PercentEncoding.encode(directory)),
                                from: spool, length: length)
        return 0
    }

    /// What `path` is inside the container, or nil when it does not exist.
    static func containerStat(_ client: ControlClient, container: String, path: String, followLink: Bool) async throws -> ContainerPathStat? {
        do {
            return try await client.call(.get, ContainerCommands.path(container, "/archive/stat?path=" + PercentEncoding.encode(path)
                                                                      + (followLink ? "&follow=true" : "")))
        } catch let error as APIError where error.code == "no_such_path" {
            return nil
        }
    }

    /// Adds the local `path` (described by `info`) as `name` ("." adds a
    /// directory's entries only), and everything below a directory.
    static func archiveLocal(_ path: String, info: stat, name: String, keepOwners: Bool, writer: RootfsTarWriter) throws {
        var entry = info
        if !keepOwners {
            entry.st_uid = 0
            entry.st_gid = 0
        }
        if name != "." { try writer.add(name: name, source: path, info: entry) }
        guard (info.st_mode & S_IFMT) == S_IFDIR else { return }
        let children: [String]
        do {
            children = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw ClusterCommands.Failure(description: "cannot list \(path): \(error.localizedDescription)")
        }
        for child in children {
            var childInfo = Glibc.stat()
            guard lstat(path + "/" + child, &childInfo) == 0 else { continue }  // gone meanwhile
            try archiveLocal(path + "/" + child, info: childInfo, name: name == "." ? child : name + "/" + child,
                             keepOwners: keepOwners, writer: writer)
        }
    }

    /// An unlinked temporary file (gone with its descriptor).
    static func spoolFile() throws -> Int32 {
        var template = Array((NSTemporaryDirectory() + "/shoal-cp-XXXXXX").utf8CString)
        let descriptor = mkstemp(&template)
        guard descriptor >= 0 else {
            throw ClusterCommands.Failure(description: "cannot create a temporary file in \(NSTemporaryDirectory()): \(String(cString: strerror(errno)))")
        }
        unlink(template)
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        return descriptor
    }

    static func copyAll(from input: Int32, to output: Int32) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw ClusterCommands.Failure(description: "cannot read stdin: \(String(cString: strerror(errno)))") }
            if count == 0 { return }
            var offset = 0
            while offset < count {
                let written = buffer.withUnsafeBytes { write(output, $0.baseAddress! + offset, count - offset) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { throw ClusterCommands.Failure(description: "cannot spool stdin: \(String(cString: strerror(errno)))") }
                offset += written
            }
        }
    }
}
