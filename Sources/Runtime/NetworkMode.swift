/// `--network`: which network namespace a container's processes see.
public enum NetworkMode: String, Codable, Sendable, CaseIterable {
    /// Own network namespace with only `lo` (up).
    case none
    /// The host's network namespace: no isolation, no published ports needed.
    case host
    /// Own network namespace with `lo` and `eth0`, one end of a veth pair
    /// whose other end is a port of the node bridge
    /// (``ContainerRuntime/Configuration/bridge``); `eth0` holds the
    /// container's leased address. There is no default route: the container
    /// reaches the bridge's subnet (other containers, the host at the
    /// gateway address) and nothing else; published ports come in through the
    /// runtime's userland proxy.
    case bridge
}
