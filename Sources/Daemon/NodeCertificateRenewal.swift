import Foundation
import Net
import RPC

/// Keeps this node's certificate fresh while the node runs (issue 3: renewed
/// at a jittered point between 50% and 80% of its lifetime, without dropping
/// connections).
///
/// `CertificateRenewer` picks the time (`RenewalSchedule`) and asks a manager
/// for the new certificate over mutual TLS with the current one
/// (`CertificateIssuer.renewMethod`, which keeps the node id and role). The
/// new key and certificate are written to certs/ first (key mode 0600, see
/// ``DataDirectory/replaceCredentials(_:)``), then installed in the
/// `CredentialStore`: new connections, outgoing and accepted, use them; open
/// connections keep the certificate they were made with.
final class NodeCertificateRenewal: @unchecked Sendable {
    let renewer: CertificateRenewer
    private let directory: DataDirectory
    private let managers: @Sendable () -> [String]
    private let lock = NSLock()
    private var task: Task<Void, Never>? // guarded by `lock`

    /// `managers` lists the manager RPC addresses to ask, in order of preference.
    init(store: CredentialStore, directory: DataDirectory, managers: @escaping @Sendable () -> [String]) {
        renewer = CertificateRenewer(store: store)
        self.directory = directory
        self.managers = managers
    }

    /// The current certificate's renewal time.
    var renewalTime: Date { renewer.renewalTime }

    func start() {
        let renewer = self.renewer
        let directory = self.directory
        let managers = self.managers
        let task = Task {
            await renewer.run(
                connect: { try await Self.connect(to: managers(), context: renewer.store.clientContext) },
                persist: { try directory.replaceCredentials($0) },
                onFailure: { error in
                    FileHandle.standardError.write(Data("shoal daemon: renewing this node's certificate failed: \(error); retrying\n".utf8))
                }
            )
        }
        lock.withLock { self.task = task }
    }

    /// Stops renewing and waits for an attempt in progress to end, so that
    /// nothing writes to certs/ after this returns (a role change or `leave`
    /// rewrites or removes those files next).
    func stop() async {
        let task: Task<Void, Never>? = lock.withLock {
            defer { self.task = nil }
            return self.task
        }
        task?.cancel()
        await task?.value
    }

    /// An RPC client on the first manager of `addresses` that accepts a connection.
    static func connect(to addresses: [String], context: TLSContext) async throws -> RPCClient {
        var lastError: any Error = APIError(status: 503, code: "unavailable", message: "no manager address is known to renew the certificate with",
                                            hint: "check that the managers are running")
        for address in addresses {
            do {
                let socketAddress = try Support.parseAddress(address, defaultPort: 4242, field: "manager address")
                let connection = try await TLSConnection.connect(to: socketAddress, context: context, deadline: .now + PeerCaller.connectTimeout)
                return RPCClient(connection: connection)
            } catch {
                lastError = error
            }
        }
        throw lastError
    }
}
