import COpenSSL

/// The subject or issuer fields Shoal uses: CN (node id), OU (role), O (cluster id).
public struct DistinguishedName: Hashable, Sendable, CustomStringConvertible {
    public var commonName: String?
    public var organizationalUnit: String?
    public var organization: String?

    public init(commonName: String? = nil, organizationalUnit: String? = nil, organization: String? = nil) {
        self.commonName = commonName
        self.organizationalUnit = organizationalUnit
        self.organization = organization
    }

    public var description: String {
        [("CN", commonName), ("OU", organizationalUnit), ("O", organization)]
            .compactMap { key, value in value.map { "\(key)=\($0)" } }
            .joined(separator: ", ")
    }

    /// Longest CN/OU/O X.509 allows (ub-common-name and friends, RFC 5280).
    static let maxFieldBytes = 64

    /// Checks that `value` can be a subject field: 1...64 bytes, printable, no
    /// separators that would confuse a reader of `description`.
    static func validate(_ value: String, field: String) throws(PKIError) {
        let bytes = Array(value.utf8)
        guard !bytes.isEmpty, bytes.count <= maxFieldBytes else {
            throw .invalidName(field: field, value: value, reason: "must be 1 to \(maxFieldBytes) bytes, is \(bytes.count)")
        }
        let allowed = value.unicodeScalars.allSatisfy { scalar in
            (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "-_.".unicodeScalars.contains(scalar))
        }
        guard allowed else {
            throw .invalidName(field: field, value: value, reason: "use letters, digits, '-', '_' or '.'")
        }
    }

    /// Reads the fields from an `X509_NAME` (not owned: borrowed from a certificate or request).
    init(borrowing name: OpaquePointer) {
        commonName = Self.entry(name, NID_commonName)
        organizationalUnit = Self.entry(name, NID_organizationalUnitName)
        organization = Self.entry(name, NID_organizationName)
    }

    private static func entry(_ name: OpaquePointer, _ nid: Int32) -> String? {
        let index = X509_NAME_get_index_by_NID(name, nid, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index), let data = X509_NAME_ENTRY_get_data(entry) else {
            return nil
        }
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else { return nil }
        defer { shoal_OPENSSL_free(utf8) }
        return String(decoding: UnsafeBufferPointer(start: utf8, count: Int(length)), as: UTF8.self)
    }

    /// A new `X509_NAME` with these fields; the caller owns and frees it.
    func makeX509Name() throws(PKIError) -> OpaquePointer {
        guard let name = X509_NAME_new() else { preconditionFailure("X509_NAME_new failed: out of memory") }
        for (nid, value) in [(NID_organizationName, organization), (NID_organizationalUnitName, organizationalUnit), (NID_commonName, commonName)] {
            guard let value else { continue }
            let bytes = Array(value.utf8)
            OpenSSLErrorQueue.clear()
            let added = bytes.withUnsafeBufferPointer {
                X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8, $0.baseAddress, Int32($0.count), -1, 0)
            }
            guard added == 1 else {
                X509_NAME_free(name)
                throw .openSSL(operation: "adding \(value) to a subject", details: OpenSSLErrorQueue.summary(OpenSSLErrorQueue.drain()))
            }
        }
        return name
    }
}
