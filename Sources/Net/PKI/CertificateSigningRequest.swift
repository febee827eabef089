import COpenSSL

/// A PKCS#10 certificate signing request (owns one `X509_REQ`).
///
/// A joining node makes one with its own fresh key; the CA takes only the
/// public key and the proof of possession from it and decides the subject
/// (node id, role, cluster) itself.
public final class CertificateSigningRequest: @unchecked Sendable {
    let pointer: OpaquePointer

    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        X509_REQ_free(pointer)
    }

    /// A request for `key` with subject CN = `nodeID`, signed by `key`.
    public static func create(nodeID: String, key: PrivateKey) throws(PKIError) -> CertificateSigningRequest {
        try DistinguishedName.validate(nodeID, field: "node id")
        guard let request = X509_REQ_new() else { preconditionFailure("X509_REQ_new failed: out of memory") }
        let csr = CertificateSigningRequest(taking: request)
        let name = try DistinguishedName(commonName: nodeID).makeX509Name()
        defer { X509_NAME_free(name) }
        OpenSSLErrorQueue.clear()
        guard X509_REQ_set_version(request, 0) == 1,
              X509_REQ_set_subject_name(request, name) == 1,
              X509_REQ_set_pubkey(request, key.pointer) == 1,
              X509_REQ_sign(request, key.pointer, EVP_sha256()) > 0
        else {
            throw .openSSL(operation: "signing a certificate request", details: OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))
        }
        return csr
    }

    public convenience init(pemEncoded pem: String) throws(PKIError) {
        let bio = MemoryBIO(Array(pem.utf8))
        OpenSSLErrorQueue.clear()
        guard let request = PEM_read_bio_X509_REQ(bio.pointer, nil, nil, nil) else {
            throw .invalidPEM(kind: "certificate request", details: OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))
        }
        self.init(taking: request)
    }

    public var pemEncoded: String {
        let bio = MemoryBIO()
        let written = PEM_write_bio_X509_REQ(bio.pointer, pointer)
        precondition(written == 1, "PEM_write_bio_X509_REQ to memory failed: \(OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))")
        return bio.string
    }

    public var subject: DistinguishedName {
        DistinguishedName(borrowing: X509_REQ_get_subject_name(pointer))
    }

    /// Whether the request is signed by the key it carries (proof of possession).
    public var hasValidSignature: Bool {
        guard let key = X509_REQ_get0_pubkey(pointer) else { return false }
        OpenSSLErrorQueue.clear()
        defer { OpenSSLErrorQueue.clear() }
        return X509_REQ_verify(pointer, key) == 1
    }
}
