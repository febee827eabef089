import Posix
#if canImport(Glibc)
import Glibc
#endif
import CContainer

/// A NETLINK_ROUTE socket (rtnetlink, what `ip` speaks): creates bridges and
/// veth pairs, assigns addresses, brings links up, lists routes. One request
/// at a time; each waits for the kernel's acknowledgement (or the end of a
/// dump). The socket configures the network namespace it was created in
/// (``init(networkNamespace:)`` opens one inside a container's).
final class RouteNetlink {
    private let descriptor: Int32
    private var sequence: UInt32 = 0
    /// Receive buffer: the kernel sends dump parts of at most a page or so
    /// each; 64 KiB holds any single datagram it builds.
    static let receiveBufferBytes = 65536

    /// A socket in this thread's network namespace.
    init() throws(SystemError) {
        descriptor = try Syscall.run("socket(AF_NETLINK)", path: "NETLINK_ROUTE") {
            socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Self.netlinkRoute)
        }
    }

    /// A socket inside the network namespace `networkNamespace` (an fd of
    /// /proc/.../ns/net).
    init(networkNamespace: Int32) throws(SystemError) {
        let result = shoal_socket_in_netns(networkNamespace, AF_NETLINK, Int32(SOCK_RAW.rawValue), Self.netlinkRoute)
        if result < 0 { throw SystemError(call: "socket(AF_NETLINK) in network namespace", errno: -result, path: nil) }
        descriptor = result
    }

    deinit { Syscall.close(descriptor) }

    // MARK: - Links

    struct Link {
        var index: Int32
        var name: String
        var flags: UInt32
        /// IFLA_INFO_KIND: "bridge", "veth", ...; nil for physical devices.
        var kind: String?
    }

    /// The link called `name`, or nil when there is none.
    func link(named name: String) throws(SystemError) -> Link? {
        var message = NetlinkMessage(type: Self.getLink, flags: Self.request)
        message.appendInterfaceInfo(index: 0)
        message.appendAttribute(Self.interfaceName, string: name)
        do {
            let replies = try exchange(message, what: name)
            return replies.first.flatMap { Self.parseLink($0) }
        } catch where error.errno == ENODEV {
            return nil
        }
    }

    /// Creates a bridge called `name`; EEXIST when one exists.
    func createBridge(named name: String) throws(SystemError) {
        var message = NetlinkMessage(type: Self.newLink, flags: Self.request | Self.acknowledge | Self.create | Self.exclusive)
        message.appendInterfaceInfo(index: 0)
        message.appendAttribute(Self.interfaceName, string: name)
        let info = message.beginNested(Self.linkInfo)
        message.appendAttribute(Self.infoKind, string: "bridge")
        message.endNested(info)
        _ = try exchange(message, what: name)
    }

    /// Creates a veth pair: `hostName` here, a port of `master`; its peer
    /// `peerName` inside the network namespace `peerNamespace`.
    func createVethPair(hostName: String, master: Int32, peerName: String, peerNamespace: Int32) throws(SystemError) {
        var message = NetlinkMessage(type: Self.newLink, flags: Self.request | Self.acknowledge | Self.create | Self.exclusive)
        message.appendInterfaceInfo(index: 0)
        message.appendAttribute(Self.interfaceName, string: hostName)
        message.appendAttribute(Self.master, value: UInt32(bitPattern: master))
        let info = message.beginNested(Self.linkInfo)
        message.appendAttribute(Self.infoKind, string: "veth")
        let data = message.beginNested(Self.infoData)
        let peer = message.beginNested(Self.vethInfoPeer)
        message.appendInterfaceInfo(index: 0)
        message.appendAttribute(Self.interfaceName, string: peerName)
        message.appendAttribute(Self.networkNamespaceFD, value: UInt32(bitPattern: peerNamespace))
        message.endNested(peer)
        message.endNested(data)
        message.endNested(info)
        _ = try exchange(message, what: hostName)
    }

    /// Link `index` makes no IPv6 address of its own when it goes up (no
    /// link-local one, so no duplicate detection or router solicitations):
    /// for a bridge port, which needs no address. A kernel without IPv6
    /// has nothing to turn off. Not settable while the link is being made.
    func disableIPv6AddressGeneration(index: Int32, what: String) throws(SystemError) {
        var message = NetlinkMessage(type: Self.newLink, flags: Self.request | Self.acknowledge)
        message.appendInterfaceInfo(index: index)
        let families = message.beginNested(Self.addressFamilySpecific)
        let inet6 = message.beginNested(UInt16(AF_INET6))
        message.appendAttribute(Self.inet6AddressGenerationMode, bytes: [Self.noAddressGeneration])
        message.endNested(inet6)
        message.endNested(families)
        do {
            _ = try exchange(message, what: what)
        } catch where error.errno == EAFNOSUPPORT {}
    }

    /// Sets IFF_UP on link `index`.
    func setUp(index: Int32, what: String) throws(SystemError) {
        var message = NetlinkMessage(type: Self.newLink, flags: Self.request | Self.acknowledge)
        message.appendInterfaceInfo(index: index, flags: UInt32(IFF_UP), change: UInt32(IFF_UP))
        _ = try exchange(message, what: what)
    }

    /// Deletes the link called `name`; false when there was none.
    @discardableResult
    func deleteLink(named name: String) throws(SystemError) -> Bool {
        var message = NetlinkMessage(type: Self.deleteLinkType, flags: Self.request | Self.acknowledge)
        message.appendInterfaceInfo(index: 0)
        message.appendAttribute(Self.interfaceName, string: name)
        do {
            _ = try exchange(message, what: name)
            return true
        } catch where error.errno == ENODEV {
            return false
        }
    }

    // MARK: - Addresses

    /// The IPv4 addresses on link `index`, as subnets with the host part
    /// kept: (address, prefix length).
    func ipv4Addresses(index: Int32) throws(SystemError) -> [(address: UInt32, prefixLength: Int)] {
        var message = NetlinkMessage(type: Self.getAddress, flags: Self.request | Self.dump)
        message.appendAddressInfo(prefixLength: 0, index: 0)
        var result: [(UInt32, Int)] = []
        for reply in try exchange(message, what: "addresses") {
            guard reply.payload.count >= 8, reply.payload[0] == UInt8(AF_INET) else { continue }
            let prefixLength = Int(reply.payload[1])
            let replyIndex = reply.payload.loadInt32(at: 4)
            guard replyIndex == index else { continue }
            let attributes = NetlinkMessage.attributes(reply.payload, from: 8)
            if let local = attributes[Self.addressLocal] ?? attributes[Self.addressAddress], local.count == 4 {
                result.append((UInt32(bigEndianBytes: local), prefixLength))
            }
        }
        return result
    }

    /// Adds `address/prefixLength` to link `index`; EEXIST when present.
    func addIPv4Address(_ address: UInt32, prefixLength: Int, broadcast: UInt32, index: Int32, what: String) throws(SystemError) {
        var message = NetlinkMessage(type: Self.newAddress, flags: Self.request | Self.acknowledge | Self.create | Self.exclusive)
        message.appendAddressInfo(prefixLength: UInt8(prefixLength), index: index)
        message.appendAttribute(Self.addressLocal, bytes: address.bigEndianBytes)
        message.appendAttribute(Self.addressAddress, bytes: address.bigEndianBytes)
        message.appendAttribute(Self.addressBroadcast, bytes: broadcast.bigEndianBytes)
        _ = try exchange(message, what: what)
    }

    // MARK: - Routes

    /// A route of the main table: destination and output link.
    struct Route {
        var destination: IPv4Subnet
        var outputIndex: Int32?
    }

    /// The IPv4 unicast routes of the main table (what `ip route` shows).
    func ipv4Routes() throws(SystemError) -> [Route] {
        var message = NetlinkMessage(type: Self.getRoute, flags: Self.request | Self.dump)
        message.append(bytes: [UInt8(AF_INET)] + [UInt8](repeating: 0, count: 11))  // struct rtmsg
        var routes: [Route] = []
        for reply in try exchange(message, what: "routes") {
            let payload = reply.payload
            guard payload.count >= 12, payload[0] == UInt8(AF_INET) else { continue }
            let destinationLength = Int(payload[1])
            let attributes = NetlinkMessage.attributes(payload, from: 12)
            let table = attributes[Self.routeTable].map { UInt32($0.loadInt32(at: 0)) } ?? UInt32(payload[4])
            guard table == Self.mainTable, payload[7] == Self.unicastRoute else { continue }
            let destination = attributes[Self.routeDestination].flatMap { $0.count == 4 ? UInt32(bigEndianBytes: $0) : nil } ?? 0
            let output = attributes[Self.routeOutput].map { $0.loadInt32(at: 0) }
            routes.append(Route(destination: IPv4Subnet(network: destination, prefixLength: destinationLength), outputIndex: output))
        }
        return routes
    }

    // MARK: - Exchange

    /// Sends `message` and collects the replies: every message up to the
    /// acknowledgement (error 0) or, for a dump, up to NLMSG_DONE.
    private func exchange(_ message: NetlinkMessage, what: String) throws(SystemError) -> [NetlinkMessage.Reply] {
        sequence &+= 1
        let bytes = message.finished(sequence: sequence)
        let call = "netlink \(message.typeName)"
        let sent = try Syscall.run(call, path: what) {
            bytes.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        }
        guard sent == bytes.count else { throw SystemError(call: call, errno: EMSGSIZE, path: what) }
        let isDump = message.flags & Self.dump == Self.dump
        var replies: [NetlinkMessage.Reply] = []
        var buffer = [UInt8](repeating: 0, count: Self.receiveBufferBytes)
        while true {
            let count = try Syscall.run(call, path: what) {
                buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            }
            for reply in NetlinkMessage.replies(buffer[0..<count]) where reply.sequence == sequence {
                switch reply.type {
                case Self.error:
                    let code = reply.payload.count >= 4 ? reply.payload.loadInt32(at: 0) : -EPROTO
                    if code != 0 { throw SystemError(call: call, errno: -code, path: what) }
                    return replies
                case Self.done:
                    return replies
                default:
                    replies.append(reply)
                    if !isDump && message.flags & Self.acknowledge == 0 { return replies }
                }
            }
        }
    }

    static func parseLink(_ reply: NetlinkMessage.Reply) -> Link? {
        let payload = reply.payload
        guard payload.count >= 16 else { return nil }
        let index = payload.loadInt32(at: 4)
        let flags = UInt32(bitPattern: payload.loadInt32(at: 8))
        let attributes = NetlinkMessage.attributes(payload, from: 16)
        let name = attributes[interfaceName].map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) } ?? ""
        let kind = attributes[linkInfo].flatMap { NetlinkMessage.attributes($0, from: 0)[infoKind] }
            .map { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        return Link(index: index, name: name, flags: flags, kind: kind)
    }

    // MARK: - Constants (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h: stable ABI)

    static let netlinkRoute: Int32 = 0
    static let request: UInt16 = 0x1
    static let acknowledge: UInt16 = 0x4
    static let dump: UInt16 = 0x300
    static let exclusive: UInt16 = 0x200
    static let create: UInt16 = 0x400
    static let error: UInt16 = 2
    static let done: UInt16 = 3
    static let newLink: UInt16 = 16
    static let deleteLinkType: UInt16 = 17
    static let getLink: UInt16 = 18
    static let newAddress: UInt16 = 20
    static let getAddress: UInt16 = 22
    static let getRoute: UInt16 = 26
    static let interfaceName: UInt16 = 3     // IFLA_IFNAME
    static let master: UInt16 = 10           // IFLA_MASTER
    static let linkInfo: UInt16 = 18         // IFLA_LINKINFO
    static let networkNamespaceFD: UInt16 = 28  // IFLA_NET_NS_FD
    static let addressFamilySpecific: UInt16 = 26  // IFLA_AF_SPEC
    static let inet6AddressGenerationMode: UInt16 = 8  // IFLA_INET6_ADDR_GEN_MODE
    static let noAddressGeneration: UInt8 = 1  // IN6_ADDR_GEN_MODE_NONE
    static let infoKind: UInt16 = 1          // IFLA_INFO_KIND
    static let infoData: UInt16 = 2          // IFLA_INFO_DATA
    static let vethInfoPeer: UInt16 = 1      // VETH_INFO_PEER
    static let addressAddress: UInt16 = 1    // IFA_ADDRESS
    static let addressLocal: UInt16 = 2      // IFA_LOCAL
    static let addressBroadcast: UInt16 = 4  // IFA_BROADCAST
    static let routeDestination: UInt16 = 1  // RTA_DST
    static let routeOutput: UInt16 = 4       // RTA_OIF
    static let routeTable: UInt16 = 15       // RTA_TABLE
    static let mainTable: UInt32 = 254       // RT_TABLE_MAIN
    static let unicastRoute: UInt8 = 1       // RTN_UNICAST
}

/// One rtnetlink request being built: header, fixed struct, attributes
/// (4-byte aligned, nested ones patched with their length when closed).
struct NetlinkMessage {
    let type: UInt16
    let flags: UInt16
    private var bytes: [UInt8] = [UInt8](repeating: 0, count: 16)

    init(type: UInt16, flags: UInt16) {
        self.type = type
        self.flags = flags
    }

    var typeName: String {
        switch type {
        case RouteNetlink.newLink: return "RTM_NEWLINK"
        case RouteNetlink.deleteLinkType: return "RTM_DELLINK"
        case RouteNetlink.getLink: return "RTM_GETLINK"
        case RouteNetlink.newAddress: return "RTM_NEWADDR"
        case RouteNetlink.getAddress: return "RTM_GETADDR"
        case RouteNetlink.getRoute: return "RTM_GETROUTE"
        default: return "type \(type)"
        }
    }

    mutating func append(bytes more: [UInt8]) {
        bytes += more
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    /// struct ifinfomsg.
    mutating func appendInterfaceInfo(index: Int32, flags: UInt32 = 0, change: UInt32 = 0) {
        append(bytes: [UInt8(AF_UNSPEC), 0, 0, 0] + index.littleBytes + flags.littleBytes + change.littleBytes)
    }

    /// struct ifaddrmsg (AF_INET, universe scope).
    mutating func appendAddressInfo(prefixLength: UInt8, index: Int32) {
        append(bytes: [UInt8(AF_INET), prefixLength, 0, 0] + index.littleBytes)
    }

    mutating func appendAttribute(_ type: UInt16, bytes payload: [UInt8]) {
        append(bytes: UInt16(4 + payload.count).littleBytes + type.littleBytes + payload)
    }

    mutating func appendAttribute(_ type: UInt16, string: String) {
        appendAttribute(type, bytes: Array(string.utf8) + [0])
    }

    mutating func appendAttribute(_ type: UInt16, value: UInt32) {
        appendAttribute(type, bytes: value.littleBytes)
    }

    /// Opens a nested attribute; returns where to patch its length.
    mutating func beginNested(_ type: UInt16) -> Int {
        let start = bytes.count
        append(bytes: [0, 0] + type.littleBytes)
        return start
    }

    mutating func endNested(_ start: Int) {
        let length = UInt16(bytes.count - start).littleBytes
        bytes[start] = length[0]
        bytes[start + 1] = length[1]
    }

    /// The bytes to send: header filled in.
    func finished(sequence: UInt32) -> [UInt8] {
        var result = bytes
        let header = UInt32(result.count).littleBytes + type.littleBytes + flags.littleBytes + sequence.littleBytes + UInt32(0).littleBytes
        result.replaceSubrange(0..<16, with: header)
        return result
    }

    struct Reply {
        var type: UInt16
        var sequence: UInt32
        var payload: [UInt8]
    }

    /// Splits a received datagram into messages.
    static func replies(_ data: ArraySlice<UInt8>) -> [Reply] {
        let bytes = Array(data)
        var result: [Reply] = []
        var offset = 0
        while offset + 16 <= bytes.count {
            let length = Int(UInt32(bitPattern: bytes.loadInt32(at: offset)))
            guard length >= 16, offset + length <= bytes.count else { break }
            let type = UInt16(bytes[offset + 4]) | UInt16(bytes[offset + 5]) << 8
            let sequence = UInt32(bitPattern: bytes.loadInt32(at: offset + 8))
            result.append(Reply(type: type, sequence: sequence, payload: Array(bytes[(offset + 16)..<(offset + length)])))
            offset += (length + 3) & ~3
        }
        return result
    }

    /// The attributes after `from` in `payload`, by type (nested flag cleared).
    static func attributes(_ payload: [UInt8], from start: Int) -> [UInt16: [UInt8]] {
        var result: [UInt16: [UInt8]] = [:]
        var offset = start
        while offset + 4 <= payload.count {
            let length = Int(UInt16(payload[offset]) | UInt16(payload[offset + 1]) << 8)
            let type = (UInt16(payload[offset + 2]) | UInt16(payload[offset + 3]) << 8) & 0x3fff
            guard length >= 4, offset + length <= payload.count else { break }
            result[type] = Array(payload[(offset + 4)..<(offset + length)])
            offset += (length + 3) & ~3
        }
        return result
    }
}

extension FixedWidthInteger {
    fileprivate var littleBytes: [UInt8] {
        withUnsafeBytes(of: self.littleEndian) { Array($0) }
    }
}

extension UInt32 {
    /// Network byte order, as addresses travel in rtnetlink attributes.
    fileprivate var bigEndianBytes: [UInt8] { withUnsafeBytes(of: self.bigEndian) { Array($0) } }

    fileprivate init(bigEndianBytes bytes: [UInt8]) {
        self = bytes.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }
}

extension Array where Element == UInt8 {
    /// A native-endian Int32 at `offset` (netlink headers are host order).
    fileprivate func loadInt32(at offset: Int) -> Int32 {
        guard offset + 4 <= count else { return 0 }
        return Int32(bitPattern: UInt32(self[offset]) | UInt32(self[offset + 1]) << 8 | UInt32(self[offset + 2]) << 16 | UInt32(self[offset + 3]) << 24)
    }
}
