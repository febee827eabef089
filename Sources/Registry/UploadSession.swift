import Foundation
import Images

/// One blob upload in progress on the registry server: what the client has
/// sent so far, hashed as it streamed into the content store.
///
/// The ``BlobWriter`` is created at the first byte: when that byte comes with
/// the final `PUT ?digest=` (POST then PUT with the whole blob), the writer
/// knows the digest and verifies it itself; when it comes with a `PATCH`
/// (skopeo, chunked clients), the session hashes alongside, checks the digest
/// the `PUT` names before committing, and aborts on a mismatch, so a wrong
/// digest never leaves a blob behind.
///
/// A session serves one request at a time (``isBusy``): two requests racing
/// on one upload would interleave bytes.
final class UploadSession: @unchecked Sendable {
    let id: String
    let repository: String
    /// Bytes received so far (the next chunk must start here).
    var offset: Int64 = 0
    var writer: BlobWriter?
    /// Set when bytes arrived before the digest was known.
    var hasher: SHA256Hasher?
    var isBusy = false
    var lastActive: ContinuousClock.Instant

    init(id: String, repository: String, now: ContinuousClock.Instant) {
        self.id = id
        self.repository = repository
        lastActive = now
    }

    deinit {
        writer?.abort()
    }
}

/// The registry's open uploads, by session id. Thread-safe.
final class UploadSessions: @unchecked Sendable {
    private let lock = NSLock()
    private var sessions: [String: UploadSession] = [:]
    let maximumSessions: Int
    let idleTimeout: Duration

    init(maximumSessions: Int, idleTimeout: Duration) {
        self.maximumSessions = maximumSessions
        self.idleTimeout = idleTimeout
    }

    /// Starts a session; nil when too many are open (after dropping expired ones).
    func start(repository: String) -> UploadSession? {
        let now = ContinuousClock.now
        var expired: [UploadSession] = []
        defer { expired.removeAll() } // writers abort in deinit, outside the lock
        return lock.withLock {
            for (id, session) in sessions where !session.isBusy && now - session.lastActive > idleTimeout {
                expired.append(session)
                sessions.removeValue(forKey: id)
            }
            guard sessions.count < maximumSessions else { return nil }
            let session = UploadSession(id: UUID().uuidString.lowercased(), repository: repository, now: now)
            sessions[session.id] = session
            return session
        }
    }

    enum Claim {
        case claimed(UploadSession)
        case unknown
        case busy
    }

    /// Takes the session for one request; ``release(_:)`` or ``finish(_:)`` it after.
    func claim(id: String, repository: String) -> Claim {
        lock.withLock {
            guard let session = sessions[id], session.repository == repository else { return .unknown }
            if session.isBusy { return .busy }
            session.isBusy = true
            return .claimed(session)
        }
    }

    func release(_ session: UploadSession) {
        lock.withLock {
            session.isBusy = false
            session.lastActive = .now
        }
    }

    /// Ends the session (committed, cancelled or failed).
    func finish(_ session: UploadSession) {
        _ = lock.withLock { sessions.removeValue(forKey: session.id) }
    }

    var count: Int { lock.withLock { sessions.count } }
}
