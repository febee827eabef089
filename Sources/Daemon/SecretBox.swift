import COpenSSL
import Foundation
import Net

/// Encrypts secret data at rest, before it is proposed to Raft: AES-256-GCM
/// with a random 96-bit nonce per secret, through OpenSSL's EVP interface.
/// The 32-byte key lives on managers only (`certs/secrets.key`, mode 0600)
/// and is handed to a joining manager over mutual TLS; the Raft log and its
/// snapshots only ever hold `version ‖ nonce ‖ ciphertext ‖ tag`.
struct SecretBox: Sendable {
    static let keyBytes = 32
    static let nonceBytes = 12
    static let tagBytes = 16
    static let formatVersion: UInt8 = 1

    let key: [UInt8]

    init(key: [UInt8]) {
        precondition(key.count == Self.keyBytes, "an AES-256 key has \(Self.keyBytes) bytes, got \(key.count)")
        self.key = key
    }

    static func generateKey() -> [UInt8] { SecureRandom.bytes(keyBytes) }

    enum Failure: Error, CustomStringConvertible {
        case openSSL(String)
        case malformed
        case authenticationFailed
        var description: String {
            switch self {
            case .openSSL(let call): return "OpenSSL \(call) failed while encrypting a secret"
            case .malformed: return "stored secret data is not in the expected format"
            case .authenticationFailed: return "stored secret data does not authenticate with this cluster's key"
            }
        }
    }

    func seal(_ plaintext: [UInt8]) throws -> [UInt8] {
        let nonce = SecureRandom.bytes(Self.nonceBytes)
        guard let context = EVP_CIPHER_CTX_new() else { throw Failure.openSSL("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(context) }
        guard EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, nil, nil) == 1,
              EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, Int32(Self.nonceBytes), nil) == 1,
              EVP_EncryptInit_ex(context, nil, nil, key, nonce) == 1 else { throw Failure.openSSL("EVP_EncryptInit_ex") }
        var ciphertext = [UInt8](repeating: 0, count: plaintext.count + 16)
        var length: Int32 = 0
        if !plaintext.isEmpty {
            guard EVP_EncryptUpdate(context, &ciphertext, &length, plaintext, Int32(plaintext.count)) == 1 else { throw Failure.openSSL("EVP_EncryptUpdate") }
        }
        var total = Int(length)
        var finalLength: Int32 = 0
        let finalOK = ciphertext.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(context, $0.baseAddress! + total, &finalLength) }
        guard finalOK == 1 else { throw Failure.openSSL("EVP_EncryptFinal_ex") }
        total += Int(finalLength)
        var tag = [UInt8](repeating: 0, count: Self.tagBytes)
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(Self.tagBytes), &tag) == 1 else { throw Failure.openSSL("EVP_CTRL_GCM_GET_TAG") }
        return [Self.formatVersion] + nonce + ciphertext.prefix(total) + tag
    }

    func open(_ sealed: [UInt8]) throws -> [UInt8] {
        guard sealed.count >= 1 + Self.nonceBytes + Self.tagBytes, sealed[0] == Self.formatVersion else { throw Failure.malformed }
        let nonce = Array(sealed[1..<(1 + Self.nonceBytes)])
        let ciphertext = Array(sealed[(1 + Self.nonceBytes)..<(sealed.count - Self.tagBytes)])
        var tag = Array(sealed.suffix(Self.tagBytes))
        guard let context = EVP_CIPHER_CTX_new() else { throw Failure.openSSL("EVP_CIPHER_CTX_new") }
        defer { EVP_CIPHER_CTX_free(context) }
        guard EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nil, nil, nil) == 1,
              EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_IVLEN, Int32(Self.nonceBytes), nil) == 1,
              EVP_DecryptInit_ex(context, nil, nil, key, nonce) == 1 else { throw Failure.openSSL("EVP_DecryptInit_ex") }
        var plaintext = [UInt8](repeating: 0, count: ciphertext.count + 16)
        var length: Int32 = 0
        if !ciphertext.isEmpty {
            guard EVP_DecryptUpdate(context, &plaintext, &length, ciphertext, Int32(ciphertext.count)) == 1 else { throw Failure.openSSL("EVP_DecryptUpdate") }
        }
        guard EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(Self.tagBytes), &tag) == 1 else { throw Failure.openSSL("EVP_CTRL_GCM_SET_TAG") }
        var finalLength: Int32 = 0
        let total = Int(length)
        let ok = plaintext.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(context, $0.baseAddress! + total, &finalLength) }
        guard ok == 1 else { throw Failure.authenticationFailed }
        return Array(plaintext.prefix(total + Int(finalLength)))
    }
}
