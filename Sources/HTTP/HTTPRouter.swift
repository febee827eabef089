/// Maps a method and path to a handler.
///
/// Patterns are `/`-separated segments: a literal (`blobs`), `<name>` for
/// exactly one segment, or `<name...>` for one or more segments, so that
/// `/v2/<name...>/manifests/<reference>` matches `/v2/library/busybox/manifests/latest`
/// with `name = library/busybox`. Matching runs on the still-encoded path
/// (`%2F` never splits a segment); parameters are percent-decoded. Routes
/// are tried in the order they were added; the first match wins. HEAD falls
/// back to the GET route (the server sends the head without the body).
public struct HTTPRouter: Sendable {
    public typealias Handler = @Sendable (HTTPServerRequest) async throws -> HTTPServerResponse

    /// One registered route.
    public struct Route: Sendable {
        public let method: HTTPMethod
        public let pattern: String
        /// Largest request body for this route; nil: the server's default.
        public let maxBodyBytes: Int?
        /// The handler never blocks a thread (it only awaits), so the server
        /// runs it on the connection's event loop: no hop to another thread
        /// between the request arriving and the handler starting.
        public let runsOnEventLoop: Bool
        let segments: [Segment]
        let handler: Handler
    }

    enum Segment: Sendable, Equatable {
        case literal(String)
        case parameter(String)
        case rest(String)
    }

    /// The outcome of ``match(method:path:)``.
    public enum Match: Sendable {
        case found(Route, parameters: [String: String])
        /// The path exists for other methods (answer 405 with Allow).
        case methodNotAllowed(allowed: [HTTPMethod])
        case notFound
    }

    private var routes: [Route] = []
    /// Called when no route matches the path (default: 404).
    public var fallback: Handler?

    public init() {}

    /// Adds a route. `maxBodyBytes` overrides the server's body limit for it
    /// (`Int.max`: unlimited, for blob uploads). `runsOnEventLoop`: see
    /// ``Route/runsOnEventLoop``; only for handlers that never block.
    public mutating func add(_ method: HTTPMethod, _ pattern: String, maxBodyBytes: Int? = nil, runsOnEventLoop: Bool = false,
                             _ handler: @escaping Handler) {
        let segments = Self.compile(pattern)
        routes.append(Route(method: method, pattern: pattern, maxBodyBytes: maxBodyBytes, runsOnEventLoop: runsOnEventLoop,
                            segments: segments, handler: handler))
    }

    /// Whether some route runs on the event loop (the server then reads
    /// requests there).
    public var hasEventLoopRoutes: Bool { routes.contains { $0.runsOnEventLoop } }

    static func compile(_ pattern: String) -> [Segment] {
        precondition(pattern.hasPrefix("/"), "a route pattern starts with /, got \(pattern.debugDescription)")
        var names: Set<String> = []
        return pattern.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { part in
            if part.hasPrefix("<"), part.hasSuffix(">") {
                var name = String(part.dropFirst().dropLast())
                let isRest = name.hasSuffix("...")
                if isRest { name.removeLast(3) }
                precondition(!name.isEmpty && names.insert(name).inserted, "route \(pattern.debugDescription): parameter names must be non-empty and unique")
                return isRest ? .rest(name) : .parameter(name)
            }
            precondition(!part.contains("<") && !part.contains(">"), "route \(pattern.debugDescription): a parameter must fill a whole segment")
            return .literal(String(part))
        }
    }

    /// Finds the route for `method` and the raw (encoded) `path`.
    public func match(method: HTTPMethod, path: Substring) -> Match {
        guard path.hasPrefix("/") else { return .notFound }
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map { $0 }
        var allowed: [HTTPMethod] = []
        var getFallback: (Route, [String: String])?
        for route in routes {
            guard let raw = Self.bind(route.segments[...], segments[...]) else { continue }
            var parameters: [String: String] = [:]
            var decodable = true
            for (name, value) in raw {
                guard let decoded = PercentEncoding.decode(value) else { decodable = false; break }
                parameters[name] = decoded
            }
            guard decodable else { continue }
            if route.method == method { return .found(route, parameters: parameters) }
            if method == .head, route.method == .get, getFallback == nil { getFallback = (route, parameters) }
            if !allowed.contains(route.method) { allowed.append(route.method) }
        }
        if let (route, parameters) = getFallback { return .found(route, parameters: parameters) }
        if !allowed.isEmpty {
            if allowed.contains(.get), !allowed.contains(.head) { allowed.append(.head) }
            return .methodNotAllowed(allowed: allowed)
        }
        return .notFound
    }

    /// Binds pattern segments to path segments, backtracking over `<name...>`.
    private static func bind(_ pattern: ArraySlice<Segment>, _ path: ArraySlice<Substring>) -> [(String, Substring)]? {
        guard let first = pattern.first else { return path.isEmpty ? [] : nil }
        switch first {
        case .literal(let literal):
            guard let segment = path.first, segment == literal else { return nil }
            return bind(pattern.dropFirst(), path.dropFirst())
        case .parameter(let name):
            guard let segment = path.first, !segment.isEmpty else { return nil }
            guard let rest = bind(pattern.dropFirst(), path.dropFirst()) else { return nil }
            return [(name, segment)] + rest
        case .rest(let name):
            // Longest first: `/v2/a/manifests/b/manifests/c` binds name = a/manifests/b.
            let remainingPattern = pattern.dropFirst()
            var count = path.count - remainingPattern.count
            while count >= 1 {
                let taken = path.prefix(count)
                if !taken.contains(where: \.isEmpty), let rest = bind(remainingPattern, path.dropFirst(count)) {
                    let joined = taken.joined(separator: "/")
                    return [(name, Substring(joined))] + rest
                }
                count -= 1
            }
            return nil
        }
    }
}
