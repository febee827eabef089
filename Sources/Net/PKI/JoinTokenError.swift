/// Why a join token was refused.
public enum JoinTokenError: Error, Equatable, CustomStringConvertible, Sendable {
    case malformed(reason: String)
    case unsupportedVersion(String)
    case invalidDigest(String)
    case invalidSecret(length: Int)

    public var description: String {
        let help = "copy the whole token from `shoal join-token worker` (or `manager`) on a manager"
        switch self {
        case .malformed(let reason):
            return "malformed join token (\(reason)); a token looks like SHOAL-1-<64 hex digits>-<32 characters>: \(help)"
        case .unsupportedVersion(let version):
            return "join token version \(version) is not supported (this build understands version \(JoinToken.version)): \(help)"
        case .invalidDigest(let digest):
            return "the CA digest in the join token must be 64 lowercase hex digits, got \(digest.utf8.count) characters: \(help)"
        case .invalidSecret(let length):
            return "the secret in the join token must be \(JoinToken.secretLength) base32 characters (a-z, 2-7), got \(length): \(help)"
        }
    }
}
