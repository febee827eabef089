import Foundation
@testable import Images
import Testing

/// Unknown media types: refused by name, with what Shoal accepts, never guessed.
@Suite struct MediaTypeErrorTests {
    @Test func unknownManifestMediaTypesAreRefused() throws {
        let document = #"{"schemaVersion":2,"mediaType":"application/vnd.example.thing.v1+json","config":{"mediaType":"x","digest":"sha256:\#(String(repeating: "a", count: 64))","size":1},"layers":[]}"#
        #expect {
            try ImageDocument.decode(Array(document.utf8))
        } throws: { error in
            guard case .unsupportedMediaType(let type, let expected)? = error as? ImageDocumentError else { return false }
            return type == "application/vnd.example.thing.v1+json" && expected.contains(MediaType.ociManifest)
                && "\(error)".contains("application/vnd.example.thing.v1+json")
        }
        // A document with no media type of its own takes the transport's, and an unknown one is refused too.
        let bare = #"{"schemaVersion":2,"manifests":[]}"#
        #expect(throws: ImageDocumentError.self) { try ImageDocument.decode(Array(bare.utf8), mediaType: "text/plain") }
    }

    @Test func unknownAndZstdLayersAreRefusedBeforeExtraction() throws {
        #expect(try LayerCompression(mediaType: MediaType.ociLayerGzip) == .gzip)
        #expect(try LayerCompression(mediaType: MediaType.dockerLayerGzip) == .gzip)
        #expect(try LayerCompression(mediaType: MediaType.ociLayer) == LayerCompression.none)
        #expect {
            try LayerCompression(mediaType: "application/vnd.example.layer.v1.squashfs")
        } throws: { "\($0)".contains("unknown layer media type \"application/vnd.example.layer.v1.squashfs\"") }
        #expect {
            try LayerCompression(mediaType: MediaType.ociLayerZstd)
        } throws: { "\($0)".contains("zstd") && "\($0)".contains("gzip") }
        #expect {
            try LayerCompression.detect([0x28, 0xB5, 0x2F, 0xFD, 0, 0])
        } throws: { "\($0)".contains("zstd") }
    }
}
