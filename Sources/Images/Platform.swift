/// The platform an image runs on (OCI image-spec `platform`).
public struct Platform: Codable, Hashable, Sendable, CustomStringConvertible {
    public var architecture: String
    public var os: String
    public var variant: String?
    public var osVersion: String?
    public var osFeatures: [String]?

    enum CodingKeys: String, CodingKey {
        case architecture, os, variant
        case osVersion = "os.version"
        case osFeatures = "os.features"
    }

    public init(architecture: String, os: String, variant: String? = nil) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
    }

    /// The platform Shoal's workers run today.
    public static let linuxAMD64 = Platform(architecture: "amd64", os: "linux")

    public var description: String {
        "\(os)/\(architecture)" + (variant.map { "/\($0)" } ?? "")
    }

    /// Whether an image built for `self` runs on `wanted`: same os and
    /// architecture, and the same variant when `wanted` names one.
    public func matches(_ wanted: Platform) -> Bool {
        os == wanted.os && architecture == wanted.architecture
            && (wanted.variant == nil || variant == wanted.variant)
    }
}
