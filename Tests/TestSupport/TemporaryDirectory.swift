import Foundation

/// A fresh directory under the system temporary directory, removed with
/// everything in it when the value is released.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    /// `label` (the calling function by default) names the directory, cut to
    /// 40 characters so socket paths inside it stay under the 108-byte limit.
    public init(_ label: String = #function) throws {
        let name = "shoal-tests-\(label.filter { $0.isLetter || $0.isNumber }.prefix(40))-\(UUID().uuidString.prefix(8))"
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent(name)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// A path for `name` inside this directory.
    public func file(_ name: String) -> String {
        (path as NSString).appendingPathComponent(name)
    }

    deinit {
        if (try? FileManager.default.removeItem(atPath: path)) != nil { return }
        // Directories made read-only by extraction tests must be writable to be removed.
        _ = try? Process.run(URL(fileURLWithPath: "/bin/chmod"), arguments: ["-R", "u+rwx", path]).waitUntilExit()
        try? FileManager.default.removeItem(atPath: path)
    }
}
