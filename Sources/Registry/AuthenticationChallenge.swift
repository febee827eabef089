/// A `WWW-Authenticate` challenge (RFC 9110 §11.6.1): a scheme and its
/// parameters, e.g. `Bearer realm="https://auth/token",service="registry",scope="repository:x:pull"`.
public struct AuthenticationChallenge: Equatable, Sendable {
    /// Lowercased: `basic`, `bearer`.
    public var scheme: String
    /// Parameter names lowercased; values unquoted.
    public var parameters: [String: String]

    public init(scheme: String, parameters: [String: String] = [:]) {
        self.scheme = scheme
        self.parameters = parameters
    }

    /// Parses the first challenge of a `WWW-Authenticate` value; nil if there is none.
    public init?(parsing field: String) {
        let bytes = Array(field.utf8)
        var index = 0
        func skipSpaces() { while index < bytes.count, bytes[index] == 0x20 || bytes[index] == 0x09 { index += 1 } }
        func token() -> String {
            let start = index
            while index < bytes.count, bytes[index] != 0x20, bytes[index] != 0x09, bytes[index] != UInt8(ascii: "="), bytes[index] != UInt8(ascii: ",") {
                index += 1
            }
            return String(decoding: bytes[start..<index], as: UTF8.self)
        }
        skipSpaces()
        let scheme = token()
        guard !scheme.isEmpty else { return nil }
        var parameters: [String: String] = [:]
        while index < bytes.count {
            skipSpaces()
            while index < bytes.count, bytes[index] == UInt8(ascii: ",") { index += 1; skipSpaces() }
            let name = token().lowercased()
            skipSpaces()
            guard !name.isEmpty, index < bytes.count, bytes[index] == UInt8(ascii: "=") else { break }
            index += 1
            skipSpaces()
            var value: [UInt8] = []
            if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
                index += 1
                while index < bytes.count, bytes[index] != UInt8(ascii: "\"") {
                    if bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count { index += 1 }
                    value.append(bytes[index])
                    index += 1
                }
                index += 1
            } else {
                while index < bytes.count, bytes[index] != UInt8(ascii: ","), bytes[index] != 0x20 { value.append(bytes[index]); index += 1 }
            }
            parameters[name] = String(decoding: value, as: UTF8.self)
        }
        self.init(scheme: scheme.lowercased(), parameters: parameters)
    }
}
