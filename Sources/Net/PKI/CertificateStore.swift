import COpenSSL

/// A set of trusted roots (owns one `X509_STORE`) to verify a certificate
/// outside a TLS handshake: a joining node checks the server's leaf against
/// the root it pinned by digest.
final class CertificateStore {
    let pointer: OpaquePointer

    init(trusting roots: [Certificate]) {
        guard let store = X509_STORE_new() else { preconditionFailure("X509_STORE_new failed: out of memory") }
        pointer = store
        for root in roots { X509_STORE_add_cert(store, root.pointer) }
    }

    deinit {
        X509_STORE_free(pointer)
    }

    /// Verifies `leaf` (for use as a TLS server) at the current time; returns
    /// nil when valid, otherwise OpenSSL's reason.
    func verifyServerCertificate(_ leaf: Certificate) -> String? {
        // The verification context lives only for this call, created and freed
        // here; it never escapes, so it needs no owning class of its own.
        guard let context = X509_STORE_CTX_new() else { preconditionFailure("X509_STORE_CTX_new failed: out of memory") }
        defer { X509_STORE_CTX_free(context) }
        OpenSSLErrorQueue.clear()
        defer { OpenSSLErrorQueue.clear() }
        guard X509_STORE_CTX_init(context, pointer, leaf.pointer, nil) == 1 else { return "cannot start verification" }
        _ = X509_STORE_CTX_set_purpose(context, X509_PURPOSE_SSL_SERVER)
        if X509_verify_cert(context) == 1 { return nil }
        return String(cString: X509_verify_cert_error_string(Int(X509_STORE_CTX_get_error(context))))
    }
}
