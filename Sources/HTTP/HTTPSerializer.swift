/// Encodes message heads and chunked framing into bytes.
public enum HTTPSerializer {
    /// `METHOD target HTTP/1.1` CRLF, fields, CRLF.
    public static func encode(_ head: HTTPRequestHead) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        output.append(contentsOf: head.method.rawValue.utf8)
        output.append(0x20)
        output.append(contentsOf: head.target.utf8)
        output.append(0x20)
        output.append(contentsOf: head.version.description.utf8)
        output.append(contentsOf: crlf)
        appendFields(head.headers, to: &output)
        output.append(contentsOf: crlf)
        return output
    }

    /// `HTTP/1.1 200 OK` CRLF, fields, CRLF.
    public static func encode(_ head: HTTPResponseHead) -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(256)
        output.append(contentsOf: head.version.description.utf8)
        output.append(0x20)
        output.append(contentsOf: String(head.status.code).utf8)
        output.append(0x20)
        output.append(contentsOf: head.status.reasonPhrase.utf8)
        output.append(contentsOf: crlf)
        appendFields(head.headers, to: &output)
        output.append(contentsOf: crlf)
        return output
    }

    /// One chunk of a chunked body: size in hex, CRLF, data, CRLF. Empty data
    /// encodes to nothing (an empty chunk would end the body).
    public static func encodeChunk(_ data: [UInt8]) -> [UInt8] {
        guard !data.isEmpty else { return [] }
        var output = Array(String(data.count, radix: 16).utf8)
        output.reserveCapacity(output.count + data.count + 4)
        output.append(contentsOf: crlf)
        output.append(contentsOf: data)
        output.append(contentsOf: crlf)
        return output
    }

    /// The last chunk, trailers, and the final CRLF.
    public static func encodeLastChunk(trailers: HTTPHeaders = HTTPHeaders()) -> [UInt8] {
        var output = Array("0\r\n".utf8)
        appendFields(trailers, to: &output)
        output.append(contentsOf: crlf)
        return output
    }

    static let crlf: [UInt8] = [0x0D, 0x0A]

    private static func appendFields(_ headers: HTTPHeaders, to output: inout [UInt8]) {
        for (name, value) in headers {
            precondition(!name.utf8.contains(where: { $0 <= 0x20 || $0 == 0x3A }) && !value.utf8.contains(where: { $0 == 0x0D || $0 == 0x0A }),
                         "header field \(name.debugDescription): \(value.debugDescription) would break the message framing")
            output.append(contentsOf: name.utf8)
            output.append(0x3A)
            output.append(0x20)
            output.append(contentsOf: value.utf8)
            output.append(contentsOf: crlf)
        }
    }
}
