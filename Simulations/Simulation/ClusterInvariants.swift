/// The invariants of `shoal-sim cluster`, on top of ``RaftInvariants``:
/// what the cluster API promises its clients. Each is a named function that
/// throws an ``InvariantViolation`` naming it.
///
/// The committed log is the witness. Every write that commits has exactly one
/// entry, at one index; every read answers from the state at one applied
/// index. A history is linearizable when these positions respect real time
/// and every answer equals what sequential application in log order gives
/// (Herlihy & Wing: the log order is the linearization). Because the
/// positions are known, checking is linear after a sort, with no search.
struct ClusterInvariants {
    /// A committed cluster entry as first applied (``RaftInvariants`` checks
    /// that every other member applied the same bytes to the same state).
    struct Effect {
        var client: UInt64
        var sequence: UInt64
        var attempt: UInt64
        var outcome: ClusterOperation.Outcome
    }

    private(set) var effects: [UInt64: Effect] = [:]
    /// (client << 32 | sequence) -> the index of its committed entry.
    private var effectIndex: [UInt64: UInt64] = [:]
    /// Digest of the cluster snapshot bytes each index was snapshotted with.
    private var snapshotDigests: [UInt64: (member: UInt64, digest: UInt64)] = [:]

    static func key(client: UInt64, sequence: UInt64) -> UInt64 { (client << 32) | sequence }

    func effectIndex(client: UInt64, sequence: UInt64) -> UInt64? {
        effectIndex[Self.key(client: client, sequence: sequence)]
    }

    /// Records the first application of `index`; a call's second committed
    /// entry (a retry of an attempt that had in fact committed) is a violation:
    /// the client retried something that was not certainly refused.
    mutating func recordEffect(_ effect: Effect, at index: UInt64, time: UInt64) throws(InvariantViolation) {
        guard effects[index] == nil else { return }
        let key = Self.key(client: effect.client, sequence: effect.sequence)
        if let earlier = effectIndex[key] {
            throw InvariantViolation(
                invariant: "oneEffectPerCall",
                details: "client \(effect.client) call \(effect.sequence) committed at index \(earlier) and again (attempt \(effect.attempt)) at index \(index)",
                time: time)
        }
        effects[index] = effect
        effectIndex[key] = index
    }

    /// Every member that snapshots or restores the cluster state at one index
    /// holds the same bytes, and the bytes restore the very state they came from.
    mutating func equalSnapshots(member: UInt64, index: UInt64, snapshot: [UInt8], restoresEqual: Bool, time: UInt64) throws(InvariantViolation) {
        if !restoresEqual {
            throw InvariantViolation(
                invariant: "equalSnapshots", details: "member \(member)'s cluster snapshot at index \(index) does not restore the state it was taken from",
                time: time)
        }
        let digest = TraceHasher.digest(snapshot)
        if let record = snapshotDigests[index] {
            if record.digest != digest {
                throw InvariantViolation(
                    invariant: "equalSnapshots",
                    details: "member \(member)'s cluster snapshot at index \(index) has digest \(digest) but member \(record.member)'s had \(record.digest)",
                    time: time)
            }
        } else {
            snapshotDigests[index] = (member, digest)
        }
    }

    /// Compare-and-set holds in the committed log: a create succeeds only on
    /// an absent service, an update only when its expected version is the
    /// service's current one, and a version conflict only when it is not.
    /// So every successful update builds on the write right before it: none
    /// is lost.
    func noLostUpdate(calls: [UInt64: ClusterOperation], time: UInt64) throws(InvariantViolation) {
        var current: [UInt64: UInt64] = [:]
        for index in effects.keys.sorted() {
            let effect = effects[index]!
            guard let call = calls[Self.key(client: effect.client, sequence: effect.sequence)] else { continue }
            let before = current[call.service]
            switch effect.outcome {
            case .written(let version):
                let allowed = call.kind == .create ? before == nil : before == call.expectedVersion
                if !allowed || version != index {
                    throw InvariantViolation(
                        invariant: "noLostUpdate",
                        details: "index \(index): \(call) succeeded as version \(version) while service \(call.service) was at \(before.map { "v\($0)" } ?? "absent")",
                        time: time)
                }
                current[call.service] = index
            case .refused(let reason):
                let wrongly = (call.kind == .update && reason.hasPrefix("versionConflict") && before == call.expectedVersion)
                    || (call.kind == .create && reason == "alreadyExists" && before == nil)
                if wrongly {
                    throw InvariantViolation(
                        invariant: "noLostUpdate",
                        details: "index \(index): \(call) was refused (\(reason)) while service \(call.service) was at \(before.map { "v\($0)" } ?? "absent")",
                        time: time)
                }
            case .read, .absent:
                break
            }
        }
    }

    /// The history of API calls is linearizable, with the log as witness (see
    /// the type's comment): each answer is what the log says at the call's
    /// position, and a call that returned before another began sits earlier.
    ///
    /// Each service is its own object (every command touches one), and
    /// linearizability is local (Herlihy & Wing, Theorem 1): the check runs
    /// per service. A call that changed nothing — a read, a refused write —
    /// observed one version of its service, and may sit anywhere from that
    /// version's write to the next; it is placed at the earliest, the write
    /// it observed, which satisfies every constraint any placement could.
    func linearizableClusterHistory(_ history: [ClusterOperation], calls: [UInt64: ClusterOperation], time: UInt64) throws(InvariantViolation) {
        // Each service's writes in log order, to answer "what did index r hold".
        var writes: [UInt64: [(index: UInt64, image: String)]] = [:]
        for index in effects.keys.sorted() {
            let effect = effects[index]!
            guard case .written = effect.outcome, let call = calls[Self.key(client: effect.client, sequence: effect.sequence)] else { continue }
            writes[call.service, default: []].append((index, call.image))
        }
        func state(of service: UInt64, at index: UInt64) -> ClusterOperation.Outcome {
            guard let last = writes[service]?.last(where: { $0.index <= index }) else { return .absent }
            return .read(version: last.index, image: last.image)
        }
        func version(_ observed: ClusterOperation.Outcome) -> UInt64 {
            if case .read(let version, _) = observed { return version }
            return 0
        }
        func violation(_ details: String) -> InvariantViolation {
            InvariantViolation(invariant: "linearizableClusterHistory", details: details, time: time)
        }

        // Where each call may sit in its service's history.
        enum Placement {
            /// A write that took effect, at its index; nothing returned before it may sit at or after it.
            case write(UInt64)
            /// Observed this version (0: absent): sits right after that write.
            case observed(UInt64)
            /// Observed that the service exists (`alreadyExists`): anywhere from its creation on.
            case existing(since: UInt64)
            /// Observed that the service is absent (`notFound`): anywhere before its creation.
            case absent(until: UInt64)
        }
        func creation(of service: UInt64) -> UInt64 { writes[service]?.first?.index ?? .max }
        /// How a refusal (in the log or before it) places its call; nil when the state at `index` contradicts it.
        func placement(refused reason: String, _ operation: ClusterOperation, at index: UInt64) -> Placement? {
            let observed = state(of: operation.service, at: index)
            switch (operation.kind, observed) {
            case (.update, .read(let version, _)) where reason == "versionConflict(now \(version))" && version != operation.expectedVersion:
                return .observed(version)
            case (.update, .absent) where reason == "notFound":
                return .absent(until: creation(of: operation.service))
            case (.create, .read) where reason == "alreadyExists":
                return .existing(since: creation(of: operation.service))
            default:
                return nil
            }
        }

        var placed: [UInt64: [(operation: ClusterOperation, placement: Placement)]] = [:]
        for operation in history {
            if operation.kind == .read {
                guard let outcome = operation.outcome, let index = operation.witnessIndex else { continue }
                let expected = state(of: operation.service, at: index)
                if outcome != expected {
                    throw violation("\(operation) but the log at index \(index) holds \(expected)")
                }
                placed[operation.service, default: []].append((operation, .observed(version(expected))))
                continue
            }
            let committed = effectIndex(client: operation.client, sequence: operation.sequence)
            if committed == nil, case .refused(let reason)? = operation.outcome, let index = operation.witnessIndex {
                // Refused by the leader before proposing: a read of its state.
                guard let where_ = placement(refused: reason, operation, at: index) else {
                    throw violation("\(operation) before proposing, but the log at index \(index) holds \(state(of: operation.service, at: index))")
                }
                placed[operation.service, default: []].append((operation, where_))
                continue
            }
            if let outcome = operation.outcome {
                guard let committed, let effect = effects[committed] else {
                    throw violation("\(operation) was answered but no entry of it committed")
                }
                if committed != operation.witnessIndex || effect.outcome != outcome {
                    throw violation("\(operation) but its entry committed at index \(committed) with \(effect.outcome)")
                }
            }
            guard let committed, let effect = effects[committed] else { continue }
            switch effect.outcome {
            case .written:
                placed[operation.service, default: []].append((operation, .write(committed)))
            case .refused(let reason):
                // Refused by apply (before the index, the state is what apply saw).
                guard let where_ = placement(refused: reason, operation, at: committed - 1) else {
                    throw violation("\(operation) was refused by apply at index \(committed), but the state there was \(state(of: operation.service, at: committed - 1))")
                }
                placed[operation.service, default: []].append((operation, where_))
            case .read, .absent:
                break
            }
        }

        // Real time, per service: sweep calls by invocation, holding the
        // highest position of every call that returned before; each call
        // takes the earliest position its placement allows.
        for service in placed.keys.sorted() {
            let calls = placed[service]!
            let byReturn = calls.filter { $0.operation.returnTime != nil }.sorted { $0.operation.returnTime! < $1.operation.returnTime! }
            let byInvoke = calls.sorted { $0.operation.invokeTime < $1.operation.invokeTime }
            var chosen: [UInt64: UInt64] = [:]
            var next = 0
            var highest: (position: UInt64, operation: ClusterOperation)?
            for (operation, placement) in byInvoke {
                while next < byReturn.count, byReturn[next].operation.returnTime! < operation.invokeTime {
                    let earlier = byReturn[next].operation
                    let position = chosen[Self.key(client: earlier.client, sequence: earlier.sequence)]!
                    if highest == nil || position > highest!.position { highest = (position, earlier) }
                    next += 1
                }
                let floor = highest?.position ?? 0
                let position: UInt64
                var inOrder = true
                switch placement {
                case .write(let index):
                    position = index
                    inOrder = highest == nil || index > floor
                case .observed(let version):
                    position = version
                    inOrder = version >= floor
                case .existing(let since):
                    position = max(since, floor)
                case .absent(let until):
                    position = floor
                    inOrder = highest == nil || floor < until
                }
                if !inOrder {
                    throw violation("\(operation) cannot sit after \(highest!.operation) (at \(floor)), which returned before it began")
                }
                chosen[Self.key(client: operation.client, sequence: operation.sequence)] = position
            }
        }
    }

    /// A write acknowledged as done is in the state of every member that
    /// applied its index (services are never removed in this workload, so
    /// the service's version can only have grown since).
    func noAcknowledgedWriteLost(
        member: UInt64, appliedIndex: UInt64, history: [ClusterOperation], version: (_ service: UInt64) -> UInt64?, time: UInt64
    ) throws(InvariantViolation) {
        for operation in history {
            guard case .written(let written)? = operation.outcome, written <= appliedIndex else { continue }
            let now = version(operation.service)
            if now == nil || now! < written {
                throw InvariantViolation(
                    invariant: "noAcknowledgedWriteLost",
                    details: "\(operation) was acknowledged but member \(member), applied through \(appliedIndex), has service \(operation.service) at \(now.map { "v\($0)" } ?? "absent")",
                    time: time)
            }
        }
    }
}
