/// An incremental HTTP/1.1 message parser that does no I/O.
///
/// The caller feeds bytes as they arrive (`feed`) and pulls events with
/// `next()` until it returns nil ("need more bytes"); at end of stream it
/// calls `finishInput()` and keeps pulling. Events for one message are
/// `.request`/`.response`, then zero or more `.body`, then `.end`; the next
/// message follows on the same parser (keep-alive, pipelining). A thrown
/// ``HTTPParseError`` is final: the parser rethrows it on every later call,
/// and the connection must be closed because message boundaries are lost.
///
/// Strictness (RFC 9112), chosen against request smuggling: lines end in
/// CRLF only (bare LF refused), no obs-fold, no whitespace before a field's
/// colon, Content-Length together with Transfer-Encoding refused, differing
/// Content-Length values refused, chunked must be the only transfer coding.
///
/// The parser holds at most one head (bounded by the limits) plus whatever
/// the caller fed: a server applies back-pressure simply by not reading more
/// from the socket until the handler took the body events.
public struct HTTPParser: Sendable {
    /// Which kind of message the stream carries.
    public enum Kind: Sendable { case request, response }

    private enum State: Sendable, Equatable {
        case head
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers
        case untilClose
        case messageEnd
        /// After an until-close body ended: nothing may follow.
        case closed
    }

    public let kind: Kind
    public let limits: HTTPParserLimits

    private var buffer: [UInt8] = []
    private var readIndex = 0
    /// Where the search for the current line's LF resumes (avoids rescanning
    /// when bytes arrive one at a time).
    private var scanIndex = 0
    private var state: State = .head
    private var failure: HTTPParseError?
    private var inputFinished = false

    // The head being assembled.
    private var startLine: [UInt8]?
    private var fields = HTTPHeaders()
    private var headBytes = 0
    private var leadingEmptyLines = 0
    private var trailers = HTTPHeaders()
    private var trailerBytes = 0

    // The body being delivered.
    private var bodyLimitBytes: Int?
    private var bodyBytesSeen = 0
    private var declaredLengthChecked = false
    /// Response parsers: the methods of requests whose responses are still due, oldest first.
    private var pendingRequestMethods: [HTTPMethod] = []

    /// The framing of the message whose head was returned last; nil between messages.
    public private(set) var bodyFraming: HTTPBodyFraming?

    public init(kind: Kind, limits: HTTPParserLimits = .default) {
        self.kind = kind
        self.limits = limits
        self.bodyLimitBytes = limits.maxBodyBytes
    }

    // MARK: Input

    /// Appends bytes received from the peer.
    public mutating func feed(_ bytes: some Collection<UInt8>) {
        precondition(!inputFinished, "feed after finishInput: the stream already ended")
        if readIndex > 0, readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            scanIndex -= readIndex
            readIndex = 0
        } else if readIndex >= Self.compactionThresholdBytes, readIndex * 2 >= buffer.count {
            buffer.removeFirst(readIndex)
            scanIndex -= readIndex
            readIndex = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// Consumed bytes kept at the front of the buffer before it is compacted.
    static let compactionThresholdBytes = 64 * 1024

    /// Tells the parser the peer closed its side; later `next()` calls report
    /// the end of an until-close body, or ``HTTPParseError/unexpectedEndOfStream(_:)``
    /// inside a message.
    /// Hands over the bytes buffered past the current message and forgets
    /// them: after a `101 Switching Protocols` they belong to the new protocol.
    public mutating func takeBufferedBytes() -> [UInt8] {
        defer {
            buffer.removeAll(keepingCapacity: false)
            readIndex = 0
            scanIndex = 0
        }
        return Array(buffer[readIndex...])
    }

    public mutating func finishInput() {
        inputFinished = true
    }

    /// Response parsers: the method of the request the next response answers
    /// (HEAD responses have no body). Call once per request sent, in order.
    public mutating func expectResponse(to method: HTTPMethod) {
        precondition(kind == .response, "expectResponse(to:) is for response parsers")
        pendingRequestMethods.append(method)
    }

    /// Sets the body limit of the current message, after its head (a route's
    /// own limit; a declared Content-Length is checked against the limit in
    /// force at the first `next()` after the head). Throws ``HTTPParseError/bodyTooLarge(limitBytes:)`` at once
    /// when the declared Content-Length is already above it, so a server can
    /// answer 413 without reading (or asking for) the body.
    public mutating func setBodyLimit(_ limitBytes: Int?) throws(HTTPParseError) {
        bodyLimitBytes = limitBytes
        if let limitBytes, case .length(let length)? = bodyFraming, length > limitBytes {
            throw fail(.bodyTooLarge(limitBytes: limitBytes))
        }
    }

    /// Bytes fed but not yet returned as events.
    public var bufferedByteCount: Int { buffer.count - readIndex }

    /// True between messages with nothing buffered: closing now loses nothing.
    public var isIdle: Bool {
        state == .head && startLine == nil && headBytes == 0 && bufferedByteCount == 0
    }

    /// True once a message head was parsed and its `.end` not yet returned.
    public var isInsideMessage: Bool { bodyFraming != nil }

    private mutating func fail(_ error: HTTPParseError) -> HTTPParseError {
        failure = error
        return error
    }

    // MARK: Events

    /// The next event, or nil when more bytes are needed.
    public mutating func next() throws(HTTPParseError) -> HTTPParserEvent? {
        if let failure { throw failure }
        do {
            return try step()
        } catch {
            failure = error
            throw error
        }
    }

    private mutating func step() throws(HTTPParseError) -> HTTPParserEvent? {
        while true {
            switch state {
            case .head:
                if let event = try parseHead() { return event }
                if inputFinished, !isIdle { throw .unexpectedEndOfStream("inside a message head") }
                return nil

            case .fixedBody(let remaining):
                if !declaredLengthChecked {
                    // Checked on the first pull after the head, so the caller
                    // can set the route's limit (setBodyLimit) in between.
                    declaredLengthChecked = true
                    if let limit = bodyLimitBytes, remaining > limit { throw .bodyTooLarge(limitBytes: limit) }
                }
                let available = min(bufferedByteCount, remaining)
                if available == 0 {
                    if inputFinished { throw .unexpectedEndOfStream("with \(remaining) body bytes still due") }
                    return nil
                }
                let chunk = take(available)
                state = remaining == available ? .messageEnd : .fixedBody(remaining: remaining - available)
                return .body(chunk)

            case .chunkSize:
                guard let line = try nextLine(limitBytes: limits.maxChunkLineBytes, tooLong: .malformedChunk("chunk size line longer than \(limits.maxChunkLineBytes) bytes")) else {
                    if inputFinished { throw .unexpectedEndOfStream("before the last chunk") }
                    return nil
                }
                let size = try Self.parseChunkSize(buffer[line])
                if size == 0 {
                    state = .trailers
                    continue
                }
                if let limit = bodyLimitBytes, size > limit - bodyBytesSeen {
                    throw .bodyTooLarge(limitBytes: limit)
                }
                bodyBytesSeen += size
                state = .chunkData(remaining: size)

            case .chunkData(let remaining):
                let available = min(bufferedByteCount, remaining)
                if available == 0 {
                    if inputFinished { throw .unexpectedEndOfStream("inside a chunk") }
                    return nil
                }
                let chunk = take(available)
                state = remaining == available ? .chunkDataEnd : .chunkData(remaining: remaining - available)
                return .body(chunk)

            case .chunkDataEnd:
                guard bufferedByteCount >= 2 else {
                    if inputFinished { throw .unexpectedEndOfStream("after a chunk") }
                    return nil
                }
                guard buffer[readIndex] == Self.carriageReturn, buffer[readIndex + 1] == Self.lineFeed else {
                    throw .malformedChunk("chunk data not followed by CRLF (the chunk size does not match its data)")
                }
                readIndex += 2
                scanIndex = readIndex
                state = .chunkSize

            case .trailers:
                guard let line = try nextLine(limitBytes: limits.maxFieldLineBytes, tooLong: .fieldLineTooLong(limitBytes: limits.maxFieldLineBytes)) else {
                    if inputFinished { throw .unexpectedEndOfStream("inside the trailer section") }
                    if trailerBytes + bufferedByteCount > limits.maxHeadBytes { throw .headTooLarge(limitBytes: limits.maxHeadBytes) }
                    return nil
                }
                trailerBytes += line.count + 2
                if trailerBytes > limits.maxHeadBytes { throw .headTooLarge(limitBytes: limits.maxHeadBytes) }
                if line.isEmpty {
                    state = .messageEnd
                    continue
                }
                guard trailers.count < limits.maxFieldCount else { throw .tooManyFields(limit: limits.maxFieldCount) }
                let (name, value) = try Self.parseField(buffer[line])
                trailers.add(name: name, value: value)

            case .untilClose:
                if bufferedByteCount > 0 {
                    return .body(take(bufferedByteCount))
                }
                if inputFinished {
                    state = .messageEnd
                    continue
                }
                return nil

            case .messageEnd:
                let ended = trailers
                let wasUntilClose = bodyFraming == .untilClose
                resetForNextMessage()
                if wasUntilClose { state = .closed }
                return .end(trailers: ended)

            case .closed:
                return nil
            }
        }
    }

    private mutating func resetForNextMessage() {
        state = .head
        startLine = nil
        fields = HTTPHeaders()
        headBytes = 0
        leadingEmptyLines = 0
        trailers = HTTPHeaders()
        trailerBytes = 0
        bodyLimitBytes = limits.maxBodyBytes
        bodyBytesSeen = 0
        bodyFraming = nil
    }

    private mutating func take(_ count: Int) -> [UInt8] {
        let chunk = Array(buffer[readIndex..<readIndex + count])
        readIndex += count
        scanIndex = readIndex
        return chunk
    }

    // MARK: Lines

    static let carriageReturn: UInt8 = 0x0D
    static let lineFeed: UInt8 = 0x0A

    /// The next CRLF-terminated line (without CRLF) as a range of `buffer`,
    /// or nil when no complete line is buffered yet.
    private mutating func nextLine(limitBytes: Int, tooLong: HTTPParseError) throws(HTTPParseError) -> Range<Int>? {
        let end = buffer.count
        var index = max(scanIndex, readIndex)
        let found: Int? = buffer.withUnsafeBufferPointer { bytes in
            while index < end {
                if bytes[index] == Self.lineFeed { return index }
                index += 1
            }
            return nil
        }
        guard let lineFeedIndex = found else {
            scanIndex = end
            // A line that has not ended yet is already too long: refuse it
            // now instead of buffering until the peer sends a LF.
            if end - readIndex > limitBytes + 1 { throw tooLong }
            return nil
        }
        // Judge the length first, as above: whether the LF arrived in the same
        // read as the rest of the line must not change the answer (found by
        // HTTPParserFuzzTests: a long line ending in a bare LF was "too long"
        // or "bare LF" depending on where the input was split).
        if lineFeedIndex - readIndex > limitBytes + 1 { throw tooLong }
        guard lineFeedIndex > readIndex, buffer[lineFeedIndex - 1] == Self.carriageReturn else {
            throw .bareLineTerminator
        }
        let line = readIndex..<(lineFeedIndex - 1)
        if line.count > limitBytes { throw tooLong }
        readIndex = lineFeedIndex + 1
        scanIndex = readIndex
        return line
    }

    // MARK: Head

    private mutating func parseHead() throws(HTTPParseError) -> HTTPParserEvent? {
        while true {
            let isStartLine = startLine == nil
            let lineLimit = isStartLine && kind == .request ? limits.maxRequestLineBytes : limits.maxFieldLineBytes
            let tooLong: HTTPParseError = isStartLine && kind == .request
                ? .requestLineTooLong(limitBytes: limits.maxRequestLineBytes)
                : .fieldLineTooLong(limitBytes: limits.maxFieldLineBytes)
            guard let line = try nextLine(limitBytes: lineLimit, tooLong: tooLong) else {
                if headBytes + bufferedByteCount > limits.maxHeadBytes { throw .headTooLarge(limitBytes: limits.maxHeadBytes) }
                return nil
            }
            headBytes += line.count + 2
            if headBytes > limits.maxHeadBytes { throw .headTooLarge(limitBytes: limits.maxHeadBytes) }
            if isStartLine {
                if line.isEmpty, kind == .request, leadingEmptyLines < limits.maxLeadingEmptyLines {
                    leadingEmptyLines += 1
                    headBytes = 0
                    continue
                }
                guard !line.isEmpty else { throw .malformedStartLine("") }
                startLine = Array(buffer[line])
                continue
            }
            if line.isEmpty { return try finishHead() }
            let first = buffer[line.lowerBound]
            if first == 0x20 || first == 0x09 { throw .obsoleteLineFolding }
            guard fields.count < limits.maxFieldCount else { throw .tooManyFields(limit: limits.maxFieldCount) }
            let (name, value) = try Self.parseField(buffer[line])
            fields.add(name: name, value: value)
        }
    }

    private mutating func finishHead() throws(HTTPParseError) -> HTTPParserEvent {
        let line = startLine ?? []
        switch kind {
        case .request:
            var head = try Self.parseRequestLine(line[...])
            head.headers = fields
            let framing = try requestFraming(head)
            begin(framing)
            return .request(head)
        case .response:
            var head = try Self.parseStatusLine(line[...])
            head.headers = fields
            let framing = try responseFraming(head)
            begin(framing)
            if head.status.isInformational {
                // The final response to the same request follows.
                resetForNextMessage()
            } else if !pendingRequestMethods.isEmpty {
                pendingRequestMethods.removeFirst()
            }
            return .response(head)
        }
    }

    private mutating func begin(_ framing: HTTPBodyFraming) {
        bodyFraming = framing
        bodyBytesSeen = 0
        declaredLengthChecked = false
        switch framing {
        case .none: state = .messageEnd
        case .length(let length): state = length == 0 ? .messageEnd : .fixedBody(remaining: length)
        case .chunked: state = .chunkSize
        case .untilClose: state = .untilClose
        }
    }

    private func requestFraming(_ head: HTTPRequestHead) throws(HTTPParseError) -> HTTPBodyFraming {
        if head.method == .connect { throw .unsupportedMethod(head.method.rawValue) }
        if head.version == .http1_1 {
            let hosts = head.headers.values(for: "Host")
            guard hosts.count == 1 else {
                throw .invalidHost(hosts.isEmpty ? "no Host field" : "\(hosts.count) Host fields")
            }
        }
        return try Self.framing(head.headers, isRequest: true, version: head.version) ?? .none
    }

    private func responseFraming(_ head: HTTPResponseHead) throws(HTTPParseError) -> HTTPBodyFraming {
        if head.status.forbidsContent { return .none }
        if pendingRequestMethods.first == .head { return .none }
        return try Self.framing(head.headers, isRequest: false, version: head.version) ?? .untilClose
    }

    /// The body framing the fields declare (RFC 9112 §6.3), nil when neither
    /// Content-Length nor Transfer-Encoding is present.
    private static func framing(_ headers: HTTPHeaders, isRequest: Bool, version: HTTPVersion) throws(HTTPParseError) -> HTTPBodyFraming? {
        let hasLength = headers.contains(name: "Content-Length")
        if headers.contains(name: "Transfer-Encoding") {
            if hasLength { throw .contentLengthWithTransferEncoding }
            // Only for the errors: the generic `joined(separator:)` looks up a
            // conformance on first use, a scan of all of them in a CLI's run.
            func raw() -> String { headers.values(for: "Transfer-Encoding").joined(separator: ", ") }
            let codings = headers.listValues(for: "Transfer-Encoding").map { $0.lowercased() }
            if isRequest, version == .http1_0 { throw .chunkedNotFinal(raw()) }
            // The usual case, one field that says chunked, without listValues'
            // array of substrings (a type a CLI's one response pays metadata for).
            let fields = headers.values(for: "Transfer-Encoding")
            if fields.count == 1, !fields[0].contains(","), fields[0].trimmingHTTPWhitespace().lowercased() == "chunked" { return .chunked }
            guard codings.last == "chunked" else {
                if isRequest { throw .chunkedNotFinal(raw()) }
                // A response whose final coding is not chunked runs until close
                // (RFC 9112 §6.3 rule 4); we cannot decode other codings.
                throw .unsupportedTransferCoding(raw())
            }
            guard codings.count == 1 else { throw .unsupportedTransferCoding(raw()) }
            return .chunked
        }
        guard hasLength else { return nil }
        let values = headers.listValues(for: "Content-Length")
        guard let first = values.first else { throw .invalidContentLength("") }
        for value in values where value != first { throw .conflictingContentLength(values) }
        guard first.utf8.count <= maxContentLengthDigits, first.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let length = Int(first) else {
            throw .invalidContentLength(first)
        }
        return .length(length)
    }

    /// Content-Length digits accepted (18 digits always fit an Int64).
    static let maxContentLengthDigits = 18

    // MARK: Grammar

    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default: return false
        }
    }

    private static func text(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes, as: UTF8.self)
    }

    static func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPRequestHead {
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3,
              !parts[0].isEmpty, parts[0].allSatisfy(isTokenCharacter),
              !parts[1].isEmpty, parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F })
        else { throw .malformedStartLine(text(line)) }
        let version = try parseVersion(parts[2], line: line)
        return HTTPRequestHead(method: HTTPMethod(text(parts[0])), target: text(parts[1]), version: version)
    }

    static func parseStatusLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPResponseHead {
        // VERSION SP CODE [SP REASON], by index: `split` would make an array
        // of slices, a type whose metadata a CLI's one response pays for.
        guard let firstSpace = line.firstIndex(of: 0x20) else { throw .malformedStartLine(text(line)) }
        let version = try parseVersion(line[..<firstSpace], line: line)
        let rest = line[(firstSpace + 1)...]
        let secondSpace = rest.firstIndex(of: 0x20)
        let code = rest[..<(secondSpace ?? rest.endIndex)]
        guard code.count == 3, code.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int(text(code)), value >= 100 else {
            throw .malformedStartLine(text(line))
        }
        let reason = secondSpace.map { rest[($0 + 1)...] } ?? []
        guard reason.allSatisfy({ $0 == 0x09 || $0 >= 0x20 && $0 != 0x7F }) else { throw .malformedStartLine(text(line)) }
        return HTTPResponseHead(status: HTTPStatus(code: value, reasonPhrase: text(reason)), version: version)
    }

    private static func parseVersion(_ bytes: ArraySlice<UInt8>, line: ArraySlice<UInt8>) throws(HTTPParseError) -> HTTPVersion {
        let prefix = Array("HTTP/".utf8)
        guard bytes.count == 8, bytes.starts(with: prefix) else { throw .malformedStartLine(text(line)) }
        let major = bytes[bytes.startIndex + 5], dot = bytes[bytes.startIndex + 6], minor = bytes[bytes.startIndex + 7]
        guard (0x30...0x39).contains(major), dot == UInt8(ascii: "."), (0x30...0x39).contains(minor) else {
            throw .malformedStartLine(text(line))
        }
        guard major == UInt8(ascii: "1"), minor <= UInt8(ascii: "1") else { throw .unsupportedVersion(text(bytes)) }
        return HTTPVersion(major: 1, minor: Int(minor - 0x30))
    }

    static func parseField(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> (String, String) {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else {
            throw .malformedField("no colon in \(text(line).debugDescription)")
        }
        let name = line[line.startIndex..<colon]
        guard !name.isEmpty else { throw .malformedField("empty field name") }
        guard name.allSatisfy(isTokenCharacter) else {
            // Includes whitespace before the colon (RFC 9112 §5.1: MUST reject).
            throw .malformedField("field name \(text(name).debugDescription) has characters outside the token set (whitespace before the colon?)")
        }
        var start = colon + 1, end = line.endIndex
        while start < end, line[start] == 0x20 || line[start] == 0x09 { start += 1 }
        while end > start, line[end - 1] == 0x20 || line[end - 1] == 0x09 { end -= 1 }
        let value = line[start..<end]
        for byte in value where byte < 0x20 && byte != 0x09 || byte == 0x7F {
            if byte == carriageReturn { throw .bareLineTerminator }
            throw .malformedField("control character 0x\(String(byte, radix: 16)) in the value of \(text(name))")
        }
        return (text(name), text(value))
    }

    static func parseChunkSize(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> Int {
        var size = 0
        var digits = 0
        var index = line.startIndex
        while index < line.endIndex, let value = PercentEncoding.hexValue(line[index]) {
            guard digits < maxChunkSizeHexDigits else { throw .malformedChunk("chunk size has more than \(maxChunkSizeHexDigits) hex digits") }
            size = size << 4 | Int(value)
            digits += 1
            index += 1
        }
        guard digits > 0 else { throw .malformedChunk("chunk size line \(text(line).debugDescription) does not start with hex digits") }
        // What may follow: optional whitespace, then chunk extensions (`;name=value`), ignored.
        var rest = line[index...]
        while let first = rest.first, first == 0x20 || first == 0x09 { rest = rest.dropFirst() }
        if let first = rest.first, first != UInt8(ascii: ";") {
            throw .malformedChunk("unexpected \(text(rest).debugDescription) after the chunk size")
        }
        for byte in rest where byte < 0x20 && byte != 0x09 || byte == 0x7F {
            if byte == carriageReturn { throw .bareLineTerminator }
            throw .malformedChunk("control character in a chunk extension")
        }
        return size
    }

    /// Hex digits accepted in a chunk size (15 always fit an Int64).
    static let maxChunkSizeHexDigits = 15
}
