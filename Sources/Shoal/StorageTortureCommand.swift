#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Raft
import Storage

/// `shoal internal-storage-torture <database> <seed> [<max-writes>]`: the
/// child of the storage crash test (Tests/StorageTests). Hidden from usage.
///
/// Opens the Raft storage at `<database>`, resumes from what it loads, and
/// writes forever (or `<max-writes>` times): appends, suffix truncations,
/// compactions and snapshot installs chosen by a generator seeded with
/// `<seed>`. Around each write it prints `begin <operation>` and, once the
/// write returned (durable when synced), `ack <operation>`, straight to fd 1
/// with no buffering, so that every acknowledgement the parent can read was
/// made after the write committed. The parent SIGKILLs it at a random moment.
///
/// `arguments` are the words after the subcommand. Exit status: 0 after
/// `<max-writes>` writes, 1 on a storage error (printed to stderr), 2 on bad usage.
func runStorageTorture(arguments: [String]) -> Int32 {
    guard arguments.count == 2 || arguments.count == 3, let seed = UInt64(arguments[1]) else {
        writeLine("usage: shoal internal-storage-torture <database> <seed> [<max-writes>]", to: 2)
        return 2
    }
    var maxWrites = Int.max
    if arguments.count == 3 {
        guard let limit = Int(arguments[2]), limit >= 0 else {
            writeLine("internal-storage-torture: <max-writes> must be a non-negative integer, got \(arguments[2])", to: 2)
            return 2
        }
        maxWrites = limit
    }
    do {
        let storage = try SQLiteRaftStorage(path: arguments[0])
        // The mirror tells the child which writes make sense next (what is
        // committed, which term each entry has); the parent checks the file.
        let mirror = MemoryRaftStorage(try storage.load())
        var generator = SeededGenerator(seed: seed)
        writeLine("ready \(lastIndex(of: try mirror.load()))", to: 1)
        for _ in 0..<maxWrites {
            let operation = nextOperation(after: try mirror.load(), using: &generator)
            writeLine("begin \(operation)", to: 1)
            try operation.apply(to: storage)
            try operation.apply(to: mirror)
            writeLine("ack \(operation)", to: 1)
        }
        return 0
    } catch {
        writeLine("internal-storage-torture: \(error)", to: 2)
        return 1
    }
}

/// Entries appended or rewritten by one write, at most.
private let tortureMaxEntriesPerWrite: UInt64 = 8

private func lastIndex(of state: PersistentState) -> UInt64 {
    state.entries.last?.index ?? state.snapshot?.metadata.index ?? 0
}

/// A write Raft could make from `state`: terms never decrease, committed
/// entries are never truncated, compaction stays within the commit index.
private func nextOperation(after state: PersistentState, using generator: inout SeededGenerator) -> StorageTortureOperation {
    let snapshotIndex = state.snapshot?.metadata.index ?? 0
    let last = lastIndex(of: state)
    let lastTerm = state.entries.last?.term ?? state.snapshot?.metadata.term ?? 0
    var term = max(state.hardState.term, lastTerm, 1)
    let commit = state.hardState.commit
    let count = UInt64.random(in: 1...tortureMaxEntriesPerWrite, using: &generator)
    let roll = UInt64.random(in: 0..<100, using: &generator)

    let truncateFloor = max(commit, snapshotIndex) + 1
    if roll < 12 && truncateFloor <= last {
        // A new leader overwrote this member's uncommitted suffix.
        let first = UInt64.random(in: truncateFloor...last, using: &generator)
        let newLast = first + count - 1
        return .append(
            firstIndex: first, count: Int(count), term: term + 1,
            commit: UInt64.random(in: commit...max(commit, newLast), using: &generator), sync: true)
    }
    if roll < 24 && commit > snapshotIndex {
        let index = UInt64.random(in: (snapshotIndex + 1)...commit, using: &generator)
        guard let entry = state.entries.first(where: { $0.index == index }) else {
            preconditionFailure("index \(index) is between the snapshot and the commit index but not in the log")
        }
        return .compact(index: index, term: entry.term)
    }
    if roll < 28 {
        // The leader sent a snapshot past this member's log.
        let index = last + UInt64.random(in: 0...20, using: &generator)
        return .install(index: index, term: term, commit: index)
    }
    if UInt64.random(in: 0..<20, using: &generator) == 0 { term += 1 }
    let newLast = last + count
    // Mostly synced, as entries are; some commit-only style lazy saves to cross
    // the switch between synchronous=FULL and NORMAL.
    let sync = UInt64.random(in: 0..<5, using: &generator) != 0
    return .append(
        firstIndex: last + 1, count: Int(count), term: term,
        commit: UInt64.random(in: commit...newLast, using: &generator), sync: sync)
}

/// Writes `line` and a newline to `descriptor` in one `write` (lines are far
/// below PIPE_BUF, so a reader never sees half a line), retrying EINTR.
private func writeLine(_ line: String, to descriptor: Int32) {
    var bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeMutableBytes { buffer in
            write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
        }
        if written < 0 {
            if errno == EINTR { continue }
            return  // The parent went away; nothing left to tell.
        }
        offset += written
    }
}
