import Foundation

/// A manifest or an index, decoded from bytes with the limits and checks a
/// registry client and the store need: size checked before decoding, media
/// type (from the document or, as umoci omits it, from the transport's
/// `Content-Type`) checked against what Shoal handles, schema version 2.
public enum ImageDocument: Hashable, Sendable {
    case manifest(ImageManifest)
    case index(ImageIndex)

    /// Manifests and indexes larger than this are refused before decoding
    /// (the distribution registry uses the same 4 MiB bound).
    public static let maximumManifestBytes = 4 << 20
    /// Image configs larger than this are refused before decoding.
    public static let maximumConfigBytes = 4 << 20

    /// Decodes a manifest or index. `mediaType` is the transport's media type
    /// (HTTP `Content-Type`, descriptor `mediaType`), used when the document
    /// has none; when both are present the document's wins.
    public static func decode(_ bytes: [UInt8], mediaType: String? = nil) throws(ImageDocumentError) -> ImageDocument {
        guard bytes.count <= maximumManifestBytes else {
            throw .tooLarge(kind: "manifest", sizeBytes: bytes.count, limitBytes: maximumManifestBytes)
        }
        let probe: Probe = try decodeJSON(Probe.self, from: bytes, kind: "manifest")
        if probe.schemaVersion != 2 {
            if probe.schemaVersion == 1 {
                throw .unsupportedMediaType(MediaType.dockerManifestSchema1, expected: [])
            }
            throw .unsupportedSchemaVersion(probe.schemaVersion ?? 0)
        }
        var type = probe.mediaType ?? mediaType.map(Self.stripParameters)
        if type == nil {
            // OCI lets both omit mediaType; the fields tell them apart.
            if probe.manifests != nil { type = MediaType.ociIndex }
            else if probe.config != nil { type = MediaType.ociManifest }
        }
        guard let type else {
            throw .malformed(kind: "manifest", reason: "no mediaType, no config and no manifests: this is neither a manifest nor an index")
        }
        if MediaType.manifests.contains(type) {
            let manifest = try decodeJSON(ImageManifest.self, from: bytes, kind: "manifest")
            return .manifest(manifest)
        }
        if MediaType.indexes.contains(type) {
            return .index(try decodeJSON(ImageIndex.self, from: bytes, kind: "index"))
        }
        throw .unsupportedMediaType(type, expected: Array(MediaType.manifests.union(MediaType.indexes)))
    }

    /// Decodes bytes fetched by `digest`, after checking that they hash to it.
    public static func decode(_ bytes: [UInt8], digest: Digest, mediaType: String? = nil) throws(ImageDocumentError) -> ImageDocument {
        guard bytes.count <= maximumManifestBytes else {
            throw .tooLarge(kind: "manifest", sizeBytes: bytes.count, limitBytes: maximumManifestBytes)
        }
        let actual = Digest.of(bytes)
        guard actual == digest else { throw .digestMismatch(expected: digest, actual: actual) }
        return try decode(bytes, mediaType: mediaType)
    }

    /// Decodes an image config, refusing one over ``maximumConfigBytes`` before parsing.
    public static func decodeConfig(_ bytes: [UInt8]) throws(ImageDocumentError) -> ImageConfig {
        guard bytes.count <= maximumConfigBytes else {
            throw .tooLarge(kind: "image config", sizeBytes: bytes.count, limitBytes: maximumConfigBytes)
        }
        return try decodeJSON(ImageConfig.self, from: bytes, kind: "image config")
    }

    /// Canonical JSON for a document Shoal writes (sorted keys, no escaped
    /// slashes), so the same content always has the same digest.
    public static func encode(_ value: some Encodable) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return Array(try encoder.encode(value))
        } catch {
            preconditionFailure("encoding an image document cannot fail: \(error)")
        }
    }

    private struct Probe: Decodable {
        var schemaVersion: Int?
        var mediaType: String?
        var config: IgnoredValue?
        var manifests: IgnoredValue?
    }

    private struct IgnoredValue: Decodable {
        init(from decoder: any Decoder) throws {}
    }

    private static func stripParameters(_ contentType: String) -> String {
        String(contentType.split(separator: ";", maxSplits: 1).first ?? "").trimmingCharacters(in: .whitespaces)
    }

    private static func decodeJSON<T: Decodable>(_ type: T.Type, from bytes: [UInt8], kind: String) throws(ImageDocumentError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch let error as DecodingError {
            throw .malformed(kind: kind, reason: describe(error))
        } catch {
            throw .malformed(kind: kind, reason: "\(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let text = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return text.isEmpty ? "the document" : text
        }
        switch error {
        case let .keyNotFound(key, context): return "missing field \(path(context)).\(key.stringValue)"
        case let .typeMismatch(_, context): return "wrong type at \(path(context)): \(context.debugDescription)"
        case let .valueNotFound(_, context): return "missing value at \(path(context))"
        case let .dataCorrupted(context): return "invalid value at \(path(context)): \(context.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}
