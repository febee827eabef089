import Foundation
import HTTP
#if canImport(Glibc)
import Glibc
#endif

extension ControlClient {
    /// Bytes read from an upload's file per body write.
    static let uploadChunkBytes = 1 << 16

    /// Sends the `length` bytes of `descriptor` (read from its current
    /// offset; the caller owns it) as the body of `method target`; throws
    /// the ``APIError`` of a non-2xx answer.
    public func upload(_ method: HTTPMethod, _ target: String, from descriptor: Int32, length: Int, contentType: String = "application/x-tar") async throws {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: contentType)
        let body = HTTPBody.stream(length: length) { writer in
            var buffer = [UInt8](repeating: 0, count: Self.uploadChunkBytes)
            var remaining = length
            while remaining > 0 {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, min($0.count, remaining)) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else {
                    throw APIError(status: 500, code: "read_failed", message: "the upload's file ended or failed early: \(String(cString: strerror(errno)))",
                                   hint: "check the file was not changed while it was sent")
                }
                try await writer.write(Array(buffer[..<count]))
                remaining -= count
            }
        }
        let response = try await client.execute(HTTPClientRequest(method: method, url: base.with(target: target), headers: headers, body: body))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        if let error = Response(status: response.status.code, headers: response.headers, body: bytes).error { throw error }
    }

    /// Writes every chunk of `body` to `descriptor`; returns the bytes written.
    static func write(_ body: HTTPIncomingBody, to descriptor: Int32) async throws -> Int {
        var written = 0
        for try await chunk in body {
            var offset = 0
            while offset < chunk.count {
                let count = chunk.withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else {
                    throw APIError(status: 500, code: "write_failed", message: "cannot write the download: \(String(cString: strerror(errno)))",
                                   hint: "check the destination's free space and permissions")
                }
                offset += count
            }
            written += chunk.count
        }
        return written
    }
}
