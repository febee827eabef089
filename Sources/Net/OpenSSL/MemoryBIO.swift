import COpenSSL

/// Owns one OpenSSL memory `BIO`: the in-memory stream PEM and DER codecs
/// read from and write to.
final class MemoryBIO {
    let pointer: OpaquePointer

    /// An empty, writable buffer.
    init() {
        guard let bio = BIO_new(BIO_s_mem()) else { preconditionFailure("BIO_new(BIO_s_mem()) failed: out of memory") }
        pointer = bio
    }

    /// A buffer holding `bytes` to be read.
    convenience init(_ bytes: [UInt8]) {
        self.init()
        let written = bytes.withUnsafeBytes { BIO_write(pointer, $0.baseAddress, Int32($0.count)) }
        precondition(bytes.isEmpty || written == Int32(bytes.count), "BIO_write to a memory BIO wrote \(written) of \(bytes.count)")
    }

    deinit {
        BIO_free(pointer)
    }

    /// Everything written so far.
    var contents: [UInt8] {
        var data: UnsafeMutablePointer<CChar>?
        let length = shoal_BIO_get_mem_data(pointer, &data)
        guard length > 0, let data else { return [] }
        return data.withMemoryRebound(to: UInt8.self, capacity: length) { Array(UnsafeBufferPointer(start: $0, count: length)) }
    }

    var string: String { String(decoding: contents, as: UTF8.self) }
}
