import Foundation
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// Parsers for the option strings of `shoal container run` as Docker spells
/// them; each bad value is an ``APIError`` naming the flag and the fix.
enum ContainerOptions {
    /// `64m`, `1g`, `512k`, `1048576` (bytes; b/k/m/g, case-insensitive, optional trailing b).
    static func bytes(_ text: String, flag: String) throws -> Int64 {
        var digits = text.lowercased()
        if digits.hasSuffix("b") { digits.removeLast() }  // 64mb -> 64m, 100b -> 100
        var multiplier: Int64 = 1
        let units: [Character: Int64] = ["k": 1 << 10, "m": 1 << 20, "g": 1 << 30]
        if let unit = digits.last, let value = units[unit] {
            multiplier = value
            digits.removeLast()
        }
        guard let value = Double(digits), value > 0, value * Double(multiplier) < Double(Int64.max) else {
            throw APIError.invalid(flag, "'\(text)' is not a size such as 64m, 1g or 1048576")
        }
        return Int64(value * Double(multiplier))
    }

    /// `--restart no|always|unless-stopped|on-failure[:N]`.
    static func restartPolicy(_ text: String?) throws -> RestartPolicy {
        guard let text, !text.isEmpty else { return RestartPolicy(name: .no, maximumRetryCount: 0) }
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard let name = RestartPolicy.Name(rawValue: parts[0]) else {
            throw APIError.invalid("--restart", "'\(text)' must be no, always, unless-stopped or on-failure[:MAX-RETRIES]")
        }
        var count = 0
        if parts.count == 2 {
            guard name == .onFailure, let parsed = Int(parts[1]), parsed >= 0 else {
                throw APIError.invalid("--restart", "'\(text)': only on-failure takes a maximum retry count (a non-negative integer)")
            }
            count = parsed
        }
        return RestartPolicy(name: name, maximumRetryCount: count)
    }

    static func network(_ text: String?) throws -> NetworkMode {
        guard let text, !text.isEmpty else { return ContainerEngine.defaultNetwork }
        guard let mode = NetworkMode(rawValue: text) else {
            throw APIError.invalid("--network", "'\(text)' must be none, host or bridge (user-defined networks are not built)")
        }
        return mode
    }

    /// `-p [IP:]HOST:CONTAINER[/tcp]` or `-p CONTAINER` (a free host port);
    /// without an IP the port binds `defaultAddress` (dockerd's `--ip`).
    static func port(_ text: String, defaultAddress: String = PortMapping.everyInterface) throws -> PortMapping {
        var body = text
        var transport = PortTransport.tcp
        if let slash = body.lastIndex(of: "/") {
            guard let parsed = PortTransport(rawValue: String(body[body.index(after: slash)...])) else {
                throw APIError.invalid("-p", "'\(text)': the protocol must be tcp or udp")
            }
            transport = parsed
            body = String(body[..<slash])
        }
        let parts = body.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        func number(_ value: String, allowZero: Bool) throws -> UInt16 {
            guard let port = UInt16(value), allowZero || port != 0 else {
                throw APIError.invalid("-p", "'\(text)': '\(value)' is not a port number (1-65535)")
            }
            return port
        }
        switch parts.count {
        case 1:
            return PortMapping(hostAddress: defaultAddress, hostPort: 0, containerPort: try number(parts[0], allowZero: false), transport: transport)
        case 2:
            return PortMapping(hostAddress: defaultAddress, hostPort: parts[0].isEmpty ? 0 : try number(parts[0], allowZero: true),
                               containerPort: try number(parts[1], allowZero: false), transport: transport)
        case 3:
            return PortMapping(hostAddress: parts[0].isEmpty ? defaultAddress : parts[0], hostPort: parts[1].isEmpty ? 0 : try number(parts[1], allowZero: true),
                               containerPort: try number(parts[2], allowZero: false), transport: transport)
        default:
            throw APIError.invalid("-p", "'\(text)' must be [IP:]HOST_PORT:CONTAINER_PORT[/tcp]")
        }
    }

    /// `-P`: one mapping per `ExposedPorts` key (`80/tcp`) on a free host port of `address`.
    static func exposedPorts(_ keys: [String], address: String = PortMapping.everyInterface) -> [PortMapping] {
        keys.sorted().compactMap { key in
            let parts = key.split(separator: "/").map(String.init)
            guard let port = parts.first.flatMap({ UInt16($0) }), port != 0 else { return nil }
            let transport = parts.count > 1 ? PortTransport(rawValue: parts[1]) ?? .tcp : .tcp
            return PortMapping(hostAddress: address, hostPort: 0, containerPort: port, transport: transport)
        }
    }

    /// One `-v`: what to mount, before the named volume is created.
    enum VolumeSource: Equatable {
        case named(String)
        case anonymous
        case bind(String)
    }

    /// `-v NAME:/path[:ro|rw]`, `-v /host/path:/path[:ro|rw]`, `-v /path`.
    static func volume(_ text: String) throws -> (source: VolumeSource, destination: String, readOnly: Bool) {
        var parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var readOnly = false
        if parts.count == 3 || (parts.count == 2 && (parts[1] == "ro" || parts[1] == "rw")) {
            switch parts.removeLast() {
            case "ro": readOnly = true
            case "rw": readOnly = false
            case let mode: throw APIError.invalid("-v", "'\(text)': mode '\(mode)' must be ro or rw")
            }
        }
        func destination(_ path: String) throws -> String {
            guard path.hasPrefix("/"), !path.split(separator: "/").contains("..") else {
                throw APIError.invalid("-v", "'\(text)': the container path '\(path)' must be absolute and without '..'")
            }
            return path
        }
        switch parts.count {
        case 1:
            return (.anonymous, try destination(parts[0]), readOnly)
        case 2:
            let source = parts[0]
            if source.hasPrefix("/") {
                guard FileManager.default.fileExists(atPath: source) else {
                    throw APIError.invalid("-v", "'\(text)': the host path \(source) does not exist; create it first")
                }
                return (.bind(source), try destination(parts[1]), readOnly)
            }
            guard VolumeStore.isValidName(source) else {
                throw APIError.invalid("-v", "'\(text)': '\(source)' is neither an absolute host path nor a volume name ([A-Za-z0-9][A-Za-z0-9_.-]*)")
            }
            return (.named(source), try destination(parts[1]), readOnly)
        default:
            throw APIError.invalid("-v", "'\(text)' must be NAME:/path, /host/path:/path or /path, optionally followed by :ro")
        }
    }

    /// `--log-opt max-size=10m --log-opt max-file=3`.
    static func logging(_ options: [String: String]?) throws -> LogOptions? {
        guard let options, !options.isEmpty else { return nil }
        var result = LogOptions()
        for (key, value) in options.sorted(by: { $0.key < $1.key }) {
            switch key {
            case "max-size": result.maxSizeBytes = try bytes(value, flag: "--log-opt max-size")
            case "max-file":
                guard let count = Int(value), count >= 1, count <= 100 else {
                    throw APIError.invalid("--log-opt max-file", "'\(value)' must be an integer from 1 to 100")
                }
                result.maxFiles = count
            default:
                throw APIError.invalid("--log-opt", "'\(key)' is not a json-file option: use max-size or max-file")
            }
        }
        if result.maxFiles > 1 && result.maxSizeBytes == nil {
            throw APIError.invalid("--log-opt max-file", "it needs max-size (files rotate by size)")
        }
        return result
    }

    /// `30s`, `500ms`, `1m30s`, `2h` (Go's durations, as docker takes them) in milliseconds.
    static func milliseconds(_ text: String, flag: String) throws -> Int {
        let units: [(String, Double)] = [("ms", 1), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        var rest = Substring(text)
        var total = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            rest = rest.dropFirst(number.count)
            guard let value = Double(number), let unit = units.first(where: { rest.hasPrefix($0.0) }) else {
                throw APIError.invalid(flag, "'\(text)' is not a duration such as 30s, 500ms or 1m30s")
            }
            rest = rest.dropFirst(unit.0.count)
            total += value * unit.1
        }
        // 0 is Docker's "not set" (inherit the image's value or the default); anything else is at least 1ms.
        guard total == 0 || total >= 1, total < Double(Int32.max) else { throw APIError.invalid(flag, "'\(text)' must be 0 or at least 1ms") }
        return Int(total)
    }

    /// `TERM`, `SIGTERM`, `15`.
    static func signal(_ text: String?, flag: String = "signal") throws -> Int32 {
        guard let text, !text.isEmpty else { return SIGKILL }
        if let number = Int32(text), number > 0, number < 65 { return number }
        let name = text.uppercased().hasPrefix("SIG") ? String(text.uppercased().dropFirst(3)) : text.uppercased()
        let names: [String: Int32] = [
            "HUP": SIGHUP, "INT": SIGINT, "QUIT": SIGQUIT, "KILL": SIGKILL, "USR1": SIGUSR1, "USR2": SIGUSR2,
            "TERM": SIGTERM, "ALRM": SIGALRM, "CONT": SIGCONT, "STOP": SIGSTOP, "WINCH": SIGWINCH, "PIPE": SIGPIPE,
        ]
        guard let number = names[name] else {
            throw APIError.invalid(flag, "'\(text)' is not a signal: use a name such as TERM, KILL, HUP, USR1 or a number")
        }
        return number
    }

    /// Docker's container name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
    static func isValidName(_ name: String) -> Bool {
        guard name.count >= 2, name.utf8.count <= 128, let first = name.first, first.isASCII, first.isLetter || first.isNumber else { return false }
        return name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "." || $0 == "-") }
    }
}
