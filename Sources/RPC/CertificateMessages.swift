import Net
import Wire

/// The body of a join call: the role asked for, the token's secret (proven
/// over a connection whose CA the joiner pinned by the token's digest) and a
/// CSR for the joiner's fresh key.
struct JoinRequest: WireCodable, Equatable {
    var role: NodeRole
    var secret: String
    var certificateRequestPEM: String

    func encode(to writer: inout WireWriter) {
        writer.writeTag(RoleTag(role))
        writer.writeString(secret)
        writer.writeString(certificateRequestPEM)
    }

    init(role: NodeRole, secret: String, certificateRequestPEM: String) {
        self.role = role
        self.secret = secret
        self.certificateRequestPEM = certificateRequestPEM
    }

    init(from reader: inout WireReader) throws(WireError) {
        role = try reader.readTag(RoleTag.self).role
        secret = try reader.readString()
        certificateRequestPEM = try reader.readString()
    }
}

/// The body of a renewal call: a CSR for the caller's new key. The node id
/// and role come from the caller's current certificate, never from the request.
struct RenewalRequest: WireCodable, Equatable {
    var certificateRequestPEM: String

    func encode(to writer: inout WireWriter) {
        writer.writeString(certificateRequestPEM)
    }

    init(certificateRequestPEM: String) {
        self.certificateRequestPEM = certificateRequestPEM
    }

    init(from reader: inout WireReader) throws(WireError) {
        certificateRequestPEM = try reader.readString()
    }
}

/// The answer to a join or a renewal: the issued node certificate and the
/// cluster's root CA certificate, both PEM.
struct CertificateResponse: WireCodable, Equatable {
    var certificatePEM: String
    var rootPEM: String

    func encode(to writer: inout WireWriter) {
        writer.writeString(certificatePEM)
        writer.writeString(rootPEM)
    }

    init(certificatePEM: String, rootPEM: String) {
        self.certificatePEM = certificatePEM
        self.rootPEM = rootPEM
    }

    init(from reader: inout WireReader) throws(WireError) {
        certificatePEM = try reader.readString()
        rootPEM = try reader.readString()
    }
}

/// `NodeRole` on the wire: one byte, independent of the role's spelling.
enum RoleTag: UInt8 {
    case manager = 1
    case worker = 2

    init(_ role: NodeRole) {
        switch role {
        case .manager: self = .manager
        case .worker: self = .worker
        }
    }

    var role: NodeRole {
        switch self {
        case .manager: return .manager
        case .worker: return .worker
        }
    }
}
