import COpenSSL

/// Why a TLS handshake, read or write failed, in words an operator can act on.
///
/// Built only by ``TLSError/from(_:verifyResult:operation:)`` from OpenSSL's
/// error queue, right after the failing call.
public enum TLSError: Error, CustomStringConvertible, Sendable {
    /// The peer presented no certificate; mutual TLS requires one.
    case missingPeerCertificate
    /// The peer's certificate failed verification against the cluster root
    /// (another CA, expired, not yet valid, wrong purpose...).
    case peerCertificateRejected(reason: String)
    /// The peer offered only protocol versions we refuse (older than TLS 1.2).
    case protocolVersionRefused(details: String)
    /// The peer sent an alert refusing us (typically our certificate).
    case refusedByPeer(alert: String)
    /// The peer closed the TCP stream without a TLS close_notify: the data may
    /// be truncated.
    case unexpectedEndOfStream
    /// Joining: the server's CA is not the one the join token pins.
    case pinnedRootMismatch(expected: String, presented: [String])
    /// Any other handshake or record failure.
    case failed(operation: String, details: String)
    /// The TLS configuration cannot be used (bad key/certificate pair...).
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .missingPeerCertificate:
            return "the peer presented no certificate: every Shoal node must present a certificate issued by the cluster's root CA (join the cluster to get one)"
        case .peerCertificateRejected(let reason):
            return "the peer's certificate was rejected: \(reason); it must be issued by this cluster's root CA and be within its validity period"
        case .protocolVersionRefused(let details):
            return "protocol version refused (\(details)): Shoal requires TLS 1.2 or newer; upgrade the peer's TLS library or settings"
        case .refusedByPeer(let alert):
            return "the peer refused the connection (\(alert)): our certificate is missing, expired or from another cluster's CA; renew it or join again"
        case .unexpectedEndOfStream:
            return "the peer closed the connection without a TLS close_notify: data may be truncated; retry the operation"
        case .pinnedRootMismatch(let expected, let presented):
            let seen = presented.isEmpty ? "no CA certificate" : presented.joined(separator: ", ")
            return "the server's CA (\(seen)) is not the one the join token pins (\(expected)): the token belongs to another cluster or the connection is intercepted; nothing was sent. Check the manager address and token"
        case .failed(let operation, let details):
            return "TLS \(operation) failed: \(details)"
        case .invalidConfiguration(let reason):
            return "invalid TLS configuration: \(reason)"
        }
    }

    /// Classifies a failure from the entries drained off OpenSSL's queue and
    /// the session's certificate verification result.
    static func from(_ entries: [OpenSSLErrorQueue.Entry], verifyResult: Int, operation: String) -> TLSError {
        if verifyResult != Int(X509_V_OK) {
            let reason = String(cString: X509_verify_cert_error_string(verifyResult))
            return .peerCertificateRejected(reason: reason)
        }
        for entry in entries where entry.library == ERR_LIB_SSL {
            switch entry.reason {
            case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
                return .missingPeerCertificate
            case SSL_R_UNSUPPORTED_PROTOCOL, SSL_R_WRONG_VERSION_NUMBER, SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
                return .protocolVersionRefused(details: OpenSSLErrorQueue.summary(entries))
            case SSL_R_UNEXPECTED_EOF_WHILE_READING:
                return .unexpectedEndOfStream
            case let reason where reason >= SSL_AD_REASON_OFFSET:
                // Alerts received from the peer are reported as reason 1000 + alert code.
                return .refusedByPeer(alert: Self.alertName(entry))
            default:
                continue
            }
        }
        return .failed(operation: operation, details: OpenSSLErrorQueue.summary(entries))
    }

    private static func alertName(_ entry: OpenSSLErrorQueue.Entry) -> String {
        guard let text = ERR_reason_error_string(entry.code) else { return "alert \(entry.reason - SSL_AD_REASON_OFFSET)" }
        return String(cString: text)
    }
}
