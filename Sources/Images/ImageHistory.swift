import Foundation

/// `shoal image history`: the build steps of an image, newest first, from
/// its config's `history` matched to its manifest's layers (as
/// `docker history` shows them).
///
/// Every history entry without `empty_layer` owns the next layer, bottom
/// first. Layers no entry owns (an image built without history, as some
/// tools write) get a row of their own, so every layer appears once.
public struct ImageHistory: Sendable {
    /// One step; ``id`` is the image's manifest digest on the newest row and
    /// nil on the others (Docker's `<missing>`: those steps have no image of their own).
    public struct Row: Sendable, Equatable {
        public var id: Digest?
        public var created: Date?
        public var createdBy: String
        /// The layer blob's size in bytes (as stored: compressed if the layer is), 0 for a step without a layer.
        public var sizeBytes: Int64
        public var comment: String
        public var emptyLayer: Bool
    }

    public let rows: [Row]

    public init(manifest: ImageManifest, manifestDigest: Digest, config: ImageConfig) {
        var layers = manifest.layers[...]
        var oldestFirst: [Row] = []
        for entry in config.history ?? [] {
            let empty = entry.emptyLayer ?? false
            let layer = empty ? nil : layers.popFirst()
            oldestFirst.append(Row(id: nil, created: entry.created.flatMap(Self.parseDate), createdBy: entry.createdBy ?? "",
                                   sizeBytes: layer?.size ?? 0, comment: entry.comment ?? "", emptyLayer: empty))
        }
        let created = config.created.flatMap(Self.parseDate)
        for layer in layers {
            oldestFirst.append(Row(id: nil, created: created, createdBy: "", sizeBytes: layer.size, comment: "", emptyLayer: false))
        }
        var newestFirst = Array(oldestFirst.reversed())
        if !newestFirst.isEmpty { newestFirst[0].id = manifestDigest }
        rows = newestFirst
    }

    /// RFC 3339 with or without fractional seconds (Go writes nanoseconds).
    static func parseDate(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = fractional.date(from: text) { return date }
        // Foundation parses at most millisecond fractions: cut longer ones.
        if let dot = text.firstIndex(of: "."), let end = text[dot...].firstIndex(where: { $0 == "Z" || $0 == "+" || $0 == "-" }) {
            let digits = text[text.index(after: dot)..<end]
            return fractional.date(from: String(text[..<dot]) + "." + digits.prefix(3).padding(toLength: 3, withPad: "0", startingAt: 0) + text[end...])
        }
        return nil
    }

    /// Docker's "2 hours ago" (go-units HumanDuration).
    public static func since(_ date: Date?, now: Date) -> String {
        guard let date else { return "N/A" }
        let seconds = Int(now.timeIntervalSince(date))
        if seconds < 1 { return "Less than a second ago" }
        if seconds == 1 { return "1 second ago" }
        if seconds < 60 { return "\(seconds) seconds ago" }
        let minutes = seconds / 60
        if minutes == 1 { return "About a minute ago" }
        if minutes < 60 { return "\(minutes) minutes ago" }
        let hours = minutes / 60
        if hours == 1 { return "About an hour ago" }
        if hours < 48 { return "\(hours) hours ago" }
        if hours < 24 * 7 * 2 { return "\(hours / 24) days ago" }
        if hours < 24 * 30 * 2 { return "\(hours / 24 / 7) weeks ago" }
        if hours < 24 * 365 * 2 { return "\(hours / 24 / 30) months ago" }
        return "\(hours / 24 / 365) years ago"
    }

    /// Docker's decimal sizes with three significant digits: `0B`, `4.26MB`, `123kB`.
    public static func humanSize(_ bytes: Int64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB", "PB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        var text = String(format: "%.3g", value)
        if text.contains("e") { text = String(format: "%.0f", value) }
        return text + units[unit]
    }

    /// RFC 3339 in UTC, as `docker history --format json` writes `CreatedAt`.
    public static func timestamp(_ date: Date?) -> String {
        guard let date else { return "" }
        return ISO8601DateFormatter().string(from: date)
    }
}
