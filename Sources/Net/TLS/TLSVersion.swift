import COpenSSL

/// Protocol versions Net can be configured with. Nothing older than 1.2 exists
/// here on purpose: it cannot be enabled by mistake.
public enum TLSVersion: Sendable, Comparable {
    case tls12
    case tls13

    var openSSLValue: Int32 {
        switch self {
        case .tls12: return TLS1_2_VERSION
        case .tls13: return TLS1_3_VERSION
        }
    }
}
