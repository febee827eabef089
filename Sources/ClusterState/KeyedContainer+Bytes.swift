import Foundation

// Config and secret bytes are stored (log entries, snapshots, the event
// stream) as one base64 string. JSON's array of numbers cost a decode call per
// byte: with 256-byte configs, decoding proposals was most of the Raft
// thread's time on every manager. Arrays written before still decode.

extension KeyedEncodingContainer {
    mutating func encodeBytes(_ bytes: [UInt8], forKey key: Key) throws {
        try encode(Data(bytes).base64EncodedString(), forKey: key)
    }
}

extension KeyedDecodingContainer {
    /// Bytes as a base64 string, or as the array of numbers of earlier versions.
    func decodeBytes(forKey key: Key) throws -> [UInt8] {
        if let text = try? decode(String.self, forKey: key) {
            guard let data = Data(base64Encoded: text) else {
                throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "bytes must be base64")
            }
            return Array(data)
        }
        return try decode([UInt8].self, forKey: key)
    }
}
