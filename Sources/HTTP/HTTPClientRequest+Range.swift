extension HTTPClientRequest {
    /// The single byte range asked for (`Range: bytes=...`); nil asks for
    /// the whole representation. A server that honours it answers 206 with
    /// ``HTTPClientResponse/contentRange``; one that does not answers 200
    /// with everything, so check the status.
    public var byteRange: HTTPByteRange? {
        get { headers["Range"].flatMap(HTTPByteRange.init(headerValue:)) }
        set {
            if let newValue {
                headers.replaceOrAdd(name: "Range", value: newValue.headerValue)
            } else {
                headers.remove(name: "Range")
            }
        }
    }
}

extension HTTPClientResponse {
    /// The response's `Content-Range`, if present and well formed.
    public var contentRange: HTTPContentRange? {
        headers["Content-Range"].flatMap(HTTPContentRange.init(headerValue:))
    }
}
