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
    private var joinServer: TLSContext

    public init(_ credentials: NodeCredentials) throws(TLSError) {
        self.credentials = credentials
        (client, server, joinServer) = try Self.contexts(for: credentials)
    }

    private static func contexts(for credentials: NodeCredentials) throws(TLSError) -> (TLSContext, TLSContext, TLSContext) {
        var joinConfiguration = credentials.tlsConfiguration
        joinConfiguration.clientCertificates = .optional
        return (try TLSContext(credentials.tlsConfiguration, side: .client),
                try TLSContext(credentials.tlsConfiguration, side: .server),
                try TLSContext(joinConfiguration, side: .server))
    }

    public var current: NodeCredentials { lock.withLock { credentials } }
    /// The context for the next outgoing connection.
    public var clientContext: TLSContext { lock.withLock { client } }
    /// The context for the next accepted connection.
    public var serverContext: TLSContext { lock.withLock { server } }
    /// The context for the next connection accepted on an endpoint that also
    /// serves joins: client certificates optional (a presented one is still
    /// verified), so `RPCAccess.anonymous` methods can be reached.
    public var joinServerContext: TLSContext { lock.withLock { joinServer } }

    /// Installs renewed credentials for every connection made from now on.
    /// Throws (and changes nothing) if they cannot make a TLS context.
    public func install(_ renewed: NodeCredentials) throws(TLSError) {
        let (client, server, joinServer) = try Self.contexts(for: renewed)
        lock.withLock {
            credentials = renewed
            self.client = client
            self.server = server
            self.joinServer = joinServer
        }
    }
}
