import Posix
import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// An ECDSA P-256 private key (owns one `EVP_PKEY`).
///
/// Keys never leave a node except as PEM written with mode 0600.
public final class PrivateKey: @unchecked Sendable {
    // An EVP_PKEY is immutable once generated or parsed; OpenSSL allows
    // concurrent signing with it, so sharing across threads is safe.
    let pointer: OpaquePointer

    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(pointer)
    }

    /// A fresh P-256 key from OpenSSL's CSPRNG.
    public static func generateP256() throws(PKIError) -> PrivateKey {
        OpenSSLErrorQueue.clear()
        guard let key = shoal_EVP_EC_gen_P256() else {
            throw .openSSL(operation: "generating a P-256 key", details: OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))
        }
        return PrivateKey(taking: key)
    }

    /// Parses an unencrypted PEM private key (PKCS#8 or SEC1).
    public convenience init(pemEncoded pem: String) throws(PKIError) {
        let bio = MemoryBIO(Array(pem.utf8))
        OpenSSLErrorQueue.clear()
        guard let key = PEM_read_bio_PrivateKey(bio.pointer, nil, nil, nil) else {
            throw .invalidPEM(kind: "private key", details: OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))
        }
        self.init(taking: key)
    }

    /// The key as unencrypted PKCS#8 PEM.
    public func pemEncoded() throws(PKIError) -> String {
        let bio = MemoryBIO()
        OpenSSLErrorQueue.clear()
        guard PEM_write_bio_PrivateKey(bio.pointer, pointer, nil, nil, 0, nil, nil) == 1 else {
            throw .openSSL(operation: "encoding a private key as PEM", details: OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))
        }
        return bio.string
    }

    /// Writes the key to `path` with mode 0600, atomically (a temporary file
    /// in the same directory, fsynced, then renamed over `path`).
    public func write(toFile path: String) throws(PKIError) {
        do {
            try SecretFile.write(Array(try pemEncoded().utf8), to: path)
        } catch let error as SystemError {
            throw .file(error)
        } catch let error as PKIError {
            throw error
        } catch {
            preconditionFailure("unexpected error writing \(path): \(error)")
        }
    }

    /// Reads a PEM key written by ``write(toFile:)``.
    public static func read(fromFile path: String) throws(PKIError) -> PrivateKey {
        let bytes: [UInt8]
        do {
            bytes = try SecretFile.read(path)
        } catch let error as SystemError {
            throw .file(error)
        } catch {
            preconditionFailure("unexpected error reading \(path): \(error)")
        }
        return try PrivateKey(pemEncoded: String(decoding: bytes, as: UTF8.self))
    }
}
