import Posix
import COpenSSL
import Foundation

/// An X.509 certificate (owns one `X509`). Immutable once built or parsed.
public final class Certificate: @unchecked Sendable, CustomStringConvertible {
    // Only read after construction; OpenSSL's X509 getters are thread-safe
    // on a fully built certificate (the extension cache is filled under a lock).
    let pointer: OpaquePointer

    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    /// Shares a certificate OpenSSL hands out with its own reference (up_ref).
    init(retaining pointer: OpaquePointer) {
        X509_up_ref(pointer)
        self.pointer = pointer
    }

    deinit {
        X509_free(pointer)
    }

    /// Parses one PEM certificate.
    public convenience init(pemEncoded pem: String) throws(PKIError) {
        let bio = MemoryBIO(Array(pem.utf8))
        OpenSSLErrorQueue.clear()
        guard let certificate = PEM_read_bio_X509(bio.pointer, nil, nil, nil) else {
            throw .invalidPEM(kind: "certificate", details: OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))
        }
        self.init(taking: certificate)
    }

    /// Reads a PEM certificate file.
    public static func read(fromFile path: String) throws(PKIError) -> Certificate {
        do {
            return try Certificate(pemEncoded: String(decoding: try SecretFile.read(path), as: UTF8.self))
        } catch let error as PKIError {
            throw error
        } catch let error as SystemError {
            throw .file(error)
        } catch {
            preconditionFailure("unexpected error reading \(path): \(error)")
        }
    }

    /// Writes the certificate as PEM (mode 0644: certificates are public).
    public func write(toFile path: String) throws(PKIError) {
        do {
            try SecretFile.write(Array(pemEncoded.utf8), to: path, mode: 0o644)
        } catch let error as SystemError {
            throw .file(error)
        } catch {
            preconditionFailure("unexpected error writing \(path): \(error)")
        }
    }

    public var pemEncoded: String {
        let bio = MemoryBIO()
        let written = PEM_write_bio_X509(bio.pointer, pointer)
        precondition(written == 1, "PEM_write_bio_X509 to memory failed: \(OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))")
        return bio.string
    }

    public var derEncoded: [UInt8] {
        let length = i2d_X509(pointer, nil)
        precondition(length > 0, "i2d_X509 failed on a valid certificate")
        var bytes = [UInt8](repeating: 0, count: Int(length))
        bytes.withUnsafeMutableBufferPointer { buffer in
            var cursor: UnsafeMutablePointer<UInt8>? = buffer.baseAddress
            _ = i2d_X509(pointer, &cursor)
        }
        return bytes
    }

    /// SHA-256 of the DER encoding as 64 lowercase hex digits: how a join
    /// token pins the root CA.
    public var sha256Digest: String {
        var digest = [UInt8](repeating: 0, count: Int(SHA256_DIGEST_LENGTH))
        var length: UInt32 = 0
        let result = X509_digest(pointer, EVP_sha256(), &digest, &length)
        precondition(result == 1 && length == 32, "X509_digest(SHA-256) failed")
        return digest.map { String(format: "%02x", $0) }.joined()
    }

    public var subject: DistinguishedName {
        DistinguishedName(borrowing: X509_get_subject_name(pointer))
    }

    public var issuer: DistinguishedName {
        DistinguishedName(borrowing: X509_get_issuer_name(pointer))
    }

    /// The Shoal node this certificate names, if it is a node certificate.
    public var nodeIdentity: NodeIdentity? { NodeIdentity(subject: subject) }

    public var notBefore: Date { Self.date(X509_get0_notBefore(pointer)) }
    public var notAfter: Date { Self.date(X509_get0_notAfter(pointer)) }

    /// Whether basicConstraints says CA:TRUE.
    public var isCertificateAuthority: Bool {
        X509_get_extension_flags(pointer) & UInt32(EXFLAG_CA) != 0
    }

    /// The keyUsage bits (`KU_*`), or nil when the extension is absent.
    public var keyUsage: UInt32? {
        X509_get_extension_flags(pointer) & UInt32(EXFLAG_KUSAGE) != 0 ? X509_get_key_usage(pointer) : nil
    }

    /// Whether the extendedKeyUsage extension allows TLS server and client use.
    public var allowsServerAndClientAuthentication: Bool {
        let flags = X509_get_extended_key_usage(pointer)
        return flags & UInt32(XKU_SSL_SERVER) != 0 && flags & UInt32(XKU_SSL_CLIENT) != 0
    }

    /// X.509 version as written in the certificate (3 for v3).
    public var version: Int { Int(X509_get_version(pointer)) + 1 }

    public var serialNumberHex: String {
        guard let serial = X509_get0_serialNumber(pointer), let number = ASN1_INTEGER_to_BN(serial, nil) else { return "" }
        defer { BN_free(number) }
        guard let hex = BN_bn2hex(number) else { return "" }
        defer { shoal_OPENSSL_free(hex) }
        return String(cString: hex)
    }

    /// Whether `issuer`'s key signed this certificate.
    public func isSigned(by issuer: Certificate) -> Bool {
        guard let key = X509_get0_pubkey(issuer.pointer) else { return false }
        OpenSSLErrorQueue.clear()
        defer { OpenSSLErrorQueue.clear() }
        return X509_verify(pointer, key) == 1
    }

    /// Whether `key` is this certificate's private key.
    public func matches(_ key: PrivateKey) -> Bool {
        OpenSSLErrorQueue.clear()
        defer { OpenSSLErrorQueue.clear() }
        return X509_check_private_key(pointer, key.pointer) == 1
    }

    public var description: String {
        "certificate \(subject) issued by \(issuer), valid \(notBefore) to \(notAfter)"
    }

    private static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date {
        var parts = tm()
        guard let time, ASN1_TIME_to_tm(time, &parts) == 1 else { return .distantPast }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&parts)))
    }
}
