import Foundation
import HTTP

extension ControlAPI {
    /// POST /v1/containers/{id}/commit: the container's changes as a new
    /// image in the node's store (``ContainerCommitRequest``); 201 with the
    /// image's digest.
    static func postContainersByIDCommit(_ request: Request) async throws -> HTTPServerResponse {
        let engine = try request.context.daemon.containerEngine()
        let key = try request.parameter("id")
        let body = try await request.decodeOptional(ContainerCommitRequest.self) ?? ContainerCommitRequest()
        return json(try await engine.commit(key, body), status: 201)
    }
}
