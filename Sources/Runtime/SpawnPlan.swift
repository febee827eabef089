#if canImport(Glibc)
import Glibc
#endif
import CContainer

/// Owns the C memory behind one `ShoalSpawnPlan`: every string and array the
/// child reads is allocated here, before clone(), and freed when the plan is
/// released (after the spawn call returned in the parent; the child has its
/// own copy of the address space).
final class SpawnPlan {
    var raw = ShoalSpawnPlan()
    private var allocations: [UnsafeMutableRawPointer] = []

    /// Maximum bind mounts per container (the child keeps their fds on its stack).
    static let maxBindMounts = 128

    init() {
        raw.stdin_fd = -1
        raw.stdout_fd = -1
        raw.stderr_fd = -1
        raw.sync_fd = -1
        raw.error_fd = -1
        raw.root_fd = -1
        raw.net_namespace_fd = -1
        raw.console_socket_fd = -1
        raw.cgroup_directory_fd = -1
        raw.cgroup_directory_procs_fd = -1
    }

    deinit {
        for pointer in allocations { free(pointer) }
    }

    func string(_ text: String) -> UnsafePointer<CChar> {
        let pointer = strdup(text)!
        allocations.append(UnsafeMutableRawPointer(pointer))
        return UnsafePointer(pointer)
    }

    func optionalString(_ text: String?) -> UnsafePointer<CChar>? {
        text.map(string)
    }

    /// A NULL-terminated `char *const *` (argv, envp).
    func mutableStringArray(_ strings: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let array = allocate(UnsafeMutablePointer<CChar>?.self, count: strings.count + 1)
        for (index, text) in strings.enumerated() {
            array[index] = UnsafeMutablePointer(mutating: string(text))
        }
        array[strings.count] = nil
        return array
    }

    /// A `const char *const *` with `count` entries.
    func stringArray(_ strings: [String]) -> UnsafeMutablePointer<UnsafePointer<CChar>?> {
        let array = allocate(UnsafePointer<CChar>?.self, count: max(strings.count, 1))
        for (index, text) in strings.enumerated() { array[index] = string(text) }
        return array
    }

    func array<Element>(_ values: [Element]) -> UnsafeMutablePointer<Element> {
        let array = allocate(Element.self, count: max(values.count, 1))
        for (index, value) in values.enumerated() { (array + index).initialize(to: value) }
        return array
    }

    private func allocate<Element>(_ type: Element.Type, count: Int) -> UnsafeMutablePointer<Element> {
        let raw = malloc(MemoryLayout<Element>.stride * count)!
        allocations.append(raw)
        return raw.bindMemory(to: Element.self, capacity: count)
    }

    /// Fills the identity, capability, environment and command fields shared
    /// by container init and exec.
    func setProcess(
        command: [String], environment: [String], user: ResolvedUser, workingDirectory: String?,
        capabilities: UInt64, noNewPrivileges: Bool, limits: [ProcessLimit]
    ) {
        raw.argv = UnsafePointer(mutableStringArray(command))
        raw.envp = UnsafePointer(mutableStringArray(environment))
        let path = environment.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) }
        raw.search_path = string(path ?? ContainerRuntime.defaultPath)
        raw.uid = user.uid
        raw.gid = user.gid
        raw.groups = UnsafePointer(array(user.additionalGroups))
        raw.group_count = user.additionalGroups.count
        raw.cwd = string(workingDirectory ?? "/")
        raw.capabilities = capabilities
        raw.no_new_privileges = noNewPrivileges ? 1 : 0
        let rlimits = limits.map { ShoalRlimit(resource: $0.resource, soft: $0.soft, hard: $0.hard) }
        raw.rlimits = UnsafePointer(array(rlimits))
        raw.rlimit_count = rlimits.count
    }
}
