import Posix
import Foundation
import CImagesLinux
#if canImport(Glibc)
import Glibc
#endif

/// Unpacks image layers (tar, optionally gzip) into a directory without ever
/// writing outside it.
///
/// Every path is resolved inside the root: names are cleaned lexically
/// (absolute names become relative, `..` that would climb above the root is
/// refused), parent directories are opened with `openat2(RESOLVE_IN_ROOT)`
/// so that symbolic links in them (`a -> /`, `up -> ../..`, a directory
/// replaced by a link mid-archive) resolve as they would inside the
/// container, never on the host; the last component is created with
/// `O_EXCL`/`O_NOFOLLOW`/`*at` calls so an existing link is replaced, never
/// followed. Hard link targets are resolved the same way. Kernels without
/// openat2 (before 5.6) get a per-component `O_NOFOLLOW` walk that refuses
/// symlinked parents instead.
///
/// Whiteouts: in ``Mode/overlay`` `.wh.NAME` becomes a character device 0/0
/// and `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its directory (the
/// layer is an overlayfs lower directory); in ``Mode/flatten`` they delete
/// NAME, or everything in the directory not written by this layer (layers
/// applied one over another into one directory).
///
/// Device nodes are skipped with a note unless ``Options/allowDeviceNodes``
/// is set and the process runs as root. Modes, timestamps and xattrs are
/// kept; ownership when ``Options/preserveOwnership`` (default: running as root).
///
/// Not thread-safe; one extraction at a time per extractor.
public final class LayerExtractor {
    public enum Mode: Sendable {
        /// The directory is one overlayfs layer: whiteouts become overlay whiteouts.
        case overlay
        /// Layers are applied one over another into this directory: whiteouts delete.
        case flatten
        /// An archive of files, not a layer (`cp`): `.wh.` names are
        /// ordinary names, nothing is deleted, only `user.*` extended
        /// attributes are set, and without ``Options/preserveOwnership``
        /// set-user/group-ID bits are dropped (the owner is not the archive's).
        case plain
    }

    /// How parent directories are resolved.
    public enum Resolver: Sendable {
        /// openat2 when the kernel has it, else the component walk.
        case automatic
        /// `openat2(RESOLVE_IN_ROOT)`: symbolic links are followed inside the root.
        case openat2
        /// Per-component `openat(O_NOFOLLOW)`: symbolic links in parents are refused.
        case componentWalk
    }

    public struct Options: Sendable {
        public var mode: Mode
        public var allowDeviceNodes: Bool
        public var preserveOwnership: Bool
        public var resolver: Resolver

        public init(mode: Mode = .overlay, allowDeviceNodes: Bool = false,
                    preserveOwnership: Bool = geteuid() == 0, resolver: Resolver = .automatic) {
            self.mode = mode
            self.allowDeviceNodes = allowDeviceNodes
            self.preserveOwnership = preserveOwnership
            self.resolver = resolver
        }
    }

    /// What an extraction did.
    public struct Report: Sendable {
        /// Entries read from the archive (extension headers not counted).
        public var entries = 0
        /// File data bytes written.
        public var bytesWritten: Int64 = 0
        /// SHA-256 of the uncompressed tar stream.
        public var diffID: Digest
        /// Entries skipped or changed, one human line each (device nodes, unknown types).
        public var notes: [String] = []
        /// CPU seconds spent reading, decompressing and hashing on the
        /// read-ahead thread (the calling thread's own time is not included).
        public var readAheadCPUSeconds: Double = 0
    }

    /// Bytes of file data written per `write` call at most (the tar buffer's chunks).
    public let rootPath: String
    public let options: Options
    private let rootDescriptor: Int32
    private let useOpenat2: Bool
    /// The process umask (from /proc/self/status; reading it with umask(2)
    /// would change it for other threads), or nil if unknown.
    private let umask: UInt32?
    private let effectiveUID = Int(geteuid())
    private let effectiveGID = Int(getegid())

    // Per extraction.
    private var cachedParent: (components: ArraySlice<[UInt8]>, descriptor: Int32)?
    /// Set when a directory was removed: the cached parent may be (under) it.
    /// Checked at the next lookup, so the current entry's descriptor stays open.
    private var cachedParentStale = false
    /// Whether the cached parent has the set-group-ID bit (new files then take its group).
    private var cachedParentSetsGroup = true
    private var deferredDirectories: [(components: [[UInt8]], mode: UInt32, seconds: Int64, nanoseconds: Int)] = []
    private var writtenPaths: Set<[UInt8]> = []
    private var notes: [String] = []
    private var currentEntry = ""

    /// Opens the target directory, which must exist.
    public init(rootPath: String, options: Options = Options()) throws(LayerExtractionError) {
        self.rootPath = rootPath
        self.options = options
        do {
            rootDescriptor = try Syscall.run("open", path: rootPath) {
                open(rootPath, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            }
        } catch {
            throw .system(error, entry: nil)
        }
        umask = Self.readUmask()
        switch options.resolver {
        case .openat2: useOpenat2 = true
        case .componentWalk: useOpenat2 = false
        case .automatic:
            let probe = shoal_openat2(rootDescriptor, ".", UInt64(O_RDONLY | O_DIRECTORY | O_CLOEXEC), 0, shoal_RESOLVE_IN_ROOT())
            if probe >= 0 { Syscall.close(probe) }
            useOpenat2 = probe >= 0 || (errno != ENOSYS && errno != EPERM)
        }
    }

    deinit {
        dropCachedParent()
        Syscall.close(rootDescriptor)
    }

    /// Whether parents are resolved with openat2 (else the refusing component walk).
    public var resolvesInRoot: Bool { useOpenat2 }

    /// Extracts the layer file at `path`, detecting gzip from its first bytes.
    public func extract(layerAt path: String, expectedDiffID: Digest? = nil) throws(LayerExtractionError) -> Report {
        let descriptor: Int32
        do {
            descriptor = try Syscall.run("open", path: path) { open(path, O_RDONLY | O_CLOEXEC) }
        } catch {
            throw .system(error, entry: nil)
        }
        defer { Syscall.close(descriptor) }
        let compression = try LayerCompression.detect(descriptor: descriptor, path: path)
        return try extract(from: FileByteSource(descriptor: descriptor, path: path), compression: compression,
                           expectedDiffID: expectedDiffID)
    }

    /// Extracts a layer stream. With `expectedDiffID`, the uncompressed stream
    /// must hash to it; a mismatch is reported after extraction (the tar is
    /// read once), and the caller must then discard the directory.
    public func extract(from source: ByteSource, compression: LayerCompression,
                        expectedDiffID: Digest? = nil) throws(LayerExtractionError) -> Report {
        deferredDirectories = []
        writtenPaths = []
        notes = []
        defer { dropCachedParent() }
        let stream: ByteSource = compression == .gzip ? try GzipByteSource(source) : source
        // Reading, inflating and hashing run on a second thread while this one writes files.
        let ahead = ReadAheadByteSource(source: stream)
        var closed = false
        defer { if !closed { ahead.close() } }
        let reader = TarReader(source: ahead, hashing: false)
        var report = Report(diffID: Digest(sha256: [UInt8](repeating: 0, count: 32)))
        while let entry = try reader.next() {
            report.entries += 1
            currentEntry = entry.displayPath
            report.bytesWritten += try apply(entry, reader: reader)
        }
        try finishDirectories()
        try reader.finish()
        report.diffID = ahead.finish()
        if let expectedDiffID, expectedDiffID != report.diffID {
            throw .diffIDMismatch(expected: expectedDiffID, actual: report.diffID)
        }
        report.notes = notes
        ahead.close()
        closed = true
        report.readAheadCPUSeconds = ahead.producerCPUSeconds
        return report
    }

    // MARK: Entries

    /// Applies one entry; returns the data bytes written.
    private func apply(_ original: TarEntry, reader: TarReader) throws(LayerExtractionError) -> Int64 {
        var entry = original
        if options.mode == .plain {
            if !options.preserveOwnership { entry.mode &= ~UInt32(0o6000) }
            entry.extendedAttributes = entry.extendedAttributes.filter { $0.name.hasPrefix("user.") && !$0.name.hasPrefix("user.overlay.") }
        }
        let components = try Self.clean(entry.path, entry: entry.displayPath)
        guard let name = components.last else {
            // The root itself ("./"): keep its mode and time, as tar does.
            if entry.kind == .directory {
                deferredDirectories.append(([], entry.mode, entry.modificationSeconds, entry.modificationNanoseconds))
            }
            return 0
        }
        let parentComponents = components.dropLast()
        if options.mode != .plain && name.starts(with: Self.whiteoutPrefix) {
            try applyWhiteout(name: name, parent: parentComponents, entry: entry)
            return 0
        }
        if options.mode == .flatten { writtenPaths.insert(Self.join(components[...])) }
        let parent = try parentDirectory(parentComponents, entry: entry.displayPath)
        let cName = Self.cString(name)
        switch entry.kind {
        case .regular:
            return try writeFile(entry, parent: parent, name: cName, reader: reader)
        case .directory:
            try makeDirectory(entry, parent: parent, name: cName, components: components)
        case .symbolicLink:
            guard !entry.linkName.isEmpty, !entry.linkName.contains(0) else {
                throw .unsafePath(entry: entry.displayPath, reason: "symbolic link with an empty or NUL-bearing target")
            }
            let target = Self.cString(entry.linkName)
            try create(parent: parent, name: cName, call: "symlinkat") { symlinkat(target, parent, cName) }
            try setOwnerAndTimes(entry, parent: parent, name: cName)
        case .hardLink:
            try makeHardLink(entry, parent: parent, name: cName)
        case .fifo:
            try create(parent: parent, name: cName, call: "mknodat") { mknodat(parent, cName, Glibc.S_IFIFO | 0o600, 0) }
            try setOwnerModeAndTimes(entry, parent: parent, name: cName)
        case .characterDevice, .blockDevice:
            guard options.allowDeviceNodes && geteuid() == 0 else {
                notes.append("skipped device node \(entry.displayPath) (\(entry.deviceMajor):\(entry.deviceMinor)): "
                    + "device nodes are only created when running as root with allowDeviceNodes")
                return 0
            }
            let type = entry.kind == .characterDevice ? Glibc.S_IFCHR : Glibc.S_IFBLK
            let device = shoal_makedev(entry.deviceMajor, entry.deviceMinor)
            try create(parent: parent, name: cName, call: "mknodat") { mknodat(parent, cName, type | 0o600, device) }
            try setOwnerModeAndTimes(entry, parent: parent, name: cName)
        case let .unsupported(flag):
            if flag == UInt8(ascii: "S") {
                throw .unsupportedEntry(entry: entry.displayPath, reason: "GNU sparse files are not supported; rebuild the layer without --sparse")
            }
            notes.append("skipped \(entry.displayPath): unknown tar type '\(Character(Unicode.Scalar(flag)))'")
        }
        return 0
    }

    private func writeFile(_ entry: TarEntry, parent: Int32, name: [CChar], reader: TarReader) throws(LayerExtractionError) -> Int64 {
        let flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC
        // Created with its final permission bits when the umask leaves them
        // alone and there are no special bits, saving an fchmod per file.
        let permissions = entry.mode & 0o777
        let needsChmod = entry.mode & 0o7000 != 0 || umask.map { permissions & $0 != 0 } ?? true
        // Created with our ids unless the directory is set-group-ID: chown only when that is not what the entry says.
        let needsChown = options.preserveOwnership
            && (entry.uid != effectiveUID || entry.gid != effectiveGID || cachedParentSetsGroup)
        var descriptor: Int32 = -1
        try create(parent: parent, name: name, call: "openat") {
            descriptor = openat(parent, name, flags, needsChmod ? 0o600 : mode_t(permissions))
            return descriptor
        }
        defer { Syscall.close(descriptor) }
        var written: Int64 = 0
        do {
            try reader.readData { chunk throws(LayerExtractionError) in
                try writeChunk(descriptor, chunk)
                written += Int64(chunk.count)
            }
            if needsChown {
                try check("fchown") { fchown(descriptor, uid_t(entry.uid), gid_t(entry.gid)) }
            }
            if needsChmod || needsChown {
                // After chown, which clears set-user-ID bits.
                try check("fchmod") { fchmod(descriptor, mode_t(entry.mode)) }
            }
            try setExtendedAttributes(entry, descriptor: descriptor)
            var times = Self.times(entry)
            try check("futimens") { futimens(descriptor, &times) }
        } catch {
            // Never leave a half-written file that looks whole.
            _ = unlinkat(parent, name, 0)
            throw error
        }
        return written
    }

    private func writeChunk(_ descriptor: Int32, _ chunk: UnsafeRawBufferPointer) throws(LayerExtractionError) {
        do {
            try Syscall.writeAll(descriptor, chunk, path: nil)
        } catch {
            throw .system(error, entry: currentEntry)
        }
    }

    private func makeDirectory(_ entry: TarEntry, parent: Int32, name: [CChar], components: [[UInt8]]) throws(LayerExtractionError) {
        let outcome = try attempt("mkdirat", tolerating: [EEXIST]) { mkdirat(parent, name, 0o700) }
        if outcome == EEXIST {
            var info = stat()
            try check("fstatat") { fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) }
            if (info.st_mode & S_IFMT) != S_IFDIR {
                try remove(parent: parent, name: name)
                try check("mkdirat") { mkdirat(parent, name, 0o700) }
            }
        }
        let needsDescriptor = options.preserveOwnership || !entry.extendedAttributes.isEmpty
        if needsDescriptor {
            let directory = try check("openat") { openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            defer { Syscall.close(directory) }
            if options.preserveOwnership {
                try check("fchown") { fchown(directory, uid_t(entry.uid), gid_t(entry.gid)) }
            }
            try setExtendedAttributes(entry, descriptor: directory)
        }
        // Mode and times last: children change the time, and a read-only mode would block them.
        deferredDirectories.append((components, entry.mode, entry.modificationSeconds, entry.modificationNanoseconds))
    }

    private func makeHardLink(_ entry: TarEntry, parent: Int32, name: [CChar]) throws(LayerExtractionError) {
        let targetComponents = try Self.clean(entry.linkName, entry: entry.displayPath)
        guard let targetName = targetComponents.last else {
            throw .unsafePath(entry: entry.displayPath, reason: "hard link to the root directory")
        }
        // Resolved inside the root like any path, and never created.
        let targetParent: Int32
        do {
            targetParent = try resolve(targetComponents.dropLast(), create: false)
        } catch {
            if case .system(let system, _) = error, system.errno == ENOENT || system.errno == ENOTDIR {
                throw .hardLinkTargetMissing(entry: entry.displayPath, target: entry.displayLinkName)
            }
            throw error
        }
        defer { Syscall.close(targetParent) }
        let cTarget = Self.cString(targetName)
        var targetInfo = stat()
        let found = try attempt("fstatat", tolerating: [ENOENT]) { fstatat(targetParent, cTarget, &targetInfo, AT_SYMLINK_NOFOLLOW) }
        guard found == 0 else {
            throw .hardLinkTargetMissing(entry: entry.displayPath, target: entry.displayLinkName)
        }
        guard (targetInfo.st_mode & S_IFMT) != S_IFDIR else {
            throw .unsupportedEntry(entry: entry.displayPath, reason: "hard link to a directory")
        }
        var existing = stat()
        if fstatat(parent, name, &existing, AT_SYMLINK_NOFOLLOW) == 0,
           existing.st_ino == targetInfo.st_ino, existing.st_dev == targetInfo.st_dev {
            return  // already this file
        }
        // Flags 0: a link to a symbolic link links the link itself, never what it points at.
        try create(parent: parent, name: name, call: "linkat") { linkat(targetParent, cTarget, parent, name, 0) }
    }

    private func applyWhiteout(name: [UInt8], parent: ArraySlice<[UInt8]>, entry: TarEntry) throws(LayerExtractionError) {
        let parentDescriptor = try parentDirectory(parent, entry: entry.displayPath)
        if name == Self.opaqueMarker {
            switch options.mode {
            case .overlay:
                let value: [UInt8] = [UInt8(ascii: "y")]
                try check("fsetxattr(trusted.overlay.opaque)") {
                    fsetxattr(parentDescriptor, "trusted.overlay.opaque", value, 1, 0)
                }
            case .flatten:
                let prefix = Self.join(parent)
                for child in try Self.list(parentDescriptor) {
                    let childPath = prefix.isEmpty ? child : prefix + [UInt8(ascii: "/")] + child
                    if !writtenPaths.contains(childPath) {
                        try remove(parent: parentDescriptor, name: Self.cString(child))
                    }
                }
            case .plain:
                preconditionFailure("whiteouts are ordinary names in plain mode")
            }
            return
        }
        let target = Array(name.dropFirst(Self.whiteoutPrefix.count))
        if target.starts(with: Self.whiteoutPrefix) {
            // .wh..wh.* other than the opaque marker: aufs bookkeeping, no meaning here.
            notes.append("skipped aufs metadata entry \(entry.displayPath)")
            return
        }
        guard !target.isEmpty, target != [UInt8(ascii: ".")], target != [UInt8(ascii: "."), UInt8(ascii: ".")] else {
            throw .unsafePath(entry: entry.displayPath, reason: "whiteout of an invalid name")
        }
        let cTarget = Self.cString(target)
        switch options.mode {
        case .overlay:
            try create(parent: parentDescriptor, name: cTarget, call: "mknodat(whiteout)") {
                mknodat(parentDescriptor, cTarget, Glibc.S_IFCHR, shoal_makedev(0, 0))
            }
        case .flatten:
            var info = stat()
            if fstatat(parentDescriptor, cTarget, &info, AT_SYMLINK_NOFOLLOW) == 0 {
                try remove(parent: parentDescriptor, name: cTarget)
            }
        case .plain:
            preconditionFailure("whiteouts are ordinary names in plain mode")
        }
    }

    // MARK: Metadata

    private func setOwnerAndTimes(_ entry: TarEntry, parent: Int32, name: [CChar]) throws(LayerExtractionError) {
        if options.preserveOwnership {
            try check("fchownat") { fchownat(parent, name, uid_t(entry.uid), gid_t(entry.gid), AT_SYMLINK_NOFOLLOW) }
        }
        var times = Self.times(entry)
        try check("utimensat") { utimensat(parent, name, &times, AT_SYMLINK_NOFOLLOW) }
    }

    private func setOwnerModeAndTimes(_ entry: TarEntry, parent: Int32, name: [CChar]) throws(LayerExtractionError) {
        if options.preserveOwnership {
            try check("fchownat") { fchownat(parent, name, uid_t(entry.uid), gid_t(entry.gid), AT_SYMLINK_NOFOLLOW) }
        }
        // fchmodat does not follow here: the name was just created by mknodat, not a link.
        try check("fchmodat") { fchmodat(parent, name, mode_t(entry.mode), 0) }
        var times = Self.times(entry)
        try check("utimensat") { utimensat(parent, name, &times, AT_SYMLINK_NOFOLLOW) }
    }

    private func setExtendedAttributes(_ entry: TarEntry, descriptor: Int32) throws(LayerExtractionError) {
        for attribute in entry.extendedAttributes {
            // overlayfs keeps its own state in trusted.overlay.* (opaque, redirect,
            // metacopy); a layer that sets them could make overlayfs look
            // elsewhere than the layer says. Only whiteout markers set them.
            if attribute.name.hasPrefix("trusted.overlay.") || attribute.name.hasPrefix("user.overlay.") {
                notes.append("ignored xattr \(attribute.name) on \(entry.displayPath): overlayfs attributes come only from whiteout markers")
                continue
            }
            let status = attribute.value.withUnsafeBytes { value in
                fsetxattr(descriptor, attribute.name, value.baseAddress, value.count, 0)
            }
            if status != 0 {
                let code = errno
                if code == EPERM || code == ENOTSUP || code == EOPNOTSUPP {
                    notes.append("could not set xattr \(attribute.name) on \(entry.displayPath): \(String(cString: strerror(code)))")
                } else {
                    throw .system(SystemError(call: "fsetxattr(\(attribute.name))", errno: code, path: rootPath), entry: currentEntry)
                }
            }
        }
    }

    /// Applies directory modes and times, deepest last-seen first, once every child is written.
    private func finishDirectories() throws(LayerExtractionError) {
        dropCachedParent()
        for directory in deferredDirectories.reversed() {
            guard let descriptor = try? resolve(directory.components[...], create: false) else { continue }
            defer { Syscall.close(descriptor) }
            currentEntry = String(decoding: Self.join(directory.components[...]), as: UTF8.self)
            try check("fchmod") { fchmod(descriptor, mode_t(directory.mode)) }
            var times = [timespec(tv_sec: Int(directory.seconds), tv_nsec: directory.nanoseconds),
                         timespec(tv_sec: Int(directory.seconds), tv_nsec: directory.nanoseconds)]
            try check("futimens") { futimens(descriptor, &times) }
        }
        deferredDirectories = []
    }

    static func times(_ entry: TarEntry) -> [timespec] {
        let time = timespec(tv_sec: Int(entry.modificationSeconds), tv_nsec: entry.modificationNanoseconds)
        return [time, time]
    }

    // MARK: Creating and removing

    /// Runs `make`; if the name exists, removes what is there (a whole tree
    /// for a directory) and runs it again.
    private func create(parent: Int32, name: [CChar], call: String, _ make: () -> Int32) throws(LayerExtractionError) {
        if try attempt(call, tolerating: [EEXIST], make) == EEXIST {
            try remove(parent: parent, name: name)
            try check(call, make)
        }
    }

    /// Removes `name` in `parent` without following links; a directory with everything under it.
    private func remove(parent: Int32, name: [CChar]) throws(LayerExtractionError) {
        var info = stat()
        if try attempt("fstatat", tolerating: [ENOENT], { fstatat(parent, name, &info, AT_SYMLINK_NOFOLLOW) }) == ENOENT {
            return
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            // A cached parent may be this directory or under it.
            cachedParentStale = true
            let directory = try check("openat") { openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
            defer { Syscall.close(directory) }
            // A read-only directory from a lower layer cannot be emptied otherwise.
            _ = fchmod(directory, 0o700)
            for child in try Self.list(directory) {
                try remove(parent: directory, name: Self.cString(child))
            }
            try check("unlinkat") { unlinkat(parent, name, AT_REMOVEDIR) }
        } else {
            try check("unlinkat") { unlinkat(parent, name, 0) }
        }
    }

    /// The names in a directory, without `.` and `..`.
    static func list(_ directory: Int32) throws(LayerExtractionError) -> [[UInt8]] {
        let copy: Int32
        do {
            copy = try Syscall.run("openat") { openat(directory, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        } catch {
            throw .system(error, entry: nil)
        }
        guard let stream = fdopendir(copy) else {
            let code = errno
            Syscall.close(copy)
            throw .system(SystemError(call: "fdopendir", errno: code), entry: nil)
        }
        defer { closedir(stream) }
        var names: [[UInt8]] = []
        while true {
            errno = 0
            guard let item = readdir(stream) else {
                if errno != 0 { throw .system(SystemError(call: "readdir", errno: errno), entry: nil) }
                break
            }
            let name = withUnsafeBytes(of: &item.pointee.d_name) { raw in
                Array(raw.prefix(while: { $0 != 0 }))
            }
            if name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")] { continue }
            names.append(name)
        }
        return names
    }

    // MARK: Resolving paths inside the root

    /// The directory that holds an entry, created (0755) if missing. The
    /// descriptor is borrowed from a one-entry cache: do not close it.
    private func parentDirectory(_ components: ArraySlice<[UInt8]>, entry: String) throws(LayerExtractionError) -> Int32 {
        if !cachedParentStale, let cached = cachedParent, cached.components == components { return cached.descriptor }
        dropCachedParent()
        let descriptor = try resolve(components, create: true)
        cachedParent = (components, descriptor)
        var info = stat()
        cachedParentSetsGroup = fstat(descriptor, &info) != 0 || (info.st_mode & S_ISGID) != 0
        return descriptor
    }

    private func dropCachedParent() {
        if let cached = cachedParent { Syscall.close(cached.descriptor) }
        cachedParent = nil
        cachedParentStale = false
    }

    /// Opens the directory at `components` inside the root (the caller closes it).
    private func resolve(_ components: ArraySlice<[UInt8]>, create: Bool) throws(LayerExtractionError) -> Int32 {
        if useOpenat2 {
            let path = Self.join(components)
            let (descriptor, code) = openInRoot(path)
            if descriptor >= 0 { return descriptor }
            guard code == ENOENT && create else {
                throw openError(code, path: path)
            }
            return try createDirectories(components)
        }
        // Component walk: O_NOFOLLOW at every step, so a symbolic link is refused.
        var current = try check("openat") { openat(rootDescriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        for component in components {
            let name = Self.cString(component)
            let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
            var next = openat(current, name, flags)
            if next < 0 && errno == ENOENT && create {
                _ = try attempt("mkdirat", tolerating: [EEXIST]) { mkdirat(current, name, 0o755) }
                next = openat(current, name, flags)
            }
            if next < 0 {
                let code = errno
                var info = stat()
                let isLink = fstatat(current, name, &info, AT_SYMLINK_NOFOLLOW) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
                Syscall.close(current)
                if isLink { throw .symlinkInPath(entry: currentEntry) }
                throw openError(code, path: Self.join(components))
            }
            Syscall.close(current)
            current = next
        }
        return current
    }

    /// The maximum number of symbolic links followed while creating one path (Linux's MAXSYMLINKS).
    static let maximumSymlinkHops = 40

    /// `mkdir -p` inside the root. Each step opens one component with
    /// `O_NOFOLLOW` relative to a directory already inside the root; a
    /// symbolic link is expanded here, by reading it and substituting its
    /// target (absolute targets restart at the root, `..` stops at the root),
    /// which is how RESOLVE_IN_ROOT and the container see it. So a link to a
    /// missing directory (`b -> /opt/app` before /opt exists) creates
    /// `root/opt/app`, never the host's.
    private func createDirectories(_ components: ArraySlice<[UInt8]>) throws(LayerExtractionError) -> Int32 {
        var pending = Array(components)
        var resolved: [[UInt8]] = []
        var hops = 0
        var current = try check("openat") { openat(rootDescriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
        while !pending.isEmpty {
            let component = pending.removeFirst()
            let name = Self.cString(component)
            var next = openat(current, name, flags)
            if next < 0 && errno == ENOENT {
                let made = mkdirat(current, name, 0o755)
                if made == 0 && options.mode == .flatten { writtenPaths.insert(Self.join((resolved + [component])[...])) }
                next = openat(current, name, flags)
            }
            if next >= 0 {
                Syscall.close(current)
                current = next
                resolved.append(component)
                continue
            }
            let code = errno
            var info = stat()
            guard fstatat(current, name, &info, AT_SYMLINK_NOFOLLOW) == 0, (info.st_mode & S_IFMT) == S_IFLNK else {
                Syscall.close(current)
                throw openError(code, path: Self.join((resolved + [component])[...]))
            }
            hops += 1
            guard hops <= Self.maximumSymlinkHops else {
                Syscall.close(current)
                throw .unsafePath(entry: currentEntry, reason: "more than \(Self.maximumSymlinkHops) symbolic links in its path")
            }
            var target = [UInt8](repeating: 0, count: 4097)
            let length = target.withUnsafeMutableBytes { buffer in
                readlinkat(current, name, buffer.baseAddress!.assumingMemoryBound(to: CChar.self), 4096)
            }
            Syscall.close(current)
            guard length > 0 else {
                throw .system(SystemError(call: "readlinkat", errno: errno, path: String(decoding: component, as: UTF8.self)), entry: currentEntry)
            }
            let text = Array(target[..<length])
            let base: [[UInt8]] = text.first == UInt8(ascii: "/") ? [] : resolved
            pending = Self.cleanClamped(base, text) + pending
            resolved = []
            current = try check("openat") { openat(rootDescriptor, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        }
        return current
    }

    /// `base` followed by the components of `path`, with `..` stopping at the root.
    static func cleanClamped(_ base: [[UInt8]], _ path: [UInt8]) -> [[UInt8]] {
        var components = base
        for part in path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if part.count == 1 && part.first == UInt8(ascii: ".") { continue }
            if part.count == 2 && part.first == UInt8(ascii: ".") && part.last == UInt8(ascii: ".") {
                if !components.isEmpty { components.removeLast() }
                continue
            }
            components.append(Array(part))
        }
        return components
    }

    private func openInRoot(_ path: [UInt8]) -> (Int32, Int32) {
        let cPath = path.isEmpty ? Self.cString(Array(".".utf8)) : Self.cString(path)
        let flags = UInt64(O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        while true {
            let descriptor = shoal_openat2(rootDescriptor, cPath, flags, 0,
                                           shoal_RESOLVE_IN_ROOT() | shoal_RESOLVE_NO_MAGICLINKS())
            if descriptor >= 0 { return (descriptor, 0) }
            // EAGAIN: a concurrent rename raced the lookup; openat2 asks to retry.
            if errno == EINTR || errno == EAGAIN { continue }
            return (-1, errno)
        }
    }

    private func openError(_ code: Int32, path: [UInt8]) -> LayerExtractionError {
        let display = String(decoding: path, as: UTF8.self)
        if code == ENOTDIR {
            return .unsupportedEntry(entry: currentEntry, reason: "a parent path \"\(display)\" is not a directory in the layer")
        }
        if code == ENOENT {
            return .system(SystemError(call: "openat2(RESOLVE_IN_ROOT)", errno: code, path: display), entry: currentEntry)
        }
        return .system(SystemError(call: useOpenat2 ? "openat2(RESOLVE_IN_ROOT)" : "openat", errno: code, path: display), entry: currentEntry)
    }

    static func readUmask() -> UInt32? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("Umask:") {
            return UInt32(line.dropFirst("Umask:".count).trimmingCharacters(in: .whitespaces), radix: 8)
        }
        return nil
    }

    // MARK: Names

    static let whiteoutPrefix = Array(".wh.".utf8)
    static let opaqueMarker = Array(".wh..wh..opq".utf8)

    /// Cleans a tar name into components inside the root: leading `/` and
    /// `.` components dropped (absolute names become relative), `..` pops a
    /// component, and `..` that would climb above the root is refused.
    static func clean(_ path: [UInt8], entry: String) throws(LayerExtractionError) -> [[UInt8]] {
        if path.contains(0) {
            throw .unsafePath(entry: entry, reason: "the name contains a NUL byte")
        }
        var components: [[UInt8]] = []
        for part in path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            if part.count == 1 && part.first == UInt8(ascii: ".") { continue }
            if part.count == 2 && part.first == UInt8(ascii: ".") && part.last == UInt8(ascii: ".") {
                guard !components.isEmpty else {
                    throw .unsafePath(entry: entry, reason: "\"..\" climbs above the image root")
                }
                components.removeLast()
                continue
            }
            guard part.count <= 255 else {
                throw .unsafePath(entry: entry, reason: "a path component is longer than 255 bytes")
            }
            components.append(Array(part))
        }
        return components
    }

    static func join(_ components: ArraySlice<[UInt8]>) -> [UInt8] {
        var path: [UInt8] = []
        for component in components {
            if !path.isEmpty { path.append(UInt8(ascii: "/")) }
            path.append(contentsOf: component)
        }
        return path
    }

    static func cString(_ bytes: [UInt8]) -> [CChar] {
        var result = [CChar]()
        result.reserveCapacity(bytes.count + 1)
        for byte in bytes { result.append(CChar(bitPattern: byte)) }
        result.append(0)
        return result
    }

    // MARK: System calls

    @discardableResult
    private func check(_ call: String, _ body: () -> Int32) throws(LayerExtractionError) -> Int32 {
        do {
            return try Syscall.run(call, path: rootPath, body)
        } catch {
            throw .system(error, entry: currentEntry)
        }
    }

    /// Runs `body`; returns 0 on success or the tolerated errno.
    private func attempt(_ call: String, tolerating: Set<Int32>, _ body: () -> Int32) throws(LayerExtractionError) -> Int32 {
        do {
            return try Syscall.attempt(call, path: rootPath, tolerating: tolerating, body).errno
        } catch {
            throw .system(error, entry: currentEntry)
        }
    }
}
