import Foundation
@testable import Images
import Testing

/// `shoal image history`: config history matched to layers, newest first.
@Suite struct ImageHistoryTests {
    static func digest(_ seed: String) -> Digest { Digest.of(Array(seed.utf8)) }

    static func layer(_ seed: String, size: Int64) -> Descriptor {
        Descriptor(mediaType: MediaType.ociLayerGzip, digest: digest(seed), size: size)
    }

    @Test func emptyLayerStepsOwnNoLayerAndTheNewestRowCarriesTheImage() {
        let manifest = ImageManifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: Self.digest("config"), size: 10),
                                     layers: [Self.layer("base", size: 4_260_000), Self.layer("app", size: 1_500)])
        let config = ImageConfig(rootfs: .init(diffIDs: [Self.digest("d1"), Self.digest("d2")]), history: [
            .init(created: "2024-01-02T03:04:05.123456789Z", createdBy: "/bin/sh -c #(nop) ADD file:abc in / "),
            .init(created: "2024-01-02T03:04:06Z", createdBy: "/bin/sh -c #(nop)  CMD [\"sh\"]", emptyLayer: true),
            .init(created: "2024-01-03T00:00:00Z", createdBy: "COPY app /app", comment: "buildkit.dockerfile.v0"),
            .init(created: "2024-01-03T00:00:01Z", createdBy: "EXPOSE 80", emptyLayer: true),
        ])
        let manifestDigest = Self.digest("manifest")
        let rows = ImageHistory(manifest: manifest, manifestDigest: manifestDigest, config: config).rows
        #expect(rows.map(\.createdBy) == ["EXPOSE 80", "COPY app /app", "/bin/sh -c #(nop)  CMD [\"sh\"]", "/bin/sh -c #(nop) ADD file:abc in / "])
        #expect(rows.map(\.sizeBytes) == [0, 1_500, 0, 4_260_000])
        #expect(rows.map(\.emptyLayer) == [true, false, true, false])
        #expect(rows.map(\.id) == [manifestDigest, nil, nil, nil])
        #expect(rows[1].comment == "buildkit.dockerfile.v0")
        // Nanosecond timestamps (Go's) parse.
        #expect(ImageHistory.timestamp(rows[3].created) == "2024-01-02T03:04:05Z")
    }

    @Test func layersWithoutHistoryStillAppear() {
        let manifest = ImageManifest(config: Descriptor(mediaType: MediaType.ociConfig, digest: Self.digest("config"), size: 10),
                                     layers: [Self.layer("a", size: 1), Self.layer("b", size: 2), Self.layer("c", size: 3)])
        let withoutHistory = ImageConfig(rootfs: .init(diffIDs: []), created: "2024-05-06T07:08:09Z")
        let rows = ImageHistory(manifest: manifest, manifestDigest: Self.digest("m"), config: withoutHistory).rows
        #expect(rows.map(\.sizeBytes) == [3, 2, 1])
        #expect(rows.allSatisfy { ImageHistory.timestamp($0.created) == "2024-05-06T07:08:09Z" })
        // History shorter than the layers: the rest get rows of their own.
        let short = ImageConfig(rootfs: .init(diffIDs: []), history: [.init(createdBy: "first")])
        #expect(ImageHistory(manifest: manifest, manifestDigest: Self.digest("m"), config: short).rows.map(\.createdBy) == ["", "", "first"])
    }

    @Test func agesAndSizesReadAsDockerPrintsThem() {
        let now = Date(timeIntervalSince1970: 1_000_000_000)
        let cases: [(TimeInterval, String)] = [
            (0.5, "Less than a second ago"), (1, "1 second ago"), (59, "59 seconds ago"), (60, "About a minute ago"),
            (150, "2 minutes ago"), (3_600, "About an hour ago"), (5 * 3_600, "5 hours ago"), (3 * 86_400, "3 days ago"),
            (20 * 86_400, "2 weeks ago"), (90 * 86_400, "3 months ago"), (800 * 86_400, "2 years ago"),
        ]
        for (age, text) in cases { #expect(ImageHistory.since(now - age, now: now) == text) }
        #expect(ImageHistory.since(nil, now: now) == "N/A")
        #expect(ImageHistory.humanSize(0) == "0B")
        #expect(ImageHistory.humanSize(999) == "999B")
        #expect(ImageHistory.humanSize(4_260_000) == "4.26MB")
        #expect(ImageHistory.humanSize(123_456) == "123kB")
        #expect(ImageHistory.humanSize(1_000_000_000) == "1GB")
    }
}
