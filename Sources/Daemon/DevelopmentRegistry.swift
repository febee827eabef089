import Foundation
import Images
import Net
import Registry
#if canImport(Glibc)
import Glibc
#endif

/// The registry `shoal dev` serves (on 127.0.0.1:5000 by default): an open
/// OCI Distribution registry with its own content store under
/// `DIR/registry`, so `shoal image push 127.0.0.1:5000/web:1` then
/// `shoal service create 127.0.0.1:5000/web:1` works; the agent pulls from
/// it into the node's store like from any registry. Its own store keeps
/// the registry's tags (`web:1`) apart from the node's names.
final class DevelopmentRegistry: Sendable {
    /// What stops the registry from starting, with what to do.
    struct StartError: Error, CustomStringConvertible {
        let address: SocketAddress
        let reason: String
        var description: String { "the registry cannot listen on \(address): \(reason)" }
    }

    let server: RegistryServer
    /// Where it listens (the port chosen when 0 was asked for).
    let address: SocketAddress

    init(dataDirectory: String, address requested: SocketAddress) throws {
        let root = dataDirectory + "/registry"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        server = try RegistryServer(store: try ContentStore(root: root))
        do {
            address = try server.listen(on: requested)
        } catch let error as SystemError where error.errno == EADDRINUSE {
            throw StartError(address: requested, reason: "the port is in use (another `shoal dev` or registry?); stop what holds it, "
                             + "or start with `shoal dev --registry-port PORT` (0: any free port; `off`: no registry)")
        } catch {
            throw StartError(address: requested, reason: "\(error)")
        }
    }

    func stop() async {
        await server.shutdown(gracePeriod: .milliseconds(500))
    }
}
