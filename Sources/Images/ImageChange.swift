import Foundation

/// One `--change` of `shoal image import` (Docker's `docker import --change`):
/// a Dockerfile instruction that sets part of the image's container config.
///
/// The grammar is the Dockerfile's: the keyword in any case, then its
/// arguments. `CMD`, `ENTRYPOINT` and `VOLUME` take the JSON form
/// (`["a", "b"]`) or the shell form (`CMD echo hi` runs `/bin/sh -c 'echo hi'`).
/// `ENV` and `LABEL` take `NAME=VALUE` pairs or the old `NAME VALUE` form;
/// variables set by earlier `ENV`s expand as a Dockerfile expands them.
/// Where Docker guesses (`CMD [bad json` silently becomes a shell command),
/// Shoal refuses with the reason, so a typo cannot become a different image.
public enum ImageChange: Equatable, Sendable {
    case cmd([String])
    case entrypoint([String])
    case env([(name: String, value: String)])
    case workdir(String)
    case user(String)
    case expose([String])
    case label([(name: String, value: String)])
    case stopSignal(String)
    case volume([String])
    case healthcheck(HealthConfig)

    /// The instructions `--change` accepts (Docker's commit and import take these too).
    public static let keywords = ["CMD", "ENTRYPOINT", "ENV", "WORKDIR", "USER", "EXPOSE", "LABEL", "STOPSIGNAL", "VOLUME", "HEALTHCHECK"]

    /// Parses one instruction. `config` is the config built so far: its `Env`
    /// feeds variable expansion and its `WorkingDir` anchors a relative `WORKDIR`.
    public static func parse(_ text: String, config: ImageConfig.ContainerConfig = .init()) throws(ImageChangeError) -> ImageChange {
        func fail(_ reason: String) -> ImageChangeError { ImageChangeError(instruction: text, reason: reason) }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw fail("empty instruction") }
        let keyword = String(trimmed.prefix { !$0.isWhitespace }).uppercased()
        let arguments = String(trimmed.dropFirst(keyword.count)).trimmingCharacters(in: .whitespaces)
        guard keywords.contains(keyword) else {
            if ["RUN", "COPY", "ADD", "FROM", "ONBUILD", "ARG", "SHELL", "MAINTAINER"].contains(keyword) {
                throw fail("\(keyword) cannot be applied by import (it is not a config setting)")
            }
            throw fail("unknown instruction \(String(keyword.prefix(40)).debugDescription)")
        }
        guard !arguments.isEmpty else { throw fail("\(keyword) needs an argument") }
        let environment = config.env ?? []
        do {
            switch keyword {
            case "CMD":
                return .cmd(try command(arguments, keyword: keyword))
            case "ENTRYPOINT":
                return .entrypoint(try command(arguments, keyword: keyword))
            case "ENV":
                let pairs = try pairs(arguments, keyword: keyword, environment: environment)
                for (name, _) in pairs where name.contains("=") || name.contains(where: \.isWhitespace) {
                    throw fail("environment variable name \(name.debugDescription) cannot contain '=' or spaces")
                }
                return .env(pairs)
            case "LABEL":
                return .label(try pairs(arguments, keyword: keyword, environment: environment))
            case "WORKDIR":
                let path = try DockerfileWords.expand(arguments, environment: environment)
                guard !path.isEmpty else { throw fail("WORKDIR needs a path") }
                let base = config.workingDir ?? "/"
                let joined = path.hasPrefix("/") ? path : (base.hasSuffix("/") ? base : base + "/") + path
                return .workdir(normalize(joined))
            case "USER":
                let words = try DockerfileWords.split(arguments)
                guard words.count == 1 else { throw fail("USER takes exactly one USER[:GROUP] (name or number)") }
                let user = try DockerfileWords.expand(words[0], environment: environment)
                guard !user.isEmpty, !user.hasPrefix(":"), !user.hasSuffix(":"), user.split(separator: ":").count <= 2 else {
                    throw fail("USER takes USER or USER:GROUP, got \(user.debugDescription)")
                }
                return .user(user)
            case "EXPOSE":
                var ports: [String] = []
                for word in try DockerfileWords.split(arguments) {
                    let expanded = try DockerfileWords.expand(word, environment: environment)
                    guard let more = exposedPorts(expanded) else {
                        throw fail("EXPOSE takes PORT[/PROTOCOL] or START-END[/PROTOCOL] with ports 1-65535 and tcp, udp or sctp; got \(expanded.debugDescription)")
                    }
                    ports += more
                }
                return .expose(ports)
            case "STOPSIGNAL":
                let words = try DockerfileWords.split(arguments)
                guard words.count == 1 else { throw fail("STOPSIGNAL takes one signal, e.g. SIGTERM or 15") }
                let signal = try DockerfileWords.expand(words[0], environment: environment)
                guard isSignal(signal) else {
                    throw fail("\(signal.debugDescription) is not a signal: write a name such as SIGTERM, SIGINT or SIGQUIT, or a number 1-64")
                }
                return .stopSignal(signal)
            case "VOLUME":
                let paths = arguments.hasPrefix("[")
                    ? try jsonStrings(arguments, keyword: keyword)
                    : try DockerfileWords.split(arguments).map { word throws(DockerfileWords.Problem) in
                        try DockerfileWords.expand(word, environment: environment)
                    }
                guard !paths.isEmpty, !paths.contains(where: { $0.trimmingCharacters(in: .whitespaces).isEmpty }) else {
                    throw fail("VOLUME needs one or more non-empty paths")
                }
                return .volume(paths)
            case "HEALTHCHECK":
                return .healthcheck(try healthcheck(arguments))
            default:
                preconditionFailure("keyword \(keyword) is listed in ImageChange.keywords but not parsed")
            }
        } catch let problem as DockerfileWords.Problem {
            throw fail(problem.reason)
        } catch let error as ImageChangeError {
            throw error
        } catch {
            throw fail("\(error)")
        }
    }

    /// Applies the change to `config` (later changes win, as later Dockerfile lines do).
    public func apply(to config: inout ImageConfig.ContainerConfig) {
        switch self {
        case .cmd(let arguments): config.cmd = arguments
        case .entrypoint(let arguments): config.entrypoint = arguments
        case .env(let pairs):
            var environment = config.env ?? []
            for (name, value) in pairs {
                // As Docker does: a variable set again keeps its place.
                if let index = environment.firstIndex(where: { $0.hasPrefix(name + "=") }) {
                    environment[index] = name + "=" + value
                } else {
                    environment.append(name + "=" + value)
                }
            }
            config.env = environment
        case .workdir(let path): config.workingDir = path
        case .user(let user): config.user = user
        case .expose(let ports):
            var exposed = config.exposedPorts ?? [:]
            for port in ports { exposed[port] = .init() }
            config.exposedPorts = exposed
        case .label(let pairs):
            var labels = config.labels ?? [:]
            for (name, value) in pairs { labels[name] = value }
            config.labels = labels
        case .stopSignal(let signal): config.stopSignal = signal
        case .volume(let paths):
            var volumes = config.volumes ?? [:]
            for path in paths { volumes[path] = .init() }
            config.volumes = volumes
        case .healthcheck(let check): config.healthcheck = check
        }
    }

    /// Parses and applies `instructions` in order to `config`; throws at the
    /// first bad one, naming it.
    public static func apply(_ instructions: [String], to config: ImageConfig.ContainerConfig = .init()) throws(ImageChangeError) -> ImageConfig.ContainerConfig {
        var config = config
        for instruction in instructions {
            try parse(instruction, config: config).apply(to: &config)
        }
        return config
    }

    public static func == (lhs: ImageChange, rhs: ImageChange) -> Bool {
        switch (lhs, rhs) {
        case let (.cmd(a), .cmd(b)), let (.entrypoint(a), .entrypoint(b)), let (.expose(a), .expose(b)), let (.volume(a), .volume(b)):
            return a == b
        case let (.env(a), .env(b)), let (.label(a), .label(b)):
            return a.map(\.name) == b.map(\.name) && a.map(\.value) == b.map(\.value)
        case let (.workdir(a), .workdir(b)), let (.user(a), .user(b)), let (.stopSignal(a), .stopSignal(b)):
            return a == b
        case let (.healthcheck(a), .healthcheck(b)):
            return a == b
        default:
            return false
        }
    }

    // MARK: Argument forms

    /// The JSON form (an array of strings) or the shell form (`/bin/sh -c TEXT`, unexpanded, as Docker runs it).
    private static func command(_ arguments: String, keyword: String) throws -> [String] {
        if arguments.hasPrefix("[") { return try jsonStrings(arguments, keyword: keyword) }
        return ["/bin/sh", "-c", arguments]
    }

    private static func jsonStrings(_ arguments: String, keyword: String) throws -> [String] {
        guard let decoded = try? JSONDecoder().decode([String].self, from: Data(arguments.utf8)) else {
            throw DockerfileWords.Problem(reason: "\(keyword) starts with \"[\" but is not a JSON array of strings "
                + "(write [\"executable\", \"argument\"] with double quotes, or drop the brackets for the shell form)")
        }
        return decoded
    }

    /// `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=D] [--timeout=D]
    /// [--start-period=D] [--start-interval=D] [--retries=N] CMD command`
    /// (JSON form: `["CMD", argv...]`; shell form: `["CMD-SHELL", text]`).
    /// Options not given stay unset (Docker's defaults apply at run time).
    private static func healthcheck(_ arguments: String) throws -> HealthConfig {
        var rest = Substring(arguments)
        var check = HealthConfig(test: nil)
        while rest.hasPrefix("--") {
            let option = rest.prefix { !$0.isWhitespace }
            rest = rest.dropFirst(option.count).drop { $0.isWhitespace }
            let parts = option.dropFirst(2).split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[1].isEmpty else {
                throw DockerfileWords.Problem(reason: "HEALTHCHECK option \(String(option).debugDescription) must be written --NAME=VALUE")
            }
            if parts[0] == "retries" {
                guard let retries = Int(parts[1]), retries >= 0 else {
                    throw DockerfileWords.Problem(reason: "HEALTHCHECK --retries=\(parts[1]) must be a whole number, 0 or more")
                }
                check.retries = retries
                continue
            }
            guard let nanoseconds = goDuration(parts[1]), nanoseconds == 0 || nanoseconds >= 1_000_000 else {
                throw DockerfileWords.Problem(reason: "HEALTHCHECK --\(parts[0])=\(parts[1]) must be a duration of at least 1ms such as 500ms, 30s or 1m30s")
            }
            switch parts[0] {
            case "interval": check.intervalNanoseconds = nanoseconds
            case "timeout": check.timeoutNanoseconds = nanoseconds
            case "start-period": check.startPeriodNanoseconds = nanoseconds
            case "start-interval": check.startIntervalNanoseconds = nanoseconds
            default:
                throw DockerfileWords.Problem(reason: "unknown HEALTHCHECK option --\(parts[0]): use --interval, --timeout, --start-period, --start-interval or --retries")
            }
        }
        let kind = rest.prefix { !$0.isWhitespace }.uppercased()
        let command = rest.dropFirst(kind.count).trimmingCharacters(in: .whitespaces)
        switch kind {
        case "NONE":
            guard command.isEmpty, check == HealthConfig(test: nil) else {
                throw DockerfileWords.Problem(reason: "HEALTHCHECK NONE takes no options or arguments")
            }
            check.test = ["NONE"]
        case "CMD":
            guard !command.isEmpty else { throw DockerfileWords.Problem(reason: "HEALTHCHECK CMD needs the command to run") }
            if command.hasPrefix("[") {
                let argv = try jsonStrings(command, keyword: "HEALTHCHECK CMD")
                guard !(argv.first ?? "").isEmpty else { throw DockerfileWords.Problem(reason: "HEALTHCHECK CMD needs the command to run") }
                check.test = ["CMD"] + argv
            } else {
                check.test = ["CMD-SHELL", command]
            }
        default:
            throw DockerfileWords.Problem(reason: "HEALTHCHECK takes NONE or [OPTIONS] CMD command")
        }
        return check
    }

    /// Go's duration syntax (`300ms`, `1.5s`, `1m30s`) in nanoseconds; nil if invalid.
    static func goDuration(_ text: String) -> Int64? {
        if text == "0" { return 0 }
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        var rest = Substring(text)
        var total = 0.0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let number = rest.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
            guard !number.isEmpty, let value = Double(number) else { return nil }
            rest = rest.dropFirst(number.count)
            let unitText = rest.prefix { !($0.isASCII && ($0.isNumber || $0 == ".")) }
            guard let unit = units.first(where: { $0.0 == unitText }) else { return nil }
            rest = rest.dropFirst(unitText.count)
            total += value * unit.1
        }
        guard total < Double(Int64.max) else { return nil }
        return Int64(total)
    }

    /// `NAME=VALUE ...` or the old single-pair `NAME VALUE` form.
    private static func pairs(_ arguments: String, keyword: String, environment: [String]) throws -> [(name: String, value: String)] {
        let words = try DockerfileWords.split(arguments)
        let first = words[0]
        if first.hasPrefix("=") { throw DockerfileWords.Problem(reason: "\(keyword) has an empty name in \(first.debugDescription)") }
        guard let equals = first.firstIndex(of: "="), equals != first.startIndex else {
            // Old form: the first word is the name, the rest of the line the value.
            guard words.count >= 2 else {
                throw DockerfileWords.Problem(reason: "\(keyword) takes NAME=VALUE (or NAME VALUE); \(first.debugDescription) has no value")
            }
            let rest = arguments.dropFirst(first.count).trimmingCharacters(in: .whitespaces)
            return [(try DockerfileWords.expand(first, environment: environment), try DockerfileWords.expand(rest, environment: environment))]
        }
        var pairs: [(name: String, value: String)] = []
        for word in words {
            guard let equals = word.firstIndex(of: "=") else {
                throw DockerfileWords.Problem(reason: "\(keyword) with several settings takes NAME=VALUE for each; \(word.debugDescription) is not one")
            }
            let name = try DockerfileWords.expand(String(word[..<equals]), environment: environment)
            guard !name.isEmpty else { throw DockerfileWords.Problem(reason: "\(keyword) has an empty name in \(word.debugDescription)") }
            pairs.append((name, try DockerfileWords.expand(String(word[word.index(after: equals)...]), environment: environment)))
        }
        return pairs
    }

    /// `80` → `80/tcp`; `53/udp`; `8000-8002/tcp` → three ports. Nil if invalid.
    static func exposedPorts(_ text: String) -> [String]? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return nil }
        let proto = parts.count == 2 ? parts[1].lowercased() : "tcp"
        guard ["tcp", "udp", "sctp"].contains(proto) else { return nil }
        let range = parts[0].split(separator: "-", omittingEmptySubsequences: false)
        guard range.count <= 2, let low = UInt16(range[0]), low > 0 else { return nil }
        let high = range.count == 2 ? UInt16(range[1]) : low
        guard let high, high >= low else { return nil }
        return (low...high).map { "\($0)/\(proto)" }
    }

    /// Linux signal names (with or without `SIG`), `SIGRTMIN+N`, or numbers 1-64.
    static func isSignal(_ text: String) -> Bool {
        if let number = Int(text) { return (1...64).contains(number) }
        let names: Set<String> = ["HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV", "USR2",
                                  "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "URG",
                                  "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS", "RTMIN", "RTMAX"]
        var name = text.uppercased()
        if name.hasPrefix("SIG") { name.removeFirst(3) }
        if names.contains(name) { return true }
        for base in ["RTMIN+", "RTMAX-"] where name.hasPrefix(base) {
            if let offset = Int(name.dropFirst(base.count)), (1...30).contains(offset) { return true }
        }
        return false
    }

    /// Removes `.`, `..` and repeated slashes from an absolute path (`..` stops at `/`).
    public static func normalize(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/") {
            if component == "." { continue }
            if component == ".." { _ = components.popLast(); continue }
            components.append(component)
        }
        return "/" + components.joined(separator: "/")
    }
}
