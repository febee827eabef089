import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// This machine's AES-128-GCM speed as `openssl speed -evp aes-128-gcm`
/// reports it: the ceiling for one TLS connection, whose records are
/// AES-128-GCM (or AES-256-GCM / ChaCha20) on one core per direction.
enum OpenSSLSpeed {
    /// Block size compared with bulk TLS: a full TLS record.
    static let blockBytes = 16 * 1024

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs the openssl CLI and returns bytes/s for `blockBytes` blocks.
    static func aes128GCMBytesPerSecond(seconds: Int) throws -> Double {
        let arguments = ["openssl", "speed", "-seconds", String(seconds), "-bytes", String(blockBytes), "-evp", "aes-128-gcm"]
        return try parse(try run(arguments))
    }

    /// Runs `arguments` (found on PATH) and returns its standard output.
    ///
    /// Spawned with an empty signal mask and default dispositions: `openssl
    /// speed` ends each measurement with SIGALRM, and a child started from
    /// one of Swift's pool threads (Foundation's `Process`) inherits that
    /// thread's blocked signals and then loops forever.
    private static func run(_ arguments: [String]) throws -> String {
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw Failure(description: "pipe: errno \(errno)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 1)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addclose(&actions, pipeEnds[0])
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var empty = sigset_t()
        sigemptyset(&empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var child: pid_t = 0
        let spawned = posix_spawnp(&child, arguments[0], &actions, &attributes, &argv, environ)
        close(pipeEnds[1])
        defer { close(pipeEnds[0]) }
        guard spawned == 0 else {
            throw Failure(description: "cannot run \(arguments[0]) (errno \(spawned)); install it with Cluster/install-dependencies.sh")
        }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
            if count > 0 {
                output += chunk[0..<count]
            } else if count == 0 || errno != EINTR {
                break
            }
        }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw Failure(description: "\(arguments.joined(separator: " ")) exited with status \(status)") }
        return String(decoding: output, as: UTF8.self)
    }

    /// Parses the table: a header `type  16 bytes ... 16384 bytes` and the
    /// last line `AES-128-GCM  ...  5408857.04k` (in 1000s of bytes/s).
    static func parse(_ text: String) throws -> Double {
        let lines = text.split(separator: "\n").map(String.init)
        guard let header = lines.last(where: { $0.hasPrefix("type") }), let last = lines.last, last.hasPrefix("AES-128-GCM") else {
            throw Failure(description: "no AES-128-GCM table in openssl's output:\n\(text)")
        }
        // Header columns are "<n> bytes"; values are "<x>k".
        let sizes = header.split(separator: " ").compactMap { Int($0) }
        let values = last.split(separator: " ").filter { $0.hasSuffix("k") }.compactMap { Double($0.dropLast()) }
        guard sizes.count == values.count, let column = sizes.firstIndex(of: blockBytes) else {
            throw Failure(description: "openssl's table has no \(blockBytes)-byte column:\n\(header)\n\(last)")
        }
        return values[column] * 1000
    }
}
