import COpenSSL

/// The OpenSSL `BIO` an ``SSLSession`` moves its ciphertext through: straight
/// between OpenSSL's record buffers and the ``Connection``'s socket.
///
/// With memory BIOs every byte of ciphertext was copied into the BIO and out
/// of it again; here a record leaves OpenSSL's write buffer in one `send`,
/// and received ciphertext is copied once, from a large `recv` buffer into
/// OpenSSL's record buffer, where it is decrypted in place. Everything goes through
/// ``Connection``, so its lock, send buffer and back-pressure apply as to plain
/// writes:
/// - a write always takes every byte (what the kernel refuses, the connection
///   buffers; ``TLSConnection`` waits for that buffer to drain);
/// - a read with nothing to read says "retry" (the caller waits for
///   readability), and so does the end of the TCP stream, which is only
///   recorded in ``reachedEndOfStream``: the caller decides what a missing
///   close_notify means, and OpenSSL sends no alert into a closed socket;
/// - a socket error is kept in ``failure`` for the caller to throw as it is.
///
/// Used only under ``TLSConnection``'s lock, like its session.
final class ConnectionBIO {
    let connection: Connection
    /// The `BIO`, owned by the `SSL` once passed to `SSL_set_bio`; it points
    /// back here without a reference, so the session keeps this object alive.
    let pointer: OpaquePointer
    /// The first error the socket reported.
    private(set) var failure: (any Error)?
    /// The peer closed its side of the TCP stream.
    private(set) var reachedEndOfStream = false

    init(connection: Connection) {
        self.connection = connection
        guard let bio = BIO_new(Self.method) else { preconditionFailure("BIO_new(connection BIO) failed: out of memory") }
        pointer = bio
        BIO_set_data(bio, Unmanaged.passUnretained(self).toOpaque())
        BIO_set_init(bio, 1)
    }

    /// The callbacks, registered once per process.
    nonisolated(unsafe) private static let method: OpaquePointer = {
        guard let method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "shoal connection") else {
            preconditionFailure("BIO_meth_new failed: out of memory")
        }
        _ = BIO_meth_set_write_ex(method) { bio, data, length, written in
            ConnectionBIO.of(bio).write(bio, UnsafeRawBufferPointer(start: data, count: length), written)
        }
        _ = BIO_meth_set_read_ex(method) { bio, data, length, read in
            ConnectionBIO.of(bio).read(bio, UnsafeMutableRawBufferPointer(start: data, count: length), read)
        }
        _ = BIO_meth_set_ctrl(method) { _, command, _, _ in
            // OpenSSL flushes after each handshake flight; writes are already on their way.
            command == BIO_CTRL_FLUSH ? 1 : 0
        }
        return method
    }()

    private static func of(_ bio: OpaquePointer?) -> ConnectionBIO {
        Unmanaged<ConnectionBIO>.fromOpaque(BIO_get_data(bio)!).takeUnretainedValue()
    }

    // While corked, records collect here and leave in one `send` at `uncork`.
    private var outbound: [UInt8] = []
    private var isCorked = false

    /// Collects what OpenSSL writes until ``uncork()`` to send it in one
    /// piece: one syscall and one wakeup of the reader per write or
    /// handshake flight, not per record. `reservingBytes` avoids regrowing.
    func cork(reservingBytes: Int) {
        isCorked = true
        outbound.reserveCapacity(reservingBytes)
    }

    /// The ciphertext of `plaintextBytes` in full records, headers and tags included (generously).
    static func ciphertextBytes(forPlaintext plaintextBytes: Int) -> Int {
        plaintextBytes + (plaintextBytes / recordPlaintextBytes + 1) * recordOverheadBytes
    }

    /// Sends what collected since ``cork(reservingBytes:)``; a socket
    /// failure lands in ``failure``.
    func uncork() {
        isCorked = false
        defer { outbound.removeAll() }
        guard !outbound.isEmpty, failure == nil else { return }
        do {
            try outbound.withUnsafeBytes { _ = try connection.enqueue($0) }
        } catch {
            failure = error
        }
    }

    /// A TLS record's most plaintext, and (generously) what a record adds to it.
    private static let recordPlaintextBytes = 16 * 1024
    private static let recordOverheadBytes = 64

    private func write(_ bio: OpaquePointer?, _ bytes: UnsafeRawBufferPointer, _ written: UnsafeMutablePointer<Int>?) -> Int32 {
        BIO_clear_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_WRITE | BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY)
        guard failure == nil else { return 0 }
        if isCorked {
            outbound.append(contentsOf: bytes)
        } else {
            do {
                try connection.enqueue(bytes)
            } catch {
                failure = error
                return 0
            }
        }
        written?.pointee = bytes.count
        return 1
    }

    /// Ciphertext taken from the socket per `recv`: many records per syscall.
    static let inboundChunkBytes = 256 * 1024

    // Ciphertext received but not yet handed to OpenSSL: `inbound[inboundStart..<inboundEnd]`.
    // Allocated for a refill; freed once OpenSSL took it all unless the
    // refill filled it (a bulk transfer, whose next refill comes at once),
    // so an idle connection holds none.
    private var inbound: UnsafeMutableRawBufferPointer?
    private var inboundStart = 0
    private var inboundEnd = 0

    /// Ciphertext received from the socket that OpenSSL has not asked for yet.
    var bufferedInboundBytes: Int { inboundEnd - inboundStart }

    deinit {
        inbound?.deallocate()
    }

    /// OpenSSL asks for one record header, then for its body (no read-ahead:
    /// OpenSSL's own read-ahead moves all buffered bytes to the front of its
    /// buffer for every record, quadratic in the buffer's size). The bytes
    /// come from `inbound`, refilled by one large `recv` when empty.
    private func read(_ bio: OpaquePointer?, _ buffer: UnsafeMutableRawBufferPointer, _ read: UnsafeMutablePointer<Int>?) -> Int32 {
        BIO_clear_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_WRITE | BIO_FLAGS_IO_SPECIAL | BIO_FLAGS_SHOULD_RETRY)
        read?.pointee = 0
        guard !buffer.isEmpty else { return 0 }
        if inboundStart == inboundEnd {
            let storage = inbound ?? .allocate(byteCount: Self.inboundChunkBytes, alignment: 64)
            inbound = storage
            let count: Int?
            do {
                count = try connection.readNow(into: storage)
            } catch {
                if failure == nil { failure = error }
                releaseInbound()
                return 0
            }
            guard let count, count > 0 else {
                if count == 0 { reachedEndOfStream = true }
                releaseInbound()
                BIO_set_flags(bio, BIO_FLAGS_READ | BIO_FLAGS_SHOULD_RETRY)
                return 0
            }
            inboundStart = 0
            inboundEnd = count
        }
        let count = min(buffer.count, inboundEnd - inboundStart)
        buffer.baseAddress!.copyMemory(from: inbound!.baseAddress! + inboundStart, byteCount: count)
        inboundStart += count
        if inboundStart == inboundEnd {
            if inboundEnd < Self.inboundChunkBytes { releaseInbound() }
            inboundStart = 0
            inboundEnd = 0
        }
        read?.pointee = count
        return 1
    }

    private func releaseInbound() {
        inbound?.deallocate()
        inbound = nil
        inboundStart = 0
        inboundEnd = 0
    }
}
