import Foundation
import HTTP
import Images
import Net

/// Who may use the registry and how they prove it: nobody (open), HTTP
/// basic auth on every request, or basic auth once at the token endpoint
/// and a bearer token after (the `WWW-Authenticate: Bearer` flow clients
/// know from Docker Hub).
///
/// Passwords are kept only as salted SHA-256. A verified `Authorization`
/// value is cached (by its own salted hash) so a password is checked once
/// per client, not on every request: registries that run bcrypt per request
/// spend most of their CPU there. Tokens are random, opaque, held in memory
/// and expire after ``tokenLifetime``.
public final class RegistryAuthenticator: @unchecked Sendable {
    public enum Mode: Sendable, Equatable {
        case basic
        /// Bearer tokens from `GET /token` (basic credentials there).
        case token
    }

    public let mode: Mode
    /// `service` in the bearer challenge.
    public static let service = "shoal-registry"
    /// How long an issued token stays valid.
    public static let tokenLifetime: Duration = .seconds(3600)
    /// Verified credentials cached at most (oldest forgotten first).
    static let maximumCachedCredentials = 1024
    /// Tokens held at most (expired ones dropped first).
    static let maximumTokens = 65_536

    private let salt: [UInt8]
    /// user → salted hash of the password.
    private let passwords: [String: Digest]
    private let lock = NSLock()
    /// Salted hash of an accepted Authorization value → user.
    private var verified: [Digest: String] = [:]
    private var verifiedOrder: [Digest] = []
    private var tokens: [String: (user: String, expires: ContinuousClock.Instant)] = [:]

    /// `users` maps a user name to its password.
    public init(users: [String: String], mode: Mode = .basic) {
        self.mode = mode
        var salt = [UInt8](repeating: 0, count: 16)
        for index in salt.indices { salt[index] = UInt8.random(in: 0...255) }
        self.salt = salt
        passwords = users.mapValues { Self.hash(salt, Array($0.utf8)) }
    }

    /// Parses `user:password` (the `--user` option).
    public static func parseUser(_ text: String) -> (user: String, password: String)? {
        guard let colon = text.firstIndex(of: ":"), colon != text.startIndex else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    private static func hash(_ salt: [UInt8], _ bytes: [UInt8]) -> Digest {
        Digest.of(salt + bytes)
    }

    /// The user a `Basic` Authorization value names, if its password is right.
    func verifyBasic(_ authorization: String?) -> String? {
        guard let authorization, authorization.count < 4096 else { return nil }
        let key = Self.hash(salt, Array(authorization.utf8))
        if let user = lock.withLock({ verified[key] }) { return user }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic",
              let decoded = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8),
              let (user, password) = Self.parseUser(text),
              let expected = passwords[user]
        else { return nil }
        // Compare digests of salted values: timing reveals nothing about the password.
        guard Self.hash(salt, Array(password.utf8)) == expected else { return nil }
        lock.withLock {
            if verified[key] == nil {
                verified[key] = user
                verifiedOrder.append(key)
                if verifiedOrder.count > Self.maximumCachedCredentials {
                    verified.removeValue(forKey: verifiedOrder.removeFirst())
                }
            }
        }
        return user
    }

    /// Issues a token for `user`.
    func issueToken(for user: String) -> String {
        var bytes = [UInt8](repeating: 0, count: 32)
        for index in bytes.indices { bytes[index] = UInt8.random(in: 0...255) }
        let token = Digest.of(bytes).hex
        let now = ContinuousClock.now
        lock.withLock {
            if tokens.count >= Self.maximumTokens {
                tokens = tokens.filter { $0.value.expires > now }
                if tokens.count >= Self.maximumTokens, let oldest = tokens.min(by: { $0.value.expires < $1.value.expires }) {
                    tokens.removeValue(forKey: oldest.key)
                }
            }
            tokens[token] = (user, now + Self.tokenLifetime)
        }
        return token
    }

    func verifyBearer(_ authorization: String?) -> String? {
        guard let authorization else { return nil }
        let parts = authorization.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = String(parts[1]).trimmingCharacters(in: .whitespaces)
        return lock.withLock {
            guard let entry = tokens[token] else { return nil }
            guard entry.expires > .now else {
                tokens.removeValue(forKey: token)
                return nil
            }
            return entry.user
        }
    }

    /// Checks a /v2 request; throws the 401 with the right challenge.
    func authorize(_ request: HTTPServerRequest, scope: String?, realm: String) throws(RegistryError) {
        let authorization = request.headers["Authorization"]
        switch mode {
        case .basic:
            if verifyBasic(authorization) != nil { return }
            throw RegistryError(.unauthorized, status: .unauthorized, "authentication required",
                                headers: ["WWW-Authenticate": "Basic realm=\"\(Self.service)\", charset=\"UTF-8\""])
        case .token:
            if verifyBearer(authorization) != nil { return }
            var challenge = "Bearer realm=\"\(realm)\",service=\"\(Self.service)\""
            if let scope { challenge += ",scope=\"\(scope)\"" }
            throw RegistryError(.unauthorized, status: .unauthorized, "authentication required",
                                headers: ["WWW-Authenticate": challenge])
        }
    }
}
