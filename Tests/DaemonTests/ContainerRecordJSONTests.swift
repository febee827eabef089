@testable import Daemon
import Foundation
import Testing

/// The engine's record of a container, written by hand at every save: the
/// bytes JSONEncoder (sorted keys) gives, read back equal.
@Suite("The engine's container record JSON matches JSONEncoder")
struct ContainerRecordJSONTests {
    static var everyField: ContainerEngine.Record {
        var record = ContainerEngine.Record(
            id: String(repeating: "ab", count: 32), name: "web-1", image: "busybox:latest", imageDigest: "sha256:" + String(repeating: "c", count: 64),
            request: ContainerRunJSONTests.everyField, createdAt: Date(timeIntervalSince1970: 1_795_972_130.272837),
            restartPolicy: RestartPolicy(name: .unlessStopped, maximumRetryCount: 7),
            mounts: [.init(Type: "volume", Name: "data", Source: "/var/lib/x/_data", Destination: "/data", RW: true),
                     .init(Type: "bind", Name: nil, Source: "/host/" + ContainerRunJSONTests.awkward, Destination: "/in", RW: false)],
            entrypoint: ["/bin/sh", "-c"], cmd: ["echo", ContainerRunJSONTests.awkward])
        record.restartCount = 3
        record.stoppedByUser = true
        record.removal = .init(anonymousVolumes: true)
        record.handledRun = Date(timeIntervalSinceReferenceDate: 0.1)
        return record
    }

    @Test("every field set, and the fewest: the same bytes as JSONEncoder with sorted keys, read back equal")
    func encodesAsFoundationDoes() throws {
        let full = Self.everyField
        let unset = ContainerRunJSONTests.unsetFields(of: full)
        #expect(unset.isEmpty, "set every field here: \(unset)")
        var sparse = ContainerEngine.Record(
            id: "x", name: "n", image: "i", imageDigest: nil, request: ContainerCreateRequest(image: "i"), createdAt: Date(timeIntervalSinceReferenceDate: 0),
            restartPolicy: RestartPolicy(name: .no, maximumRetryCount: 0), mounts: [], entrypoint: [], cmd: [])
        sparse.removal = .init(anonymousVolumes: false)
        for record in [full, sparse, Self.everyField.with(createdAt: Date(timeIntervalSinceReferenceDate: -12_345.5))] {
            #expect(String(decoding: record.encodedJSON, as: UTF8.self) == String(decoding: Support.encode(record), as: UTF8.self))
            #expect(try JSONDecoder().decode(ContainerEngine.Record.self, from: Data(record.encodedJSON)) == record)
        }
    }
}

extension ContainerEngine.Record {
    func with(createdAt: Date) -> Self {
        var record = self
        record.createdAt = createdAt
        return record
    }
}
