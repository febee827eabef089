import COpenSSL
import Foundation

/// The cluster's root CA: a self-signed ECDSA P-256 certificate and its key.
///
/// Managers hold it and issue node certificates from CSRs. Time is an input
/// (`now`), so tests issue expired or not-yet-valid certificates on purpose.
public final class CertificateAuthority: Sendable {
    /// Lifetime of a root CA certificate (20 years, as Docker Swarm's).
    public static let defaultRootLifetime: Duration = .seconds(20 * 365 * 86_400)
    /// Lifetime of a node certificate unless told otherwise.
    public static let defaultNodeCertificateLifetime: Duration = .seconds(90 * 86_400)
    /// Backdating of notBefore so that peers with slightly slow clocks accept
    /// a fresh certificate; at most a tenth of the lifetime (see `build`).
    public static let clockSkewAllowance: Duration = .seconds(5 * 60)
    /// CN of every root CA certificate.
    public static let rootCommonName = "shoal-root-ca"

    public let certificate: Certificate
    public let key: PrivateKey

    /// The cluster id, carried as the root's O and copied into every node certificate.
    public var clusterID: String { certificate.subject.organization ?? "" }

    /// Uses an existing root. Throws if `key` is not `certificate`'s key or the
    /// certificate is not a CA.
    public init(certificate: Certificate, key: PrivateKey) throws(PKIError) {
        guard certificate.isCertificateAuthority, let usage = certificate.keyUsage, usage & UInt32(KU_KEY_CERT_SIGN) != 0 else {
            throw .notACertificateAuthority(subject: certificate.subject.description)
        }
        guard certificate.matches(key) else { throw .keyDoesNotMatchCertificate }
        self.certificate = certificate
        self.key = key
    }

    /// Creates a new root CA for `clusterID` (`shoal init`).
    public static func createRoot(
        clusterID: String,
        now: Date = Date(),
        lifetime: Duration = defaultRootLifetime
    ) throws(PKIError) -> CertificateAuthority {
        try DistinguishedName.validate(clusterID, field: "cluster id")
        let key = try PrivateKey.generateP256()
        let subject = DistinguishedName(commonName: rootCommonName, organization: clusterID)
        let certificate = try build(
            subject: subject, publicKeyOf: key, issuer: nil, signer: key, now: now, lifetime: lifetime,
            extensions: [
                (NID_basic_constraints, "critical,CA:TRUE,pathlen:0"),
                (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
            ]
        )
        return try CertificateAuthority(certificate: certificate, key: key)
    }

    /// Issues a node certificate for the key in `request`: CN = `nodeID`,
    /// OU = `role`, O = this cluster. The request's own subject is ignored; its
    /// signature must verify (proof that the requester holds the key).
    public func issue(
        for request: CertificateSigningRequest,
        nodeID: String,
        role: NodeRole,
        now: Date = Date(),
        lifetime: Duration = defaultNodeCertificateLifetime
    ) throws(PKIError) -> Certificate {
        try DistinguishedName.validate(nodeID, field: "node id")
        guard request.hasValidSignature, let publicKey = X509_REQ_get0_pubkey(request.pointer) else {
            throw .invalidSignatureOnRequest
        }
        let subject = DistinguishedName(commonName: nodeID, organizationalUnit: role.rawValue, organization: clusterID)
        return try Self.build(
            subject: subject, publicKey: publicKey, issuer: certificate, signer: key, now: now, lifetime: lifetime,
            extensions: [
                (NID_basic_constraints, "critical,CA:FALSE"),
                (NID_key_usage, "critical,digitalSignature"),
                (NID_ext_key_usage, "serverAuth,clientAuth"),
                (NID_subject_key_identifier, "hash"),
                (NID_authority_key_identifier, "keyid:always"),
            ]
        )
    }

    /// Issues a fresh key and certificate in one step (a manager's own
    /// certificate at `shoal init`, or tests).
    public func issueNodeCredentials(
        nodeID: String,
        role: NodeRole,
        now: Date = Date(),
        lifetime: Duration = defaultNodeCertificateLifetime
    ) throws(PKIError) -> (certificate: Certificate, key: PrivateKey) {
        let key = try PrivateKey.generateP256()
        let request = try CertificateSigningRequest.create(nodeID: nodeID, key: key)
        return (try issue(for: request, nodeID: nodeID, role: role, now: now, lifetime: lifetime), key)
    }

    /// OU of client certificates (`shoal ca issue-client`): a remote CLI's.
    /// Not a ``NodeRole``, so RPC methods never admit it; the control API does.
    public static let clientOrganizationalUnit = "client"

    /// Issues a key and a client-only certificate (CN = `name`, OU = client,
    /// O = this cluster, extended key usage clientAuth) for a remote CLI.
    public func issueClientCredentials(
        name: String,
        now: Date = Date(),
        lifetime: Duration = defaultNodeCertificateLifetime
    ) throws(PKIError) -> (certificate: Certificate, key: PrivateKey) {
        try DistinguishedName.validate(name, field: "client name")
        let clientKey = try PrivateKey.generateP256()
        let subject = DistinguishedName(commonName: name, organizationalUnit: Self.clientOrganizationalUnit, organization: clusterID)
        let issued = try Self.build(
            subject: subject, publicKeyOf: clientKey, issuer: certificate, signer: key, now: now, lifetime: lifetime,
            extensions: [
                (NID_basic_constraints, "critical,CA:FALSE"),
                (NID_key_usage, "critical,digitalSignature"),
                (NID_ext_key_usage, "clientAuth"),
                (NID_subject_key_identifier, "hash"),
                (NID_authority_key_identifier, "keyid:always"),
            ]
        )
        return (issued, clientKey)
    }

    private static func build(
        subject: DistinguishedName,
        publicKeyOf key: PrivateKey,
        issuer: Certificate?,
        signer: PrivateKey,
        now: Date,
        lifetime: Duration,
        extensions: [(Int32, String)]
    ) throws(PKIError) -> Certificate {
        try build(subject: subject, publicKey: key.pointer, issuer: issuer, signer: signer, now: now, lifetime: lifetime, extensions: extensions)
    }

    private static func build(
        subject: DistinguishedName,
        publicKey: OpaquePointer,
        issuer: Certificate?,
        signer: PrivateKey,
        now: Date,
        lifetime: Duration,
        extensions: [(Int32, String)]
    ) throws(PKIError) -> Certificate {
        precondition(lifetime > .zero, "certificate lifetime must be positive, got \(lifetime)")
        guard let x509 = X509_new() else { preconditionFailure("X509_new failed: out of memory") }
        let certificate = Certificate(taking: x509)
        let name = try subject.makeX509Name()
        defer { X509_NAME_free(name) }
        // A short-lived certificate (tests, tight rotation policies) is
        // backdated by a tenth of its lifetime at most: renewal falls at 50–80%
        // of notBefore…notAfter, and a full 5-minute backdating would put that
        // point before the issue time, so each renewal would be due at once.
        let skewSeconds = min(clockSkewAllowance.components.seconds, lifetime.components.seconds / 10)
        let start = Int(now.timeIntervalSince1970) - Int(skewSeconds)
        let end = Int(now.timeIntervalSince1970) + Int(lifetime.components.seconds)
        // 63 random bits: unique serials without a counter to replicate.
        let serial = SecureRandom.bytes(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } & 0x7fff_ffff_ffff_ffff
        OpenSSLErrorQueue.clear()
        let ok = X509_set_version(x509, 2) == 1 // v3
            && ASN1_INTEGER_set_uint64(X509_get_serialNumber(x509), serial) == 1
            && ASN1_TIME_set(X509_getm_notBefore(x509), time_t(start)) != nil
            && ASN1_TIME_set(X509_getm_notAfter(x509), time_t(end)) != nil
            && X509_set_subject_name(x509, name) == 1
            && X509_set_issuer_name(x509, issuer.map { X509_get_subject_name($0.pointer) } ?? name) == 1
            && X509_set_pubkey(x509, publicKey) == 1
        guard ok else {
            throw .openSSL(operation: "building certificate for \(subject)", details: OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))
        }
        var context = X509V3_CTX()
        X509V3_set_ctx(&context, issuer?.pointer ?? x509, x509, nil, nil, 0)
        for (nid, value) in extensions {
            guard let ext = X509V3_EXT_conf_nid(nil, &context, nid, value) else {
                throw .openSSL(operation: "making extension \(value)", details: OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))
            }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(x509, ext, -1) == 1 else {
                throw .openSSL(operation: "adding extension \(value)", details: OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))
            }
        }
        guard X509_sign(x509, signer.pointer, EVP_sha256()) > 0 else {
            throw .openSSL(operation: "signing certificate for \(subject)", details: OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))
        }
        return certificate
    }
}
