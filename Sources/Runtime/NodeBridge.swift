import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer
import Foundation

/// The host side of ``NetworkMode/bridge``: the node bridge (made on first
/// use, idempotently, and left in place like docker0) and one veth pair per
/// running container, its `eth0` end configured inside the container's own
/// network namespace before the container's init starts there.
final class NodeBridge: @unchecked Sendable {
    let configuration: BridgeConfiguration
    /// Serializes bridge creation within this process (another process
    /// racing us is handled by EEXIST).
    private let lock = NSLock()

    /// Who this runtime is, written into the ownership file for the error
    /// another runtime meets.
    private let owner: String
    /// The locked ownership file while this runtime uses the bridge, else -1.
    private var ownership: Int32 = -1
    /// The bridge's index once ``ensure()`` has checked it; while an
    /// interface of its name still has that index, a start needs no new check.
    private var ensuredIndex: Int32?
    /// Where ownership files live: one per bridge name, machine-wide.
    static let ownershipDirectory = "/run/shoal/bridges"

    /// Namespaces made ahead of the starts that use them.
    private(set) var pool: NetworkNamespacePool!

    init(configuration: BridgeConfiguration, owner: String, warmNamespaces: Int) {
        self.configuration = configuration
        self.owner = owner
        pool = NetworkNamespacePool(capacity: warmNamespaces) { [weak self] in
            guard let self else { throw SystemError(call: "prepare", errno: ECANCELED, path: "bridge released") }
            return try self.prepare(master: try self.ensure())
        }
    }

    deinit { release() }

    /// Makes this runtime the bridge's only user on this machine (an
    /// exclusive flock on `/run/shoal/bridges/<name>.lock`, held until
    /// ``release()`` or exit): leases live in each runtime's state
    /// directory, so two runtimes sharing a bridge could hand out one
    /// address twice. A second runtime gets a clear error instead, as a
    /// second dockerd on docker0 would.
    func claim() throws {
        lock.lock()
        defer { lock.unlock() }
        guard ownership < 0 else { return }
        let path = ownershipPath
        var descriptor: Int32
        while true {
            do {
                try Syscall.makeDirectories(Self.ownershipDirectory)
                descriptor = try Syscall.open(path, O_RDWR | O_CREAT)
            } catch {
                throw RuntimeError.hostSetupFailed(error)
            }
            if flock(descriptor, LOCK_EX | LOCK_NB) != 0 {
                Syscall.close(descriptor)
                throw inUseElsewhere()
            }
            // remove() unlinks the file while holding its lock: a lock on
            // a file no longer at `path` claims nothing, so take the new one.
            var locked = stat(), named = stat()
            if fstat(descriptor, &locked) == 0, stat(path, &named) == 0, locked.st_dev == named.st_dev, locked.st_ino == named.st_ino { break }
            Syscall.close(descriptor)
        }
        _ = ftruncate(descriptor, 0)
        try? Syscall.writeAll(descriptor, Array("pid \(getpid()), \(owner)\n".utf8), path: path)
        ownership = descriptor
        pool.refill()  // its own thread: waits for this lock
    }

    private var ownershipPath: String { Self.ownershipDirectory + "/" + configuration.name + ".lock" }

    /// The refusal a runtime meets when another holds the ownership file.
    private func inUseElsewhere() -> RuntimeError {
        let holder = ((try? Syscall.readFile(ownershipPath)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        return RuntimeError.bridgeConflict(
            bridge: configuration.name,
            reason: "another shoal runtime uses it (\(holder.isEmpty ? "unknown" : holder)): stop it, or give this runtime another bridge name and subnet")
    }

    /// Gives up the bridge (runtime detach); the bridge itself stays, the
    /// warm namespaces go.
    func release() {
        pool.stop()
        lock.lock()
        defer { lock.unlock() }
        Syscall.close(ownership)
        ownership = -1
    }

    /// A container's network namespace, ready to start in.
    struct Attachment {
        /// fd of the namespace (/proc/.../ns/net): the caller closes it once
        /// the container's init runs in it.
        var namespace: Int32
        /// The veth end on the bridge.
        var hostInterface: String
    }

    /// Makes sure the bridge exists, holds the gateway address and is up;
    /// returns its interface index. Refuses a subnet that overlaps a route of
    /// the host other than the bridge's own, and an interface of the bridge's
    /// name that is not a bridge or holds another address.
    @discardableResult
    func ensure() throws -> Int32 {
        lock.lock()
        defer { lock.unlock() }
        let name = configuration.name
        let subnet = configuration.subnet
        // One ioctl instead of a netlink dump of links, addresses and routes per start.
        if let index = ensuredIndex, if_nametoindex(name) == UInt32(bitPattern: index) { return index }
        ensuredIndex = nil
        let index = try network { () throws -> Int32 in
            let netlink = try RouteNetlink()
            var link = try netlink.link(named: name)
            if let existing = link {
                guard existing.kind == "bridge" else {
                    throw BridgeRefusal.conflict("an interface of that name exists and is a \(existing.kind ?? "device"), not a bridge: rename the bridge or remove the interface")
                }
            } else {
                if let refusal = try Self.overlap(subnet, netlink: netlink, bridgeIndex: nil) { throw refusal }
                do {
                    try netlink.createBridge(named: name)
                } catch let error as SystemError where error.errno == EEXIST {
                    // Another process made it meanwhile: use theirs.
                }
                link = try netlink.link(named: name)
            }
            guard let bridge = link else { throw SystemError(call: "netlink RTM_GETLINK", errno: ENODEV, path: name) }
            let addresses = try netlink.ipv4Addresses(index: bridge.index)
            let gateway = configuration.gateway
            if !addresses.contains(where: { $0.address == gateway && $0.prefixLength == subnet.prefixLength }) {
                if let other = addresses.first {
                    throw BridgeRefusal.conflict("it holds \(IPv4Subnet.format(other.address))/\(other.prefixLength), not the gateway \(IPv4Subnet.format(gateway))/\(subnet.prefixLength) of the configured subnet \(subnet): configure subnet \(IPv4Subnet(network: other.address, prefixLength: other.prefixLength)) or delete the bridge (ip link delete \(name))")
                }
                if let refusal = try Self.overlap(subnet, netlink: netlink, bridgeIndex: bridge.index) { throw refusal }
                do {
                    try netlink.addIPv4Address(gateway, prefixLength: subnet.prefixLength, broadcast: subnet.broadcast, index: bridge.index, what: name)
                } catch let error as SystemError where error.errno == EEXIST {}
            }
            if bridge.flags & UInt32(IFF_UP) == 0 { try netlink.setUp(index: bridge.index, what: name) }
            return bridge.index
        }
        ensuredIndex = index
        return index
    }

    /// A network namespace with `lo` up and `eth0` holding
    /// `address/prefix`, whose veth peer is a port of the bridge: one of the
    /// warm pool's when it has one, else made now.
    func attach(address: UInt32) throws -> Attachment {
        var timings = StepTimings("attach")
        defer { timings.report() }
        try claim()
        let master = try ensure()
        timings.mark("ensure")
        var pooled: NetworkNamespacePool.Entry? = pool.take()
        if let stale = pooled, stale.master != master {  // the bridge was made again since
            stale.close()
            pooled = nil
        }
        let prepared = try pooled ?? prepare(master: master)
        timings.mark(pooled == nil ? "prepare" : "pooled")
        do {
            let subnet = configuration.subnet
            try network { () throws in
                try prepared.inside.addIPv4Address(
                    address, prefixLength: subnet.prefixLength, broadcast: subnet.broadcast, index: prepared.containerInterface,
                    what: Self.containerInterface)
            }
        } catch {
            prepared.close()  // the kernel deletes the namespace and its veth pair
            pool.refill()
            throw error
        }
        timings.mark("address")
        pool.refill()
        return Attachment(namespace: prepared.namespace, hostInterface: prepared.hostInterface)
    }

    /// A new network namespace with `lo` up and an `eth0` that is up
    /// without an address, whose veth peer is an up port of bridge `master`.
    func prepare(master: Int32) throws -> NetworkNamespacePool.Entry {
        let namespace = shoal_netns_create()
        if namespace < 0 {
            throw RuntimeError.hostSetupFailed(SystemError(call: "unshare(CLONE_NEWNET)", errno: -namespace, path: configuration.name))
        }
        let hostInterface = "shv" + String(UInt64.random(in: 0..<(1 << 48)), radix: 16).leftPadded(to: 12)
        do {
            return try network { () throws -> NetworkNamespacePool.Entry in
                let netlink = try RouteNetlink()
                try netlink.createVethPair(hostName: hostInterface, master: master, peerName: Self.containerInterface, peerNamespace: namespace)
                do {
                    if let host = try netlink.link(named: hostInterface) {
                        try netlink.disableIPv6AddressGeneration(index: host.index, what: hostInterface)
                        try netlink.setUp(index: host.index, what: hostInterface)
                    }
                    let inside = try RouteNetlink(networkNamespace: namespace)
                    guard let eth0 = try inside.link(named: Self.containerInterface) else {
                        throw SystemError(call: "netlink RTM_GETLINK", errno: ENODEV, path: Self.containerInterface)
                    }
                    try inside.setUp(index: eth0.index, what: Self.containerInterface)
                    return NetworkNamespacePool.Entry(
                        namespace: namespace, hostInterface: hostInterface, master: master, inside: inside, containerInterface: eth0.index)
                } catch {
                    _ = try? netlink.deleteLink(named: hostInterface)
                    throw error
                }
            }
        } catch {
            Syscall.close(namespace)
            throw error
        }
    }

    /// Removes a container's veth pair (both ends go); a pair already gone
    /// (its namespace died with the container) is fine.
    func detach(hostInterface: String) {
        _ = try? RouteNetlink().deleteLink(named: hostInterface)
    }

    /// Returns true once the veth `hostInterface` is gone: the kernel
    /// deletes it when the container's network namespace dies; after
    /// `timeout` it is deleted here. False when `givingUp()` turned true
    /// first (the runtime is stopping) and the veth may still be there.
    func awaitRemoval(hostInterface: String, timeout: Duration, givingUp: () -> Bool) -> Bool {
        guard let netlink = try? RouteNetlink() else { return false }
        let deadline = ContinuousClock.now + timeout
        var pause = Duration.milliseconds(1)
        while ContinuousClock.now < deadline {
            do {
                guard try netlink.link(named: hostInterface) != nil else { return true }
            } catch {
                break
            }
            if givingUp() { return false }
            Thread.sleep(forTimeInterval: Double(pause.components.attoseconds) / 1e18)
            pause = min(pause * 2, .milliseconds(20))
        }
        do {
            _ = try netlink.deleteLink(named: hostInterface)
            return true
        } catch {
            return false
        }
    }

    /// Deletes the bridge if it exists and is one, and its ownership file
    /// (else one file per bridge ever made would pile up in
    /// /run/shoal/bridges). Refused while another runtime holds the bridge;
    /// the file's lock is held meanwhile, so no runtime claims it half-way.
    /// The warm namespaces, whose veths are its ports, go first.
    func remove() throws {
        pool.empty()
        lock.lock()
        defer { lock.unlock() }
        let name = configuration.name
        let path = ownershipPath
        var held = ownership
        let ownedByThisRuntime = held >= 0
        if !ownedByThisRuntime {
            held = Glibc.open(path, O_RDWR | O_CLOEXEC)  // absent: never claimed since the last removal
            if held >= 0 && flock(held, LOCK_EX | LOCK_NB) != 0 {
                Syscall.close(held)
                throw inUseElsewhere()
            }
        }
        defer {
            if !ownedByThisRuntime && held >= 0 { Syscall.close(held) }
        }
        try network { () throws in
            let netlink = try RouteNetlink()
            guard let link = try netlink.link(named: name) else { return }
            guard link.kind == "bridge" else {
                throw BridgeRefusal.conflict("the interface of that name is a \(link.kind ?? "device"), not a bridge: left alone")
            }
            try netlink.deleteLink(named: name)
        }
        ensuredIndex = nil
        guard held >= 0 else { return }
        // Unlinked while locked: a runtime that opened it meanwhile sees the
        // file gone once it has the lock and makes a new one (claim()).
        unlink(path)
        if ownedByThisRuntime {
            Syscall.close(ownership)
            ownership = -1
        }
    }

    static let containerInterface = "eth0"

    /// The first route of the host's main table (not the default route, not
    /// the bridge's own) whose destination overlaps `subnet`.
    static func overlap(_ subnet: IPv4Subnet, netlink: RouteNetlink, bridgeIndex: Int32?) throws(SystemError) -> BridgeRefusal? {
        for route in try netlink.ipv4Routes() where route.destination.prefixLength > 0 && route.outputIndex != bridgeIndex {
            if route.destination.overlaps(subnet) {
                var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
                let device = route.outputIndex.flatMap { if_indextoname(UInt32($0), &name) != nil ? String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : nil } ?? "no device"
                return .overlap(route: route.destination.description, device: device)
            }
        }
        return nil
    }

    enum BridgeRefusal: Error {
        case overlap(route: String, device: String)
        case conflict(String)
    }

    /// Runs `body`, turning its failures into the runtime's errors.
    private func network<T>(_ body: () throws -> T) throws -> T {
        let bridge = configuration.name
        do {
            return try body()
        } catch let error as RuntimeError {
            throw error
        } catch BridgeRefusal.overlap(let route, let device) {
            throw RuntimeError.bridgeSubnetOverlaps(bridge: bridge, subnet: configuration.subnet.description, route: route, device: device)
        } catch BridgeRefusal.conflict(let reason) {
            throw RuntimeError.bridgeConflict(bridge: bridge, reason: reason)
        } catch let error as SystemError {
            throw RuntimeError.hostSetupFailed(error)
        }
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String {
        String(repeating: "0", count: max(0, length - count)) + self
    }
}
