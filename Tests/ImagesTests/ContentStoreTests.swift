import TestSupport
import Foundation
import Images
import Testing

@Suite struct ContentStoreTests {
    @Test func blobRoundTrip() throws {
        let directory = try TemporaryDirectory()
        let store = try ContentStore(root: directory.path)
        let bytes = Array("hello, shoal".utf8)
        let digest = try store.write(bytes)
        #expect(digest == Digest.of(bytes))
        #expect(store.contains(digest))
        #expect(try store.read(digest, maximumBytes: 100) == bytes)
        #expect(try store.size(of: digest) == Int64(bytes.count))
        #expect(store.path(for: digest) == directory.path + "/blobs/sha256/" + digest.hex)
        #expect(try String(contentsOfFile: store.path(for: digest), encoding: .utf8) == "hello, shoal")
        #expect(try store.blobs() == [digest])
        // Survives reopening.
        let reopened = try ContentStore(root: directory.path)
        #expect(try reopened.read(digest, maximumBytes: 100) == bytes)
    }

    @Test func streamingWriteOfALargeBlob() throws {
        let directory = try TemporaryDirectory()
        let store = try ContentStore(root: directory.path)
        var bytes = [UInt8](repeating: 0, count: 3 << 20)
        for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 2_654_435_761 >> 7) }
        let writer = try store.makeWriter(expected: Digest.of(bytes), expectedBytes: Int64(bytes.count))
        for start in stride(from: 0, to: bytes.count, by: 100_000) {
            try writer.write(Array(bytes[start..<min(start + 100_000, bytes.count)]))
        }
        let digest = try writer.commit()
        #expect(try store.read(digest, maximumBytes: 4 << 20) == bytes)
        #expect(throws: ContentStoreError.self) { try store.read(digest, maximumBytes: 1 << 20) }
    }

    @Test func digestMismatchLeavesNothing() throws {
        let directory = try TemporaryDirectory()
        let store = try ContentStore(root: directory.path)
        let announced = Digest.of(Array("the real bytes".utf8))
        var caught: ContentStoreError?
        do {
            try store.write(Array("tampered bytes".utf8), expected: announced)
        } catch {
            caught = error
        }
        guard case let .digestMismatch(expected, actual, _) = caught else {
            Issue.record("expected a digest mismatch, got \(String(describing: caught))")
            return
        }
        #expect(expected == announced)
        #expect(actual == Digest.of(Array("tampered bytes".utf8)))
        #expect(caught!.description.contains(announced.description))
        #expect(!store.contains(announced))
        #expect(!store.contains(actual))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/blobs/sha256").isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/ingest").isEmpty)
        #expect(try store.blobs().isEmpty)
    }

    @Test func truncatedDownloadLeavesNothing() throws {
        let directory = try TemporaryDirectory()
        let store = try ContentStore(root: directory.path)
        let full = [UInt8](repeating: 7, count: 1000)
        let writer = try store.makeWriter(expected: Digest.of(full), expectedBytes: 1000)
        try writer.write(Array(full[..<600]))
        #expect {
            try writer.commit()
        } throws: { error in
            if case .sizeMismatch(_, 1000, 600) = error as? ContentStoreError { return true }
            return false
        }
        #expect(!store.contains(Digest.of(full)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/ingest").isEmpty)
    }

    @Test func sizeLimitIsEnforcedWhileStreaming() throws {
        let directory = try TemporaryDirectory()
        let store = try ContentStore(root: directory.path, limits: .init(maximumBlobBytes: 1024))
        let writer = try store.makeWriter()
        try writer.write([UInt8](repeating: 1, count: 1000))
        #expect {
            try writer.write([UInt8](repeating: 1, count: 100))
        } throws: { error in
            if case .tooLarge(_, 1024) = error as? ContentStoreError { return true }
            return false
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/ingest").isEmpty)
        #expect(throws: ContentStoreError.self) { try store.makeWriter(expectedBytes: 2048) }
    }

    @Test func concurrentWritersOfTheSameBlobEndWithOneCorrectBlob() async throws {
        let directory = try TemporaryDirectory()
        let store = try ContentStore(root: directory.path)
        let bytes = [UInt8]((0..<(512 << 10)).map { UInt8(truncatingIfNeeded: $0 * 31) })
        let expected = Digest.of(bytes)
        let results = try await withThrowingTaskGroup(of: Digest.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    let writer = try store.makeWriter(expected: expected, expectedBytes: Int64(bytes.count))
                    for start in stride(from: 0, to: bytes.count, by: 65_536) {
                        try writer.write(Array(bytes[start..<min(start + 65_536, bytes.count)]))
                        await Task.yield()
                    }
                    return try writer.commit()
                }
            }
            var results: [Digest] = []
            for try await digest in group { results.append(digest) }
            return results
        }
        #expect(results == Array(repeating: expected, count: 8))
        #expect(try store.read(expected, maximumBytes: 1 << 20) == bytes)
        #expect(try store.blobs() == [expected])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/blobs/sha256") == [expected.hex])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/ingest").isEmpty)
    }

    @Test func abandonedTemporaryFilesAreInvisibleAndCleanedOnOpen() throws {
        let directory = try TemporaryDirectory()
        let bytes = Array("half a layer".utf8)
        do {
            let store = try ContentStore(root: directory.path)
            let live = try store.makeWriter()
            try live.write(bytes)
            // A crashed writer: its file stays, nobody holds its lock.
            try Data(bytes).write(to: URL(fileURLWithPath: directory.path + "/ingest/dead-writer.tmp"))
            #expect(!store.contains(Digest.of(bytes)))
            #expect(try store.blobs().isEmpty)
            // Reopening while `live` still writes removes only the abandoned file.
            let second = try ContentStore(root: directory.path)
            let left = try FileManager.default.contentsOfDirectory(atPath: directory.path + "/ingest")
            #expect(left.count == 1)
            #expect(!left.contains("dead-writer.tmp"))
            #expect(try second.blobs().isEmpty)
            // `live` is dropped here without commit: it removes its own file.
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/ingest").isEmpty)
    }

    @Test func blobFileWithoutMetadataIsRecordedOnOpen() throws {
        let directory = try TemporaryDirectory()
        let bytes = Array("renamed just before a crash".utf8)
        let digest = Digest.of(bytes)
        _ = try ContentStore(root: directory.path)
        try Data(bytes).write(to: URL(fileURLWithPath: directory.path + "/blobs/sha256/" + digest.hex))
        let store = try ContentStore(root: directory.path)
        #expect(try store.blobs() == [digest])
        #expect(try store.prune().removed == [digest])
        #expect(!store.contains(digest))
    }

    @Test func pruneRemovesOnlyUnreferencedBlobs() throws {
        let directory = try TemporaryDirectory()
        let store = try ContentStore(root: directory.path)
        let layer = try store.write(Array("layer".utf8))
        let sharedLayer = try store.write(Array("shared layer".utf8))
        let config = try store.write(Array("config".utf8))
        let manifest = try store.write(Array("manifest".utf8))
        let otherManifest = try store.write(Array("other manifest".utf8))
        let garbage = try store.write(Array("garbage".utf8))
        try store.addReferences(from: manifest, to: [config, layer, sharedLayer])
        try store.addReferences(from: otherManifest, to: [sharedLayer])
        try store.tag("shoal.local/web:1", to: manifest)
        try store.tag("shoal.local/web:2", to: otherManifest)
        #expect(try store.referenceCount(of: sharedLayer) == 2)
        #expect(try store.referenceCount(of: manifest) == 1)
        #expect(try store.referenceCount(of: garbage) == 0)

        var report = try store.prune()
        #expect(report.removed == [garbage])
        #expect(report.reclaimedBytes == 7)
        #expect(!store.contains(garbage))

        #expect(try store.removeTag("shoal.local/web:2"))
        #expect(try store.removeTag("shoal.local/web:2") == false)
        report = try store.prune()
        #expect(report.removed == [otherManifest])
        #expect(store.contains(sharedLayer))
        #expect(try store.referenceCount(of: sharedLayer) == 1)

        #expect(try store.removeTag("shoal.local/web:1"))
        report = try store.prune()
        #expect(Set(report.removed) == [manifest, config, layer, sharedLayer])
        #expect(try store.blobs().isEmpty)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path + "/blobs/sha256").isEmpty)
    }

    @Test func pruneSparesYoungBlobsWhenAsked() throws {
        let directory = try TemporaryDirectory()
        let store = try ContentStore(root: directory.path)
        let fresh = try store.write(Array("just pulled".utf8))
        #expect(try store.prune(minimumAgeSeconds: 3600).removed.isEmpty)
        #expect(store.contains(fresh))
    }

    @Test func tagsResolveAndRejectBadNames() throws {
        let directory = try TemporaryDirectory()
        let store = try ContentStore(root: directory.path)
        let first = try store.write(Array("one".utf8))
        let second = try store.write(Array("two".utf8))
        try store.tag("busybox:latest", to: first)
        #expect(try store.resolve(tag: "busybox:latest") == first)
        try store.tag("busybox:latest", to: second)
        #expect(try store.resolve(tag: "busybox:latest") == second)
        #expect(try store.resolve(tag: "missing:1") == nil)
        #expect(try store.tags().map(\.name) == ["busybox:latest"])
        #expect(throws: ContentStoreError.self) { try store.tag("bad name", to: first) }
        #expect(throws: ContentStoreError.self) { try store.tag("", to: first) }
        let absent = Digest.of(Array("absent".utf8))
        #expect(throws: ContentStoreError.self) { try store.tag("x:1", to: absent) }
        #expect(throws: ContentStoreError.self) { try store.addReferences(from: first, to: [absent]) }
    }
}
