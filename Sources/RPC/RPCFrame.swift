import Wire

/// One RPC envelope: what one Wire frame carries on an RPC connection.
///
/// Layout (a top-level Wire message): `kind` tag byte, `callID` varint, then
/// the kind's fields:
///
/// | kind       | direction        | fields                                                |
/// |------------|------------------|-------------------------------------------------------|
/// | request    | client → server  | method, mode, deadline ms (0 = none), window, payload |
/// | message    | server → client  | payload (the unary answer, or one stream message)     |
/// | end        | server → client  | status code, message, hint                            |
/// | cancel     | client → server  | —                                                     |
/// | credit     | client → server  | messages (stream window increment)                    |
/// | goAway     | either           | status code, message, hint (call id 0): closing now   |
/// | oneWay     | client → server  | method, payload (call id 0): no answer of any kind    |
///
/// Every kind but `oneWay` is written as format version 1. `oneWay` came
/// later and is written as version 2, so a node that predates it refuses it
/// with a clear `unknownVersion` error ("upgrade this node") in its goAway
/// instead of misreading it; the sender learns why from that goAway.
/// A one-way message that the server cannot take (unknown method, caller
/// not allowed, handler error) has no call to fail: the server says why in
/// a goAway and closes the connection.
///
/// A unary call is answered by one `message` (success) or one `end` with an
/// error status. A stream is answered by any number of `message`s, then an
/// `end` (ok or error). The deadline travels as milliseconds relative to the
/// moment the request was sent, so the two clocks need not agree.
///
/// Stream flow control is credit-based (as HTTP/2's windows): the request's
/// `window` is how many messages the client buffers; the server sends no more
/// than that until `credit` frames grant more. A slow consumer therefore
/// holds back only its own stream, never the connection.
struct RPCFrame: WireCodable, Equatable, Sendable {
    enum Kind: UInt8 {
        case request = 1
        case message = 2
        case end = 3
        case cancel = 4
        case credit = 5
        case goAway = 6
        case oneWay = 7
    }

    enum Mode: UInt8 {
        case unary = 1
        case serverStream = 2
    }

    enum Body: Equatable, Sendable {
        case request(method: String, mode: Mode, deadlineMilliseconds: UInt64, windowMessages: UInt32, payload: [UInt8])
        case message(payload: [UInt8])
        case end(RPCStatus)
        case cancel
        case credit(messages: UInt32)
        case goAway(RPCStatus)
        case oneWay(method: String, payload: [UInt8])
    }

    /// The newest envelope format: 2 added `oneWay`.
    static var wireVersion: UInt8 { 2 }

    /// The format version this frame is written as: the oldest that has its
    /// kind, so peers that predate `oneWay` still read every other frame.
    var formatVersion: UInt8 {
        if case .oneWay = body { return 2 }
        return 1
    }

    var callID: UInt64
    var body: Body

    init(callID: UInt64, _ body: Body) {
        self.callID = callID
        self.body = body
    }

    /// The longest method name accepted, in bytes.
    static let maxMethodBytes = 256
    /// Envelope bytes beyond the payload and the method name, at most: version,
    /// body length, kind, call id, mode, deadline, window, payload length.
    static let maxOverheadBytes = 1 + 10 + 1 + 10 + 1 + 10 + 5 + 5 + 2

    /// Appends this frame as a top-level message (version byte, then the
    /// length-delimited body) in its ``formatVersion``; what a Wire frame carries.
    func writeMessage(to writer: inout WireWriter) {
        writer.writeFixed(formatVersion)
        writer.write(self)
    }

    /// This frame as a top-level message in its ``formatVersion`` (the
    /// protocol's default would write every frame as the newest version).
    func wireEncoded() -> [UInt8] {
        var writer = WireWriter()
        writeMessage(to: &writer)
        return writer.bytes
    }

    func encode(to writer: inout WireWriter) {
        switch body {
        case .request(let method, let mode, let deadline, let window, let payload):
            writer.writeTag(Kind.request)
            writer.writeVarint(callID)
            writer.writeString(method)
            writer.writeTag(mode)
            writer.writeVarint(deadline)
            writer.writeVarint(UInt64(window))
            writer.writeBytes(payload)
        case .message(let payload):
            writer.writeTag(Kind.message)
            writer.writeVarint(callID)
            writer.writeBytes(payload)
        case .end(let status):
            writer.writeTag(Kind.end)
            writer.writeVarint(callID)
            status.write(to: &writer)
        case .cancel:
            writer.writeTag(Kind.cancel)
            writer.writeVarint(callID)
        case .credit(let messages):
            writer.writeTag(Kind.credit)
            writer.writeVarint(callID)
            writer.writeVarint(UInt64(messages))
        case .goAway(let status):
            writer.writeTag(Kind.goAway)
            writer.writeVarint(callID)
            status.write(to: &writer)
        case .oneWay(let method, let payload):
            writer.writeTag(Kind.oneWay)
            writer.writeVarint(callID)
            writer.writeString(method)
            writer.writeBytes(payload)
        }
    }

    init(from reader: inout WireReader) throws(WireError) {
        let kindOffset = reader.offset
        let kind = try reader.readTag(Kind.self)
        if kind == .oneWay && reader.messageVersion < 2 {
            throw WireError.invalidValue(offset: kindOffset, type: "frame kind", reason: "oneWay frames are format version 2, this one says \(reader.messageVersion)")
        }
        callID = try reader.readVarint()
        switch kind {
        case .request:
            let method = try Self.readMethod(&reader)
            let mode = try reader.readTag(Mode.self)
            let deadline = try reader.readVarint()
            let window = try reader.readVarint(as: UInt32.self)
            body = .request(method: method, mode: mode, deadlineMilliseconds: deadline, windowMessages: window, payload: try reader.readBytes())
        case .message:
            body = .message(payload: try reader.readBytes())
        case .end:
            body = .end(try RPCStatus(reading: &reader))
        case .cancel:
            body = .cancel
        case .credit:
            body = .credit(messages: try reader.readVarint(as: UInt32.self))
        case .goAway:
            body = .goAway(try RPCStatus(reading: &reader))
        case .oneWay:
            let method = try Self.readMethod(&reader)
            body = .oneWay(method: method, payload: try reader.readBytes())
        }
    }

    private static func readMethod(_ reader: inout WireReader) throws(WireError) -> String {
        let start = reader.offset
        let method = try reader.readString()
        guard !method.isEmpty, method.utf8.count <= Self.maxMethodBytes else {
            throw WireError.invalidValue(offset: start, type: "method name", reason: "must be 1 to \(Self.maxMethodBytes) bytes, is \(method.utf8.count)")
        }
        return method
    }
}

/// How a call ended: `ok`, or an error code with what went wrong and what to do.
struct RPCStatus: Equatable, Sendable {
    var code: RPCStatusCode
    var message: String
    var hint: String

    static let ok = RPCStatus(code: .ok, message: "", hint: "")

    init(code: RPCStatusCode, message: String, hint: String) {
        self.code = code
        self.message = message
        self.hint = hint
    }

    init(_ error: RPCError) {
        self.init(code: error.code, message: error.message, hint: error.hint)
    }

    /// The error a client throws for this (non-ok) status.
    func error(method: String) -> RPCError {
        RPCError(code == .ok ? .unknown : code, method: method, message: message, hint: hint)
    }

    func write(to writer: inout WireWriter) {
        writer.writeTag(code)
        writer.writeString(message)
        writer.writeString(hint)
    }

    init(reading reader: inout WireReader) throws(WireError) {
        code = try reader.readTag(RPCStatusCode.self)
        message = try reader.readString()
        hint = try reader.readString()
    }
}
