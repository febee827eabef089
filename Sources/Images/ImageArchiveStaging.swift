import Foundation
import Posix
#if canImport(Glibc)
import Glibc
#endif

/// The members of an image archive being loaded, each hashed as it is read
/// and held until the whole archive is checked: small ones in memory, large
/// ones as sealed (verified, fsynced, not yet installed) blobs in the store's
/// ingest directory. Nothing reaches the store's blobs until ``install(_:)``;
/// releasing the staging discards whatever was not installed.
final class ImageArchiveStaging {
    /// Members up to this size stay in memory (every manifest and config fits).
    static let maximumInMemoryMemberBytes = Int64(ImageDocument.maximumManifestBytes)
    /// The most memory small members may take together.
    static let maximumInMemoryTotalBytes: Int64 = 1 << 30
    /// Symbolic links followed when resolving a member name.
    static let maximumLinkDepth = 16

    final class Member {
        let path: String
        let size: Int64
        let digest: Digest
        let bytes: [UInt8]?
        let writer: BlobWriter?
        /// Set once ``install(_:)`` put it in the store (a blob shared by two images is installed once).
        var installed = false

        init(path: String, size: Int64, digest: Digest, bytes: [UInt8]?, writer: BlobWriter?) {
            self.path = path
            self.size = size
            self.digest = digest
            self.bytes = bytes
            self.writer = writer
        }
    }

    let store: ContentStore
    private(set) var members: [String: Member] = [:]
    /// Member names in archive order (for messages).
    private(set) var order: [String] = []
    /// Symbolic and hard links: name → the member name they point at.
    private var links: [String: String] = [:]
    private var inMemoryBytes: Int64 = 0

    init(store: ContentStore) {
        self.store = store
    }

    deinit {
        for member in members.values { member.writer?.abort() }
    }

    /// `./a//b/` → `a/b`.
    static func normalize(_ path: String) -> String {
        path.split(separator: "/").filter { $0 != "." }.joined(separator: "/")
    }

    /// Reads a regular member of `size` bytes from `read` (which streams the
    /// data in chunks to the closure it is given).
    func addFile(_ rawPath: String, size: Int64,
                 read: ((UnsafeRawBufferPointer) throws(ImageArchiveError) -> Void) throws(ImageArchiveError) -> Void) throws(ImageArchiveError) {
        let path = Self.normalize(rawPath)
        if let previous = members.removeValue(forKey: path) {
            // A later member of the same name replaces the earlier one, as tar extraction does.
            previous.writer?.abort()
            if previous.bytes != nil { inMemoryBytes -= previous.size }
        }
        links.removeValue(forKey: path)
        let member: Member
        if size <= Self.maximumInMemoryMemberBytes {
            guard inMemoryBytes + size <= Self.maximumInMemoryTotalBytes else {
                throw .tooManySmallMembers(limitBytes: Self.maximumInMemoryTotalBytes)
            }
            var bytes: [UInt8] = []
            bytes.reserveCapacity(Int(size))
            try read { chunk throws(ImageArchiveError) in bytes.append(contentsOf: chunk) }
            guard Int64(bytes.count) == size else {
                throw .malformedArchive(path: path, .truncated(entry: path, reason: "the member ends early"))
            }
            inMemoryBytes += size
            member = Member(path: path, size: size, digest: Digest.of(bytes), bytes: bytes, writer: nil)
        } else {
            let writer: BlobWriter
            do { writer = try store.makeWriter(expectedBytes: size) } catch { throw .store(error) }
            do throws(ImageArchiveError) {
                try read { chunk throws(ImageArchiveError) in
                    do throws(ContentStoreError) { try writer.write(chunk) } catch { throw .store(error) }
                }
                do throws(ContentStoreError) {
                    member = Member(path: path, size: size, digest: try writer.seal(), bytes: nil, writer: writer)
                } catch {
                    throw .store(error)
                }
            } catch {
                writer.abort()
                throw error
            }
        }
        members[path] = member
        order.append(path)
    }

    /// Records a symbolic link (`target` relative to the link's directory
    /// unless absolute within the archive) or a hard link (`target` an archive name).
    func addLink(_ rawPath: String, target: String, symbolic: Bool) {
        let path = Self.normalize(rawPath)
        var resolved = target
        if symbolic && !target.hasPrefix("/") {
            let directory = path.split(separator: "/").dropLast().joined(separator: "/")
            resolved = directory.isEmpty ? target : directory + "/" + target
        }
        // `..` inside the archive: fold it; a name that climbs out names nothing.
        var components: [Substring] = []
        for component in resolved.split(separator: "/") where component != "." {
            if component == ".." { _ = components.popLast() } else { components.append(component) }
        }
        links[path] = components.joined(separator: "/")
        order.append(path)
    }

    /// The member a name refers to, following links.
    func member(_ rawPath: String) -> Member? {
        var path = Self.normalize(rawPath)
        for _ in 0...Self.maximumLinkDepth {
            if let member = members[path] { return member }
            guard let next = links[path] else { return nil }
            path = next
        }
        return nil
    }

    /// A member's bytes (at most `limitBytes`), for JSON documents.
    func bytes(of member: Member, limitBytes: Int, neededBy: String) throws(ImageArchiveError) -> [UInt8] {
        guard member.size <= Int64(limitBytes), let bytes = member.bytes else {
            throw .invalidDocument(member: member.path, reason: "\(member.size) bytes is more than the \(limitBytes)-byte limit for \(neededBy)")
        }
        return bytes
    }

    /// A stream over a member's bytes.
    func withStream<T>(_ member: Member, _ body: (ByteSource) throws(ImageArchiveError) -> T) throws(ImageArchiveError) -> T {
        if let bytes = member.bytes { return try body(MemoryByteSource(bytes)) }
        let descriptor: Int32
        do { descriptor = try member.writer!.openSealed() } catch { throw .store(error) }
        defer { Syscall.close(descriptor) }
        return try body(FileByteSource(descriptor: descriptor, path: member.path))
    }

    /// Installs a member into the store as a blob and returns its digest.
    @discardableResult
    func install(_ member: Member) throws(ImageArchiveError) -> Digest {
        if member.installed { return member.digest }
        member.installed = true
        do {
            if let bytes = member.bytes { return try store.write(bytes, expected: member.digest) }
            return try member.writer!.commit()
        } catch {
            throw .store(error)
        }
    }
}
