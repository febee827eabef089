import Foundation
import Net

/// The node's current credentials and the TLS contexts built from them,
/// swapped as one when a certificate is renewed.
///
/// New connections ask for `clientContext` / `serverContext` when they start
/// (`RPCServer.serve(listener:context:)` takes `{ store.serverContext }`);
/// connections already open keep the context they were made with, so
/// installing renewed credentials drops none of them (the swap Net's
/// `TLSContext` is designed for).
public final class CredentialStore: @unchecked Sendable {
    private let lock = NSLock()
    // Guarded by `lock`.
    private var credentials: NodeCredentials
    private var client: TLSContext
    private var server: TLSContext

    public init(_ credentials: NodeCredentials) throws(TLSError) {
        self.credentials = credentials
        client = try TLSContext(credentials.tlsConfiguration, side: .client)
        server = try TLSContext(credentials.tlsConfiguration, side: .server)
    }

    public var current: NodeCredentials { lock.withLock { credentials } }
    /// The context for the next outgoing connection.
    public var clientContext: TLSContext { lock.withLock { client } }
    /// The context for the next accepted connection.
    public var serverContext: TLSContext { lock.withLock { server } }

    /// Installs renewed credentials for every connection made from now on.
    /// Throws (and changes nothing) if they cannot make a TLS context.
    public func install(_ renewed: NodeCredentials) throws(TLSError) {
        let client = try TLSContext(renewed.tlsConfiguration, side: .client)
        let server = try TLSContext(renewed.tlsConfiguration, side: .server)
        lock.withLock {
            credentials = renewed
            self.client = client
            self.server = server
        }
    }
}
