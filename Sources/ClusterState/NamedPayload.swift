/// The spec of a config or a secret: a name, labels and the bytes tasks get
/// (for a secret, already encrypted by the manager). Bytes are one base64
/// string in JSON.
public struct NamedPayload: Codable, Sendable, Equatable, Hashable {
    public var name: String
    public var labels: [String: String]
    public var data: [UInt8]

    public init(name: String, labels: [String: String] = [:], data: [UInt8]) {
        self.name = name
        self.labels = labels
        self.data = data
    }

    private enum CodingKeys: String, CodingKey { case name, labels, data }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        labels = try container.decode([String: String].self, forKey: .labels)
        data = try container.decodeBytes(forKey: .data)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(labels, forKey: .labels)
        try container.encodeBytes(data, forKey: .data)
    }
}
