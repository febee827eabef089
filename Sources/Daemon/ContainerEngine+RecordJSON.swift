import Foundation
import Wire

extension ContainerEngine.Record {
    /// The record as JSON, the same bytes as ``Support/encode(_:)``
    /// (JSONEncoder, sorted keys, dates as seconds since 2001) gives,
    /// without JSONEncoder: every create saves one, on the way to the
    /// container's start, and JSONEncoder spent most of that save on the
    /// request inside. A field added to the type must be added here, in key
    /// order (a test compares a record with every field set with JSONEncoder's).
    var encodedJSON: [UInt8] {
        var object = JSONObjectWriter()
        object.field("cmd", cmd)
        object.field("createdAt", createdAt.timeIntervalSinceReferenceDate)
        object.field("entrypoint", entrypoint)
        object.field("handledRun", handledRun?.timeIntervalSinceReferenceDate)
        object.field("id", id)
        object.field("image", image)
        object.field("imageDigest", imageDigest)
        object.field("mounts", objects: mounts) { entry, mount in
            entry.field("Destination", mount.Destination)
            entry.field("Name", mount.Name)
            entry.field("RW", mount.RW)
            entry.field("Source", mount.Source)
            entry.field("Type", mount.Type)
        }
        object.field("name", name)
        if let removal {
            object.field("removal", object: { $0.field("anonymousVolumes", removal.anonymousVolumes) })
        }
        object.field("request", json: request.encodedJSON)
        object.field("restartCount", restartCount)
        object.field("restartPolicy", object: { policy in
            policy.field("maximumRetryCount", restartPolicy.maximumRetryCount)
            policy.field("name", restartPolicy.name.rawValue)
        })
        object.field("stoppedByUser", stoppedByUser)
        return object.finished
    }
}
