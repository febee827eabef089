import Net

/// A join or renewal answer that cannot be trusted or used; nothing was installed.
public enum CertificateExchangeError: Error, CustomStringConvertible, Sendable {
    /// The manager's answer is malformed or does not fit what was asked.
    case invalidResponse(method: String, reason: String)
    /// The caller's own certificate names no Shoal node, so it cannot renew.
    case notANodeCertificate(subject: String)

    public var description: String {
        switch self {
        case .invalidResponse(let method, let reason):
            return "the answer to \(method) cannot be used: \(reason); nothing was installed: retry, and check that the manager runs the same Shoal version"
        case .notANodeCertificate(let subject):
            return "the certificate \(subject) names no Shoal node (CN=node id, OU=role, O=cluster): join the cluster again"
        }
    }
}
