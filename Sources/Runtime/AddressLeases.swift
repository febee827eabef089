import Posix
#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// The bridge addresses leased to containers: one file per address,
/// `<directory>/<address>`, holding the container's id. A lease is taken with
/// O_CREAT|O_EXCL, so two takers (threads or processes sharing the state
/// directory) can never get the same address, and it outlives the daemon:
/// a restarted runtime sees every lease its containers hold.
final class AddressLeases: @unchecked Sendable {
    let directory: String
    let bridge: BridgeConfiguration
    private let lock = NSLock()
    /// Where the next search starts: addresses are handed out in turn, so a
    /// just-released one is not reused at once (peers may still cache its
    /// old owner's MAC address).
    private var cursor: UInt32?

    init(directory: String, bridge: BridgeConfiguration) {
        self.directory = directory
        self.bridge = bridge
    }

    /// Takes a free address for `container`.
    func lease(for container: String) throws -> UInt32 {
        guard let range = bridge.leasableAddresses else {
            throw RuntimeError.addressesExhausted(bridge: bridge.name, subnet: bridge.subnet.description)
        }
        lock.lock()
        defer { lock.unlock() }
        do {
            try Syscall.makeDirectories(directory, mode: 0o700)
        } catch {
            throw RuntimeError.hostSetupFailed(error)
        }
        let taken = Set(((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).compactMap(IPv4Subnet.parseAddress))
        let size = UInt64(range.upperBound - range.lowerBound) + 1
        var candidate = cursor.map { range.contains($0) ? $0 : range.lowerBound } ?? range.lowerBound
        for _ in 0..<size {
            defer { candidate = candidate == range.upperBound ? range.lowerBound : candidate + 1 }
            guard !taken.contains(candidate) else { continue }
            let path = directory + "/" + IPv4Subnet.format(candidate)
            let descriptor = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if descriptor < 0 {
                if errno == EEXIST { continue }
                throw RuntimeError.hostSetupFailed(SystemError(call: "open", errno: errno, path: path))
            }
            defer { Syscall.close(descriptor) }
            do {
                try Syscall.writeAll(descriptor, Array(container.utf8), path: path)
            } catch {
                unlink(path)
                throw RuntimeError.hostSetupFailed(error)
            }
            cursor = candidate == range.upperBound ? range.lowerBound : candidate + 1
            return candidate
        }
        throw RuntimeError.addressesExhausted(bridge: bridge.name, subnet: bridge.subnet.description)
    }

    /// Gives `address` back, if `container` holds it.
    func release(_ address: UInt32, for container: String) {
        let path = directory + "/" + IPv4Subnet.format(address)
        lock.lock()
        defer { lock.unlock() }
        guard (try? Syscall.readFile(path)) == container else { return }
        unlink(path)
    }

    /// Releases every lease for which `orphaned(holder, address)` is true.
    func releaseAll(where orphaned: (String, UInt32) -> Bool) {
        lock.lock()
        defer { lock.unlock() }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            guard let address = IPv4Subnet.parseAddress(name) else { continue }
            let holder = (try? Syscall.readFile(directory + "/" + name)) ?? ""
            if orphaned(holder, address) { unlink(directory + "/" + name) }
        }
    }
}
