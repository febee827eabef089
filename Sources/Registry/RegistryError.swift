import Foundation
import HTTP

/// An error a registry answers with: an OCI Distribution error code, the
/// HTTP status, a message and optional detail, sent as the spec's body
/// `{"errors":[{"code":"BLOB_UNKNOWN","message":"...","detail":...}]}`.
/// Handlers throw it; the HTTP server turns it into the response.
public struct RegistryError: Error, HTTPResponseError, Sendable, CustomStringConvertible {
    /// The spec's error codes (distribution-spec "Error Codes").
    public enum Code: String, Sendable, Codable {
        case blobUnknown = "BLOB_UNKNOWN"
        case blobUploadInvalid = "BLOB_UPLOAD_INVALID"
        case blobUploadUnknown = "BLOB_UPLOAD_UNKNOWN"
        case digestInvalid = "DIGEST_INVALID"
        case manifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
        case manifestInvalid = "MANIFEST_INVALID"
        case manifestUnknown = "MANIFEST_UNKNOWN"
        case nameInvalid = "NAME_INVALID"
        case nameUnknown = "NAME_UNKNOWN"
        case sizeInvalid = "SIZE_INVALID"
        case unauthorized = "UNAUTHORIZED"
        case denied = "DENIED"
        case unsupported = "UNSUPPORTED"
        case tooManyRequests = "TOOMANYREQUESTS"
        /// Not in the spec's table; the distribution registry sends it for server faults.
        case unknown = "UNKNOWN"
    }

    public var code: Code
    public var status: HTTPStatus
    public var message: String
    public var detail: String?
    /// Extra response fields (WWW-Authenticate, Range, Location).
    public var headers: HTTPHeaders

    public init(_ code: Code, status: HTTPStatus, _ message: String, detail: String? = nil, headers: HTTPHeaders = HTTPHeaders()) {
        self.code = code
        self.status = status
        self.message = message
        self.detail = detail
        self.headers = headers
    }

    public var description: String {
        "\(status.code) \(code.rawValue): \(message)" + (detail.map { " (\($0))" } ?? "")
    }

    /// The JSON body.
    public var body: [UInt8] {
        struct Entry: Encodable { var code: String; var message: String; var detail: String? }
        struct Body: Encodable { var errors: [Entry] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(Body(errors: [Entry(code: code.rawValue, message: message, detail: detail)]))) ?? Data())
    }

    public var response: HTTPServerResponse {
        var headers = self.headers
        headers.replaceOrAdd(name: "Content-Type", value: "application/json")
        headers.replaceOrAdd(name: "Docker-Distribution-API-Version", value: "registry/2.0")
        return HTTPServerResponse(status: status, headers: headers, body: .bytes(body))
    }

    // MARK: The common cases

    static func blobUnknown(_ digest: String) -> RegistryError {
        RegistryError(.blobUnknown, status: .notFound, "blob unknown to registry", detail: digest)
    }
    static func uploadUnknown(_ id: String) -> RegistryError {
        RegistryError(.blobUploadUnknown, status: .notFound, "blob upload unknown to registry (unknown, finished, cancelled or expired session)", detail: id)
    }
    static func digestInvalid(_ detail: String) -> RegistryError {
        RegistryError(.digestInvalid, status: .badRequest, "provided digest did not match uploaded content", detail: detail)
    }
    static func manifestUnknown(_ reference: String) -> RegistryError {
        RegistryError(.manifestUnknown, status: .notFound, "manifest unknown", detail: reference)
    }
    static func manifestInvalid(_ detail: String) -> RegistryError {
        RegistryError(.manifestInvalid, status: .badRequest, "manifest invalid", detail: detail)
    }
    static func nameInvalid(_ name: String, _ reason: String) -> RegistryError {
        RegistryError(.nameInvalid, status: .badRequest, "invalid repository name", detail: "\(name): \(reason)")
    }
    static func nameUnknown(_ name: String) -> RegistryError {
        RegistryError(.nameUnknown, status: .notFound, "repository name not known to registry", detail: name)
    }
}

/// An error response a registry sent to ``RegistryClient``, decoded.
public struct RegistryResponseError: Error, Sendable, CustomStringConvertible {
    public struct Entry: Decodable, Sendable {
        public var code: String
        public var message: String?
    }
    /// What the client was doing (`GET http://.../manifests/latest`).
    public let request: String
    public let status: Int
    public let errors: [Entry]
    /// The body when it was not the spec's JSON.
    public let rawBody: String?

    init(request: String, status: Int, body: [UInt8]) {
        self.request = request
        self.status = status
        struct Body: Decodable { var errors: [Entry] }
        if let decoded = try? JSONDecoder().decode(Body.self, from: Data(body)) {
            errors = decoded.errors
            rawBody = nil
        } else {
            errors = []
            rawBody = String(decoding: body.prefix(512), as: UTF8.self)
        }
    }

    /// The first error code, if the registry sent one.
    public var code: String? { errors.first?.code }

    public var description: String {
        let what = errors.isEmpty
            ? (rawBody.map { $0.isEmpty ? "" : ": \($0.trimmingCharacters(in: .whitespacesAndNewlines))" } ?? "")
            : ": " + errors.map { "\($0.code)" + ($0.message.map { " (\($0))" } ?? "") }.joined(separator: "; ")
        var hint = ""
        switch status {
        case 401: hint = "; check the credentials (--user USER:PASSWORD)"
        case 403: hint = "; the credentials lack access to this repository"
        case 404: hint = "; check the name, tag and registry"
        default: break
        }
        return "\(request) answered \(status)\(what)\(hint)"
    }
}
