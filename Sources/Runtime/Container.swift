import CImagesLinux
import Posix
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// One container known to the runtime: its persisted ``ContainerState``,
/// its cgroup, and while it runs, its monitor. Thread-safe; state changes are
/// written to disk before anyone waiting is woken.
public final class Container: @unchecked Sendable {
    private let condition = NSCondition()
    private var current: ContainerState
    /// `<state>/containers/<id>`.
    public let directory: String
    public let cgroup: any Cgroup
    var monitor: ContainerMonitor?
    /// Output as it arrives, for attached clients (`attach`, `run -it`).
    public let output = ContainerOutputHub()
    /// Stdin and terminal size of a `-i`/`-t` container, through its monitor.
    let input: ContainerInputChannel
    /// Published ports being relayed while the container runs; start,
    /// exit (monitor thread), delete and detach may touch them at once.
    private let proxyLock = NSLock()
    private var proxies: [any PublishedPortProxy] = []

    /// Hands the proxies over to relay for this container.
    func adoptProxies(_ more: [any PublishedPortProxy]) {
        proxyLock.withLock { proxies += more }
    }

    /// Takes the proxies away (to close them); each is taken once.
    func takeProxies() -> [any PublishedPortProxy] {
        proxyLock.withLock {
            defer { proxies = [] }
            return proxies
        }
    }

    /// Held by `start` and by a copy into or out of a stopped container's
    /// mounted root, so the two never mount the same writable layer at once.
    let filesystemLock = NSLock()

    private let healthLock = NSLock()
    private var healthChecker: HealthChecker?

    /// Installs the checker of the spec's health check (nil: none), stopping
    /// the previous one.
    func replaceHealthChecker(_ checker: HealthChecker?) {
        let previous = healthLock.withLock {
            defer { healthChecker = checker }
            return healthChecker
        }
        previous?.stop()
        checker?.start()
    }

    /// Called (under the state lock, so keep them short) after every state
    /// change, every batch of output the monitor logged, and the removal.
    private var observers: [UInt64: @Sendable () -> Void] = [:]
    private var nextObserverToken: UInt64 = 0
    private var removed = false
    /// state.json's encoding, its fixed part kept (see ``ContainerStateEncoder``).
    private var stateEncoder = ContainerStateEncoder()
    /// Between an exit published in memory and its record on disk.
    private var recordingExit = false
    private var cgroupRemovedAtExit = false

    init(state: ContainerState, directory: String, cgroup: any Cgroup) {
        self.current = state
        self.directory = directory
        self.cgroup = cgroup
        self.input = ContainerInputChannel(path: ContainerRuntime.inputFifoPath(directory: directory))
    }

    public var id: String { current.spec.id }

    /// A snapshot of the state.
    public var state: ContainerState {
        condition.lock()
        defer { condition.unlock() }
        return current
    }

    /// The live JSON-lines log (rotated files are `<logPath>.1` ...).
    public var logPath: String { directory + "/" + ContainerLogFile.fileName }
    var statePath: String { directory + "/state.json" }

    /// Applies `change`, persists, wakes waiters. After an exit still
    /// being recorded (``recordExit(_:removeCgroup:)``), so writes land in
    /// the order of their changes.
    func update(_ change: (inout ContainerState) -> Void) {
        condition.lock()
        while recordingExit { condition.wait() }
        change(&current)
        persist(current)
        notifyLocked()
        condition.unlock()
    }

    /// Writes `state` to state.json; only by whoever holds the lock, or by
    /// the exit being recorded (which holds back every other update).
    private func persist(_ state: ContainerState) {
        guard let bytes = try? stateEncoder.encode(state) else { return }
        try? ContainerState.write(bytes, to: statePath)
    }

    /// Records the container's exit in two halves, so that whoever waits for
    /// it (the engine's watcher, a `run`'s reply) learns it before the disk
    /// does: `change` is applied in memory and observers and
    /// ``waitUntil(_:)`` are woken at once; then the state is written,
    /// `removeCgroup` runs (it returns whether the cgroup is gone), and only
    /// then are ``wait(timeout:recorded:)`` callers woken and later updates
    /// let through. A daemon that dies in between leaves the container
    /// "running" on disk with its monitor gone: the next one finishes it
    /// from the monitor's exit record, as it does any exit it missed.
    func recordExit(_ change: (inout ContainerState) -> Void, removeCgroup: () -> Bool) {
        condition.lock()
        while recordingExit { condition.wait() }
        change(&current)
        recordingExit = true
        let published = current
        notifyLocked()
        condition.unlock()
        // Outside the lock: the waiters just woken read the state meanwhile.
        persist(published)
        let removed = removeCgroup()
        condition.lock()
        recordingExit = false
        cgroupRemovedAtExit = removed
        notifyLocked()
        condition.unlock()
    }

    /// Whether the last exit's recording removed the cgroup (a delete need
    /// not try again); false again once a restart is prepared.
    var cgroupRemoved: Bool {
        condition.lock()
        defer { condition.unlock() }
        return cgroupRemovedAtExit
    }

    func forgetCgroupRemoval() {
        condition.lock()
        cgroupRemovedAtExit = false
        condition.unlock()
    }

    /// The monitor appended output to the log: wakes log followers.
    func noteOutput() {
        condition.lock()
        notifyLocked()
        condition.unlock()
    }

    private func notifyLocked() {
        condition.broadcast()
        for observer in observers.values { observer() }
    }

    /// Registers `onChange`, called after every later state change, batch of
    /// logged output and ``markRemoved()``: waiters and log followers wake on
    /// the event instead of polling. Register before reading the state, so
    /// no change falls between the read and the registration. Returns the
    /// token for ``unsubscribe(_:)``.
    public func subscribe(_ onChange: @escaping @Sendable () -> Void) -> UInt64 {
        condition.lock()
        defer { condition.unlock() }
        nextObserverToken += 1
        observers[nextObserverToken] = onChange
        return nextObserverToken
    }

    public func unsubscribe(_ token: UInt64) {
        condition.lock()
        observers[token] = nil
        condition.unlock()
    }

    /// Whether whoever owns the container (the engine) has removed it and
    /// everything it kept.
    public var isRemoved: Bool {
        condition.lock()
        defer { condition.unlock() }
        return removed
    }

    /// Records that the container and all its files are gone, and wakes
    /// waiters (`wait --condition removed`, as `run --rm`).
    public func markRemoved() {
        condition.lock()
        removed = true
        notifyLocked()
        condition.unlock()
    }

    /// Blocks until `condition` holds for the state (checked now and after
    /// every change: exit, health verdict, pause...) and returns that state.
    /// The agent waits on "exited or health changed" with it.
    public func waitUntil(_ predicate: (ContainerState) -> Bool) -> ContainerState {
        condition.lock()
        defer { condition.unlock() }
        while !predicate(current) { condition.wait() }
        return current
    }

    /// Blocks until the container has exited and its exit is recorded
    /// (state.json written, cgroup removed), or `timeout` passes (nil:
    /// forever). Returns the exit status, or nil on timeout. A container that
    /// never started returns nil at once. `recorded` false: returns as soon
    /// as the exit is known, before the record (the engine's watcher, whose
    /// `--rm` removal waits for the record anyway).
    public func wait(timeout: Duration? = nil, recorded: Bool = true) -> ExitStatus? {
        let deadline = timeout.map { Date().addingTimeInterval(Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18) }
        condition.lock()
        defer { condition.unlock() }
        func running() -> Bool { current.status.hasProcess || (recorded && recordingExit) }
        while running() {
            if let deadline {
                if !condition.wait(until: deadline) && running() { return nil }
            } else {
                condition.wait()
            }
        }
        return current.exitStatus
    }
}

extension ContainerState {
    /// Writes `state` as ``ContainerStateEncoder`` does (all of it encoded anew).
    static func write(_ state: ContainerState, to path: String) throws {
        var encoder = ContainerStateEncoder()
        try write(try encoder.encode(state), to: path)
    }

    /// Writes an encoded state to `path`.
    static func write(_ bytes: [UInt8], to path: String) throws {
        // Write-then-swap: a reader (or a restarted daemon) sees the old or
        // the new file, never half. No fsync (Foundation's .atomic adds one,
        // milliseconds per start): the state only has to outlive the daemon,
        // not the machine, whose crash ends the containers too. The
        // temporary holds the state before: written over, not emptied first
        // (see ``Syscall/overwriteFile(_:_:mode:)``).
        let temporary = path + ".tmp"
        try Syscall.overwriteFile(temporary, bytes)
        // Exchanged rather than renamed over: the old state becomes the next
        // write's temporary file, so no write creates or frees an inode (on
        // ext4 without a journal each new inode searches past every one freed
        // lately; see SpareDirectories). The first write, or a file system
        // without RENAME_EXCHANGE, renames.
        if shoal_rename_exchange(temporary, path) == 0 { return }
        try Syscall.run("rename", path: path) { rename(temporary, path) }
    }

    /// `date` in ISO 8601, UTC, to the microsecond: `2026-01-31T23:59:59.123456Z`.
    /// Sub-second, so a run's start read back after a daemon restart still
    /// tells that run from the next one (a restart policy may start it again
    /// within the same second).
    static func iso8601(_ date: Date) -> String {
        let interval = date.timeIntervalSince1970
        var seconds = time_t(interval.rounded(.down))
        var microseconds = Int(((interval - Double(seconds)) * 1_000_000).rounded())
        if microseconds >= 1_000_000 {
            seconds += 1
            microseconds -= 1_000_000
        }
        var fields = tm()
        gmtime_r(&seconds, &fields)
        func digits(_ value: Int, _ count: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, count - text.count)) + text
        }
        return digits(Int(fields.tm_year) + 1900, 4) + "-" + digits(Int(fields.tm_mon) + 1, 2) + "-" + digits(Int(fields.tm_mday), 2)
            + "T" + digits(Int(fields.tm_hour), 2) + ":" + digits(Int(fields.tm_min), 2) + ":" + digits(Int(fields.tm_sec), 2)
            + "." + digits(microseconds, 6) + "Z"
    }

    /// Reads what ``iso8601(_:)`` writes, and the whole-second form older
    /// state files hold.
    static func date(iso8601 text: String) -> Date? {
        let utf8 = Array(text.utf8)
        guard utf8.count >= 20, utf8.last == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= utf8.count else { return nil }
            var value = 0
            for byte in utf8[range] {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
              let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19) else { return nil }
        var fraction = 0.0
        if utf8.count > 20 {
            guard utf8[19] == UInt8(ascii: "."), utf8.count > 21, let digits = number(20..<(utf8.count - 1)) else { return nil }
            fraction = Double(digits) / pow(10, Double(utf8.count - 21))
        }
        var fields = tm()
        fields.tm_year = Int32(year - 1900)
        fields.tm_mon = Int32(month - 1)
        fields.tm_mday = Int32(day)
        fields.tm_hour = Int32(hour)
        fields.tm_min = Int32(minute)
        fields.tm_sec = Int32(second)
        let seconds = timegm(&fields)
        guard seconds != -1 || (year == 1969) else { return nil }
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    static func read(from path: String) throws -> ContainerState {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = date(iso8601: text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 date: \(text)")
            }
            return date
        }
        return try decoder.decode(ContainerState.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}
