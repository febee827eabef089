import Images

/// An image reference in Docker's grammar:
/// `[registry[:port]/]name[:tag][@sha256:digest]`.
///
/// The first path component is a registry when it contains a `.` or a `:`
/// or is `localhost` (`localhost:5000/x`, `127.0.0.1:5000/x`,
/// `registry.example/x`); otherwise the whole string is a name on the
/// default registry (`busybox` → `<default>/busybox`; on `docker.io`, single
/// component names gain `library/` as Docker does). Without a tag or digest
/// the tag is `latest`.
public struct ImageReference: Hashable, Sendable, CustomStringConvertible {
    /// `host[:port]` of the registry.
    public var registry: String
    /// The repository name on that registry, e.g. `library/busybox`.
    public var repository: String
    public var tag: String?
    public var digest: Digest?

    /// Docker Hub, Docker's default registry.
    public static let dockerHub = "docker.io"
    /// What Shoal uses when a reference names no registry: the registry
    /// `shoal dev` runs on loopback (the Shoal CLI lets `SHOAL_DEFAULT_REGISTRY` override it).
    public static let shoalDefaultRegistry = "127.0.0.1:5000"
    /// The longest reference accepted (Docker's bound).
    public static let maximumReferenceBytes = 255 + 1 + 128 + 1 + 71 + 256

    public init(registry: String, repository: String, tag: String? = nil, digest: Digest? = nil) {
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest
    }

    /// Parses `text`; throws ``ImageReferenceError`` with the reason for a bad one.
    public init(parsing text: String, defaultRegistry: String = ImageReference.shoalDefaultRegistry) throws(ImageReferenceError) {
        func fail(_ reason: String) -> ImageReferenceError { ImageReferenceError(text: text, reason: reason) }
        guard !text.isEmpty else { throw fail("empty reference") }
        guard text.utf8.count <= Self.maximumReferenceBytes else { throw fail("longer than \(Self.maximumReferenceBytes) bytes") }
        var rest = Substring(text)
        var digest: Digest?
        if let at = rest.firstIndex(of: "@") {
            do {
                digest = try Digest(parsing: String(rest[rest.index(after: at)...]))
            } catch {
                throw fail("bad digest: \(error.reason)")
            }
            rest = rest[..<at]
        }
        // The tag follows the last ':' after the last '/' (a ':' before a '/' is a port).
        var tag: String?
        let lastSlash = rest.lastIndex(of: "/")
        if let colon = rest.lastIndex(of: ":"), lastSlash.map({ colon > $0 }) ?? true {
            let candidate = String(rest[rest.index(after: colon)...])
            if let reason = RepositoryName.tagProblem(candidate) { throw fail("bad tag \(candidate.debugDescription): \(reason)") }
            tag = candidate
            rest = rest[..<colon]
        }
        var registry = defaultRegistry
        var name = String(rest)
        if let slash = rest.firstIndex(of: "/") {
            let first = rest[..<slash]
            if first.contains(".") || first.contains(":") || first == "localhost" {
                registry = String(first)
                name = String(rest[rest.index(after: slash)...])
                if let reason = Self.registryProblem(registry) { throw fail("bad registry \(registry.debugDescription): \(reason)") }
            }
        }
        if registry == Self.dockerHub, !name.contains("/") { name = "library/" + name }
        if let reason = RepositoryName.problem(with: name) { throw fail("bad repository name \(name.debugDescription): \(reason)") }
        if tag == nil, digest == nil { tag = "latest" }
        self.init(registry: registry, repository: name, tag: tag, digest: digest)
    }

    private static func registryProblem(_ registry: String) -> String? {
        var host = Substring(registry)
        if let colon = registry.lastIndex(of: ":"), !registry.hasSuffix("]") {
            let port = registry[registry.index(after: colon)...]
            guard let value = UInt16(port), value > 0 else { return "port \(String(port).debugDescription) is not 1-65535" }
            host = registry[..<colon]
        }
        if host.isEmpty { return "empty host" }
        if host.hasPrefix("[") { return host.hasSuffix("]") ? nil : "unterminated IPv6 address" }
        for component in host.split(separator: ".", omittingEmptySubsequences: false) {
            if component.isEmpty || component.hasPrefix("-") || component.hasSuffix("-") { return "bad host component \(String(component).debugDescription)" }
            if !component.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }) {
                return "host components hold letters, digits and '-'"
            }
        }
        return nil
    }

    /// What a registry request names: the digest if there is one, else the tag.
    public var manifestReference: String { digest?.description ?? tag ?? "latest" }

    /// The full name without tag or digest: `registry/repository`.
    public var name: String { registry + "/" + repository }

    /// `registry/repository[:tag][@digest]`.
    public var description: String {
        name + (tag.map { ":" + $0 } ?? "") + (digest.map { "@" + $0.description } ?? "")
    }

    /// The key this image has in a local ``ContentStore``'s tags:
    /// `registry/repository:tag`, or `registry/repository@digest` without a tag.
    public var localTag: String {
        if let tag { return name + ":" + tag }
        return name + "@" + (digest?.description ?? "")
    }

    /// The shortest form that parses back to this reference (the default
    /// registry and Docker's `library/` left out), for listings.
    public func familiarDescription(defaultRegistry: String = ImageReference.shoalDefaultRegistry) -> String {
        var shown = description
        if registry == defaultRegistry {
            var repository = self.repository
            if registry == Self.dockerHub, repository.hasPrefix("library/"), repository.split(separator: "/").count == 2 {
                repository.removeFirst("library/".count)
            }
            // A first component that looks like a registry must keep the prefix.
            let first = repository.split(separator: "/").first ?? ""
            if !(first.contains(".") || first.contains(":") || first == "localhost") || !repository.contains("/") {
                shown = repository + (tag.map { ":" + $0 } ?? "") + (digest.map { "@" + $0.description } ?? "")
            }
        }
        return shown
    }
}

/// A reference that does not follow Docker's grammar.
public struct ImageReferenceError: Error, Equatable, Sendable, CustomStringConvertible {
    public let text: String
    public let reason: String
    public var description: String {
        "invalid image reference \(String(text.prefix(300)).debugDescription): \(reason); "
            + "write [registry[:port]/]name[:tag][@sha256:<64 hex>], e.g. 127.0.0.1:5000/busybox:latest"
    }
}
