import Foundation
import Images
import Net
import Registry

/// `shoal registry serve`: the OCI Distribution registry on its own, and
/// `shoal registry gc` to sweep blobs no tag reaches.
enum RegistryCommands {
    static let usage = """
        shoal registry serve [--addr 127.0.0.1:5000] [--data DIR] [--tls-cert FILE --tls-key FILE]
                       [--user USER:PASSWORD ...] [--token-auth]
                                     run an OCI Distribution (v2) registry; --user turns on basic
                                     auth, --token-auth issues bearer tokens at /token instead
          registry gc [--data DIR]   remove blobs no tag reaches (stop the registry first)
        """
    static let defaultAddress = "127.0.0.1:5000"
    static let defaultData = "/var/lib/shoal/registry"

    static func run(_ rest: [String]) -> Int32 {
        do {
            let arguments = try ClusterCommands.Arguments(rest, switches: ["--token-auth"])
            switch arguments.positional.first {
            case "serve":
                return try serve(arguments)
            case "gc":
                let store = try ContentStore(root: arguments.value("--data") ?? defaultData)
                let report = try store.prune()
                print("removed \(report.removed.count) blobs, reclaimed \(ImageCommands.formatBytes(report.reclaimedBytes))")
                return 0
            default:
                throw ClusterCommands.Failure(description: "usage: \(usage)")
            }
        } catch {
            FileHandle.standardError.write(Data("shoal registry: \(error)\n".utf8))
            return 1
        }
    }

    /// `127.0.0.1:5000`, `[::1]:5000` or `:5000` (all IPv4 interfaces).
    static func parseAddress(_ text: String) throws -> SocketAddress {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            throw ClusterCommands.Failure(description: "--addr \(text.debugDescription) is not HOST:PORT (e.g. 127.0.0.1:5000)")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { return .ipv6(String(host.dropFirst().dropLast()), port: port) }
        if host.isEmpty { host = "0.0.0.0" }
        if host == "localhost" { host = "127.0.0.1" }
        return .ipv4(host, port: port)
    }

    static func serve(_ arguments: ClusterCommands.Arguments) throws -> Int32 {
        let data = arguments.value("--data") ?? defaultData
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let store = try ContentStore(root: data)
        var configuration = RegistryServer.Configuration()
        var users: [String: String] = [:]
        for entry in arguments.all("--user") {
            guard let (user, password) = RegistryAuthenticator.parseUser(entry) else {
                throw ClusterCommands.Failure(description: "--user needs USER:PASSWORD, got \(entry.prefix(40).debugDescription)")
            }
            users[user] = password
        }
        let tokenAuth = arguments.switches.contains("--token-auth")
        if tokenAuth && users.isEmpty {
            throw ClusterCommands.Failure(description: "--token-auth needs at least one --user USER:PASSWORD to issue tokens to")
        }
        if !users.isEmpty {
            configuration.authenticator = RegistryAuthenticator(users: users, mode: tokenAuth ? .token : .basic)
        }
        var tls: TLSContext?
        switch (arguments.value("--tls-cert"), arguments.value("--tls-key")) {
        case let (certificatePath?, keyPath?):
            let certificate = try Certificate.read(fromFile: certificatePath)
            let key = try PrivateKey.read(fromFile: keyPath)
            var tlsConfiguration = TLSConfiguration(certificateChain: [certificate], privateKey: key, trustedRoots: [certificate])
            // Registry clients (docker, skopeo) present no certificate.
            tlsConfiguration.clientCertificates = .optional
            tls = try TLSContext(tlsConfiguration, side: .server)
        case (nil, nil):
            break
        default:
            throw ClusterCommands.Failure(description: "--tls-cert and --tls-key go together")
        }
        let address = try parseAddress(arguments.value("--addr") ?? defaultAddress)
        let server = try RegistryServer(store: store, configuration: configuration)
        let bound = try server.listen(on: address, tls: tls)
        signal(SIGTERM, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        let auth = configuration.authenticator.map { $0.mode == .token ? "token auth" : "basic auth" } ?? "no auth"
        print("shoal registry listening on \(tls == nil ? "http" : "https")://\(bound) (\(auth)), storing in \(data)")
        fflush(nil)
        let semaphore = DispatchSemaphore(value: 0)
        var sources: [DispatchSourceSignal] = []
        for number in [SIGTERM, SIGINT] {
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                Task {
                    await server.shutdown(gracePeriod: .seconds(10))
                    semaphore.signal()
                }
            }
            source.resume()
            sources.append(source)
        }
        semaphore.wait()
        _ = sources
        return 0
    }
}
