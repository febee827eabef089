import Foundation
import Net
import RPC

/// What a daemon keeps under its data directory:
///
/// ```
/// DIR/node.json        this file: node id, cluster id, role, addresses
/// DIR/raft.sqlite      the Raft log (managers)
/// DIR/certs/node.key   this node's key (0600)
/// DIR/certs/node.crt   this node's certificate (role in its OU)
/// DIR/certs/ca.crt     the cluster's root CA certificate
/// DIR/certs/ca.key     the root CA key (0600, managers only)
/// DIR/certs/secrets.key the key secrets are encrypted with (0600, managers only)
/// ```
public struct NodeState: Codable, Sendable, Equatable {
    public static let currentFormatVersion = 1

    public enum Role: String, Codable, Sendable { case manager, worker }

    public var formatVersion = currentFormatVersion
    public var nodeID: String
    public var clusterID: String
    public var role: Role
    /// The Raft member id (managers; derived from the node id).
    public var raftID: UInt64
    /// Where this node's manager RPC endpoint listens (`0.0.0.0:4242`).
    public var listenAddress: String
    /// What other nodes dial to reach it (`192.0.2.10:4242`).
    public var advertiseAddress: String
    /// Where the remote control API (mutual TLS) listens on a manager.
    public var apiListenAddress: String
    /// Managers this node knows of (`IP:PORT`), refreshed as it learns more.
    public var managerAddresses: [String]
    /// False until a joining manager has been promoted to voter: a restart
    /// before that repeats the join's last steps.
    public var joinComplete: Bool

    public init(nodeID: String, clusterID: String, role: Role, raftID: UInt64, listenAddress: String, advertiseAddress: String,
                apiListenAddress: String, managerAddresses: [String], joinComplete: Bool) {
        self.nodeID = nodeID
        self.clusterID = clusterID
        self.role = role
        self.raftID = raftID
        self.listenAddress = listenAddress
        self.advertiseAddress = advertiseAddress
        self.apiListenAddress = apiListenAddress
        self.managerAddresses = managerAddresses
        self.joinComplete = joinComplete
    }
}

/// Paths under a daemon's data directory.
struct DataDirectory: Sendable {
    let path: String

    var nodeFile: String { path + "/node.json" }
    var raftDatabase: String { path + "/raft.sqlite" }
    var certificates: String { path + "/certs" }
    var nodeKey: String { certificates + "/node.key" }
    var nodeCertificate: String { certificates + "/node.crt" }
    var rootCertificate: String { certificates + "/ca.crt" }
    var rootKey: String { certificates + "/ca.key" }
    var secretsKey: String { certificates + "/secrets.key" }

    func prepare() throws {
        try Support.makeDirectory(path, mode: 0o700)
        try Support.makeDirectory(certificates, mode: 0o700)
    }

    func loadState() throws -> NodeState? {
        guard let bytes = Support.readFile(nodeFile) else { return nil }
        return try Support.decode(NodeState.self, from: bytes)
    }

    func save(_ state: NodeState) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try Support.writeFile(Array(try encoder.encode(state)), to: nodeFile, mode: 0o600)
    }

    func saveCredentials(_ credentials: NodeCredentials) throws {
        try prepare()
        try credentials.key.write(toFile: nodeKey)
        try credentials.certificate.write(toFile: nodeCertificate)
        try credentials.root.write(toFile: rootCertificate)
    }

    func loadCredentials() throws -> NodeCredentials {
        recoverInterruptedReplacement()
        return NodeCredentials(certificate: try Certificate.read(fromFile: nodeCertificate), key: try PrivateKey.read(fromFile: nodeKey),
                               root: try Certificate.read(fromFile: rootCertificate))
    }

    var pendingNodeKey: String { nodeKey + ".next" }
    var pendingNodeCertificate: String { nodeCertificate + ".next" }

    /// Replaces the node's key and certificate with renewed ones. Two files
    /// cannot be renamed at once, so the pair is first written whole as
    /// node.key.next (0600) and node.crt.next, then renamed into place, key
    /// first; `loadCredentials` finishes or undoes a replacement that a crash
    /// interrupted, so the daemon never starts with a key that does not
    /// match its certificate.
    func replaceCredentials(_ credentials: NodeCredentials) throws {
        try credentials.key.write(toFile: pendingNodeKey)
        try credentials.certificate.write(toFile: pendingNodeCertificate)
        for (pending, path) in [(pendingNodeKey, nodeKey), (pendingNodeCertificate, nodeCertificate)] {
            guard rename(pending, path) == 0 else { throw SystemError(call: "rename", errno: errno, path: path) }
        }
    }

    private func recoverInterruptedReplacement() {
        let files = FileManager.default
        guard files.fileExists(atPath: pendingNodeCertificate) else {
            unlink(pendingNodeKey) // written, never renamed: the old pair is whole
            return
        }
        if files.fileExists(atPath: pendingNodeKey) {
            // Neither rename happened: keep the old pair.
            unlink(pendingNodeKey)
            unlink(pendingNodeCertificate)
            return
        }
        // The new key is in place, its certificate not yet: finish.
        if let certificate = try? Certificate.read(fromFile: pendingNodeCertificate), let key = try? PrivateKey.read(fromFile: nodeKey),
           certificate.matches(key) {
            rename(pendingNodeCertificate, nodeCertificate)
        }
    }

    func saveManagerKeys(rootKeyPEM: String, secretsKey: [UInt8]) throws {
        try Support.writeFile(Array(rootKeyPEM.utf8), to: rootKey, mode: 0o600)
        try Support.writeFile(secretsKey, to: self.secretsKey, mode: 0o600)
    }

    /// Forgets the cluster: Raft log, keys, certificates and node.json.
    func wipe() {
        for file in [nodeFile, raftDatabase, raftDatabase + "-wal", raftDatabase + "-shm", nodeKey, nodeCertificate, pendingNodeKey, pendingNodeCertificate,
                     rootCertificate, rootKey, secretsKey] {
            unlink(file)
        }
    }

    /// Drops the Raft log (and, unless told to keep them, the manager keys).
    func removeManagerFiles(keepingKeys: Bool) {
        for file in [raftDatabase, raftDatabase + "-wal", raftDatabase + "-shm"] { unlink(file) }
        if !keepingKeys { for file in [rootKey, secretsKey] { unlink(file) } }
    }
}
