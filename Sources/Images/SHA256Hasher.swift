import COpenSSL

/// Streaming SHA-256 on OpenSSL's EVP interface. Owns exactly one
/// `EVP_MD_CTX`. Not thread-safe: one writer feeds it.
public final class SHA256Hasher {
    private let context: OpaquePointer
    private var finished = false
    /// Bytes hashed so far.
    public private(set) var byteCount: Int64 = 0

    public init() {
        guard let context = EVP_MD_CTX_new() else {
            preconditionFailure("EVP_MD_CTX_new failed: out of memory")
        }
        guard EVP_DigestInit_ex(context, EVP_sha256(), nil) == 1 else {
            preconditionFailure("EVP_DigestInit_ex(sha256) failed: OpenSSL has no SHA-256")
        }
        self.context = context
    }

    deinit {
        EVP_MD_CTX_free(context)
    }

    public func update(_ bytes: UnsafeRawBufferPointer) {
        precondition(!finished, "SHA256Hasher.update after finish")
        guard bytes.count > 0 else { return }
        // EVP_DigestUpdate only fails on a misconfigured context.
        let status = EVP_DigestUpdate(context, bytes.baseAddress, bytes.count)
        precondition(status == 1, "EVP_DigestUpdate failed")
        byteCount += Int64(bytes.count)
    }

    /// The digest of everything hashed. Call once.
    public func finish() -> Digest {
        precondition(!finished, "SHA256Hasher.finish called twice")
        finished = true
        var output = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let status = EVP_DigestFinal_ex(context, &output, &length)
        precondition(status == 1 && length == 32, "EVP_DigestFinal_ex failed")
        return Digest(sha256: output)
    }
}
