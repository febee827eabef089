import Foundation

/// The process's open file descriptors (/proc/self/fd) and what each
/// points to, for tests that check a component closes all it opened.
public struct OpenDescriptors: Sendable, Equatable {
    /// Descriptor number to its target (a path, `socket:[inode]`, `pipe:[inode]`, `anon_inode:[eventfd]`, ...).
    public let targets: [Int32: String]

    public init() {
        var targets: [Int32: String] = [:]
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for name in names {
            guard let descriptor = Int32(name) else { continue }
            // Gone between listing and reading: the directory listing's own descriptor, or one closed meanwhile.
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + name) else { continue }
            targets[descriptor] = target
        }
        self.targets = targets
    }

    public var count: Int { targets.count }

    /// Descriptors open now that were not open in `earlier` (or point elsewhere now), as "fd -> target" lines.
    public func opened(since earlier: OpenDescriptors) -> [String] {
        targets.keys.sorted().compactMap { descriptor in
            earlier.targets[descriptor] == targets[descriptor] ? nil : "\(descriptor) -> \(targets[descriptor]!)"
        }
    }

    /// Waits up to `timeout` for the process to hold no more descriptors
    /// than `earlier` did (closing can trail a stop: threads finish, the
    /// event loop closes what it polled); returns the descriptors still
    /// opened since `earlier`, empty when none are left.
    public static func settle(to earlier: OpenDescriptors, timeout: Duration = .seconds(10)) async -> [String] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let now = OpenDescriptors()
            if now.count <= earlier.count || ContinuousClock.now >= deadline { return now.count <= earlier.count ? [] : now.opened(since: earlier) }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}
