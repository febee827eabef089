import Foundation

/// The `shoal` binary that `swift build --build-tests` puts beside the test
/// bundle (all products share one directory), or `SHOAL_EXECUTABLE`.
public enum ShoalBinary {
    /// Where the binary is, or nil when it is not built.
    public static var path: String? { try? url().path }

    /// Where the binary is; throws what was searched and how to build it.
    public static func url() throws -> URL {
        if let override = ProcessInfo.processInfo.environment["SHOAL_EXECUTABLE"] {
            return URL(fileURLWithPath: override)
        }
        var starts: [URL] = []
        if let executable = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            starts.append(URL(fileURLWithPath: executable).deletingLastPathComponent())
        }
        starts.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        starts.append(Bundle.main.bundleURL.deletingLastPathComponent())
        var searched: [String] = []
        for start in starts {
            // The bundle may sit a few levels below the products directory.
            var directory = start
            for _ in 0..<4 {
                let candidate = directory.appendingPathComponent("shoal")
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
                searched.append(directory.path)
                directory = directory.deletingLastPathComponent()
            }
        }
        throw Missing(searched: searched)
    }

    public struct Missing: Error, CustomStringConvertible {
        public var searched: [String]
        public var description: String {
            "no shoal executable next to the tests (looked in \(searched.joined(separator: ", "))): "
                + "build it with `swift build --build-tests` before `swift test --skip-build`, or set SHOAL_EXECUTABLE"
        }
    }
}
