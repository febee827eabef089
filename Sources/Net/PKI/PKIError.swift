import Posix
/// Why a key, certificate, request or token operation failed, and what to do.
public enum PKIError: Error, CustomStringConvertible, Sendable {
    /// OpenSSL refused an operation; `details` is its error queue.
    case openSSL(operation: String, details: String)
    /// Text that should have been PEM of the given kind was not.
    case invalidPEM(kind: String, details: String)
    /// A subject field (node id, cluster id) is not acceptable.
    case invalidName(field: String, value: String, reason: String)
    /// A certificate signing request's signature does not verify.
    case invalidSignatureOnRequest
    /// The private key is not the one the certificate was issued for.
    case keyDoesNotMatchCertificate
    /// A certificate expected to be a CA is not one.
    case notACertificateAuthority(subject: String)
    /// Reading or writing a key or certificate file failed.
    case file(SystemError)

    public var description: String {
        switch self {
        case .openSSL(let operation, let details):
            return "\(operation) failed: \(details)"
        case .invalidPEM(let kind, let details):
            return "not a PEM \(kind): \(details); expected text starting with -----BEGIN"
        case .invalidName(let field, let value, let reason):
            return "invalid \(field) \"\(value)\": \(reason)"
        case .invalidSignatureOnRequest:
            return "the certificate signing request's signature does not verify: it was altered or signed with another key; create a new request"
        case .keyDoesNotMatchCertificate:
            return "the private key does not belong to the certificate: use the key the certificate request was made with"
        case .notACertificateAuthority(let subject):
            return "\(subject) is not a certificate authority (basicConstraints CA:TRUE with keyCertSign required)"
        case .file(let error):
            return error.description
        }
    }
}
