/// What went wrong with a socket operation, and what to do about it.
public enum NetError: Error, CustomStringConvertible, Sendable {
    /// The operation did not finish before its deadline. A timed-out read
    /// leaves the connection usable; a timed-out write or connect aborts it,
    /// because the peer may have received part of the data.
    case timedOut(operation: String, address: String)
    /// The connection or listener was closed (by us) before or during the call.
    case closed(operation: String)
    /// An address that cannot be used (not numeric, path too long).
    case invalidAddress(String)

    public var description: String {
        switch self {
        case .timedOut(let operation, let address):
            return "\(operation) with \(address) timed out; the peer is slow or gone: retry with a later deadline or check the peer"
        case .closed(let operation):
            return "\(operation) on a closed connection; open a new connection"
        case .invalidAddress(let reason):
            return "invalid address: \(reason)"
        }
    }
}
