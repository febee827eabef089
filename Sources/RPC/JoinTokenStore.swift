import Foundation
import Net

/// The cluster's current join tokens, one per role, held by managers.
///
/// Rotating a role's token makes the old one useless at once: joins are
/// checked against the current token only. Secrets are compared in constant
/// time (`JoinToken.hasSameSecret`), so response timing reveals nothing
/// about how much of a guess matched.
public final class JoinTokenStore: @unchecked Sendable {
    private let root: Certificate
    private let lock = NSLock()
    private var tokens: [NodeRole: JoinToken] // guarded by `lock`

    /// Fresh tokens for every role of the cluster whose CA is `root`.
    public convenience init(root: Certificate) {
        var tokens: [NodeRole: JoinToken] = [:]
        for role in NodeRole.allCases { tokens[role] = JoinToken.generate(root: root) }
        self.init(root: root, tokens: tokens)
    }

    /// Existing tokens (restored from the cluster's state); every role must
    /// have one, and each must pin `root`.
    public init(root: Certificate, tokens: [NodeRole: JoinToken]) {
        for role in NodeRole.allCases {
            precondition(tokens[role]?.pins(root) == true, "the \(role.rawValue) join token is missing or pins another CA than \(root.subject)")
        }
        self.root = root
        self.tokens = tokens
    }

    /// The token to hand to a node that should join as `role`.
    public func token(for role: NodeRole) -> JoinToken {
        lock.withLock { tokens[role]! }
    }

    /// Replaces `role`'s token with a fresh one and returns it; the old one is
    /// refused from now on. Nodes that already joined are not affected.
    @discardableResult
    public func rotate(_ role: NodeRole) -> JoinToken {
        let fresh = JoinToken.generate(root: root)
        lock.withLock { tokens[role] = fresh }
        return fresh
    }

    /// Installs `token` as `role`'s current token (a rotation another manager
    /// made, learned from the replicated state); the previous one is refused
    /// from now on.
    public func replace(_ role: NodeRole, with token: JoinToken) {
        precondition(token.pins(root), "the \(role.rawValue) join token pins another CA than \(root.subject)")
        lock.withLock { tokens[role] = token }
    }

    /// Whether `secret` is the current secret of `role`'s token (and only of
    /// that role's: a worker token never admits a manager).
    public func verify(secret: String, for role: NodeRole) -> Bool {
        let current = token(for: role)
        guard let presented = try? JoinToken(rootDigest: current.rootDigest, secret: secret) else { return false }
        return current.hasSameSecret(as: presented)
    }
}
