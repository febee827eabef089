/// What a GET for a representation of known length should answer, given
/// its `Range` field: ``HTTPServerResponse/ranged(for:length:headers:body:)``
/// turns this into the response.
public enum HTTPRangeSelection: Sendable, Equatable {
    /// 200 with the whole representation: no `Range`, a method other than
    /// GET, an `If-Range` (Shoal keeps no validators to compare it with, so
    /// RFC 9110 §13.1.5 says to send everything), several ranges, another
    /// unit, or bad syntax.
    case full
    /// 206 with these offsets (inclusive) and `Content-Range: bytes a-b/length`.
    case partial(ClosedRange<Int>)
    /// 416 with `Content-Range: bytes */length`: the range starts at or
    /// past the end (or is an empty suffix).
    case unsatisfiable

    /// Chooses the answer to `head` for a representation of `length` bytes.
    public static func select(for head: HTTPRequestHead, length: Int) -> HTTPRangeSelection {
        guard head.method == .get, !head.headers.contains(name: "If-Range") else { return .full }
        let values = head.headers.values(for: "Range")
        // Several Range fields are as good as a list of ranges: ignore them.
        guard values.count == 1, let range = HTTPByteRange(headerValue: values[0]) else { return .full }
        guard let offsets = range.resolve(length: length) else { return .unsatisfiable }
        return .partial(offsets)
    }
}
