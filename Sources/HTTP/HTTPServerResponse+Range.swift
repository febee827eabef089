extension HTTPServerResponse {
    /// Answers a GET or HEAD for a representation of `length` bytes,
    /// honouring a single byte range (see ``HTTPRangeSelection``): 200 with
    /// every byte, 206 with `Content-Range: bytes a-b/length`, or 416 with
    /// `Content-Range: bytes */length` and no body. Every answer says
    /// `Accept-Ranges: bytes`.
    ///
    /// `body` is called once, with the offsets to send (inclusive; nil for a
    /// 416 or an empty representation), and returns a body of exactly that
    /// many bytes, e.g. a stream that seeks a blob file.
    public static func ranged(
        for head: HTTPRequestHead,
        length: Int,
        headers: HTTPHeaders = HTTPHeaders(),
        body: (ClosedRange<Int>?) throws -> HTTPBody
    ) rethrows -> HTTPServerResponse {
        var headers = headers
        headers.replaceOrAdd(name: "Accept-Ranges", value: "bytes")
        switch HTTPRangeSelection.select(for: head, length: length) {
        case .full:
            return HTTPServerResponse(status: .ok, headers: headers, body: try body(length > 0 ? 0...(length - 1) : nil))
        case .partial(let offsets):
            headers.replaceOrAdd(name: "Content-Range", value: "bytes \(offsets.lowerBound)-\(offsets.upperBound)/\(length)")
            return HTTPServerResponse(status: .partialContent, headers: headers, body: try body(offsets))
        case .unsatisfiable:
            headers.replaceOrAdd(name: "Content-Range", value: "bytes */\(length)")
            headers.remove(name: "Content-Type")
            return HTTPServerResponse(status: .rangeNotSatisfiable, headers: headers, body: .empty)
        }
    }

    /// ``ranged(for:length:headers:body:)`` for a representation in memory.
    public static func ranged(for head: HTTPRequestHead, bytes: [UInt8], headers: HTTPHeaders = HTTPHeaders()) -> HTTPServerResponse {
        ranged(for: head, length: bytes.count, headers: headers) { offsets in
            guard let offsets else { return .empty }
            return .bytes(offsets.count == bytes.count ? bytes : Array(bytes[offsets]))
        }
    }
}
