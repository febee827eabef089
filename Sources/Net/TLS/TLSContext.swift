import COpenSSL

/// A configured OpenSSL `SSL_CTX` for one side (server or client); owns it.
///
/// Build one per configuration and share it across connections: sessions are
/// cheap to create from a context, contexts are not. Replace the context to
/// pick up a renewed certificate; existing connections keep theirs.
public final class TLSContext: @unchecked Sendable {
    public enum Side: Sendable { case server, client }

    // SSL_CTX is safe to share for creating sessions once configured; it is
    // never modified after init.
    let pointer: OpaquePointer
    public let side: Side
    public let configuration: TLSConfiguration

    public init(_ configuration: TLSConfiguration, side: Side) throws(TLSError) {
        self.side = side
        self.configuration = configuration
        OpenSSLErrorQueue.clear()
        guard let context = SSL_CTX_new(side == .server ? TLS_server_method() : TLS_client_method()) else {
            throw .invalidConfiguration("SSL_CTX_new: \(OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))")
        }
        pointer = context
        try configure(configuration)
    }

    deinit {
        SSL_CTX_free(pointer)
    }

    /// TLS 1.3 suites in the order a server prefers them.
    static let tls13CipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    /// TLS 1.2: forward-secret AEAD suites for ECDSA (node) and RSA (other peers') certificates.
    static let tls12Ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"
        + "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305"

    private func configure(_ configuration: TLSConfiguration) throws(TLSError) {
        func fail(_ what: String) -> TLSError {
            .invalidConfiguration("\(what): \(OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))")
        }
        guard configuration.minimumVersion <= configuration.maximumVersion else {
            throw .invalidConfiguration("minimum version \(configuration.minimumVersion) is above maximum \(configuration.maximumVersion)")
        }
        guard shoal_SSL_CTX_set_min_proto_version(pointer, configuration.minimumVersion.openSSLValue) == 1,
              shoal_SSL_CTX_set_max_proto_version(pointer, configuration.maximumVersion.openSSLValue) == 1
        else { throw fail("setting protocol versions") }
        // No renegotiation (TLS 1.2 attack surface), no compression (CRIME), no
        // session tickets: every connection proves its certificate afresh.
        _ = shoal_SSL_CTX_set_options(
            pointer,
            shoal_SSL_OP_NO_RENEGOTIATION() | shoal_SSL_OP_NO_COMPRESSION() | shoal_SSL_OP_NO_TICKET()
                | shoal_SSL_OP_CIPHER_SERVER_PREFERENCE()
        )
        _ = SSL_CTX_set_num_tickets(pointer, 0)
        // AES-128-GCM first (OpenSSL's default puts AES-256-GCM first): as
        // strong as the P-256 keys that guard it, and about a quarter faster
        // with AES-NI, which is what bulk transfer between nodes spends its
        // time on. AES-256-GCM and ChaCha20-Poly1305 stay allowed.
        guard SSL_CTX_set_ciphersuites(pointer, Self.tls13CipherSuites) == 1,
              SSL_CTX_set_cipher_list(pointer, Self.tls12Ciphers) == 1
        else { throw fail("setting cipher suites") }
        // Free idle read/write buffers: thousands of mostly idle connections.
        // Send exactly the configured chain: no silent completion from the
        // trust store, so what a joining node sees is what we configured.
        _ = shoal_SSL_CTX_set_mode(pointer, Int(SSL_MODE_RELEASE_BUFFERS | SSL_MODE_NO_AUTO_CHAIN))
        _ = shoal_SSL_CTX_set_session_cache_mode(pointer, Int(SSL_SESS_CACHE_OFF))

        if let leaf = configuration.certificateChain.first {
            guard let key = configuration.privateKey else {
                throw .invalidConfiguration("a certificate was given without its private key")
            }
            guard SSL_CTX_use_certificate(pointer, leaf.pointer) == 1 else { throw fail("using certificate \(leaf.subject)") }
            for intermediate in configuration.certificateChain.dropFirst() {
                guard shoal_SSL_CTX_add1_chain_cert(pointer, intermediate.pointer) == 1 else { throw fail("adding chain certificate") }
            }
            guard SSL_CTX_use_PrivateKey(pointer, key.pointer) == 1, SSL_CTX_check_private_key(pointer) == 1 else {
                throw fail("the private key does not match certificate \(leaf.subject)")
            }
        } else if side == .server {
            throw .invalidConfiguration("a server needs a certificate and key")
        }

        if let digest = configuration.pinnedRootDigest {
            guard side == .client else { throw .invalidConfiguration("a pinned root digest is for joining clients only") }
            guard digest.utf8.count == 64 else { throw .invalidConfiguration("pinned root digest must be 64 hex digits") }
            // OpenSSL still checks the server's proof of its key (CertificateVerify);
            // TLSConnection checks the chain against the pinned root right after the
            // handshake, before any application data.
            SSL_CTX_set_verify(pointer, SSL_VERIFY_NONE, nil)
            return
        }
        guard !configuration.trustedRoots.isEmpty else {
            throw .invalidConfiguration("no trusted root: pass the cluster's root CA certificate")
        }
        guard let store = SSL_CTX_get_cert_store(pointer) else { throw fail("SSL_CTX_get_cert_store") }
        for root in configuration.trustedRoots {
            guard X509_STORE_add_cert(store, root.pointer) == 1 else { throw fail("trusting \(root.subject)") }
        }
        // Mutual authentication on both sides; no hostname check (identity is the subject).
        let requireCertificate = side == .client || configuration.clientCertificates == .required
        SSL_CTX_set_verify(pointer, SSL_VERIFY_PEER | (requireCertificate ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), nil)
        SSL_CTX_set_verify_depth(pointer, TLSConfiguration.maxVerifyDepth)
    }
}
