import ClusterState
import Foundation
import HTTP
import Manager
import Net
import Raft
import Registry
import Scheduler

/// The control API: HTTP/1.1 + JSON under `/v1`, on the daemon's Unix socket
/// (the caller is root: everything is allowed, including `init`, `join`,
/// `leave` and issuing client certificates) and on a manager's mutual-TLS
/// listener (cluster routes only, for callers whose certificate says
/// OU=manager or OU=client; a worker certificate is refused).
///
/// Errors are `{"code","message","hint"}` with the HTTP status. Reads are
/// linearizable unless `?stale=true`, whose answers carry `Shoal-Stale: true`.
/// The routes are documented in `openapi.json` next to this file; a test
/// checks that both agree.
public enum ControlAPI {
    /// Request bodies larger than this are refused with 413.
    static let maxBodyBytes = 1 << 20
    static let staleHeader = "Shoal-Stale"
    /// A blank line on the event stream this often, so a client that went
    /// away is noticed even when nothing changes.
    static let eventKeepAlive: Duration = .seconds(5)

    static var serverConfiguration: HTTPServer.Configuration {
        var configuration = HTTPServer.Configuration()
        configuration.limits.maxBodyBytes = maxBodyBytes
        configuration.idleTimeout = .seconds(30)
        return configuration
    }

    struct Context: Sendable {
        let daemon: Daemon
        let local: Bool
        let fixed: ManagerNode?

        func manager() throws -> ManagerNode {
            if let fixed { return fixed }
            guard let manager = daemon.manager else { throw APIError.notAManager }
            return manager
        }

        func authorize(_ request: HTTPServerRequest) throws {
            if local { return }
            guard let certificate = request.peerCertificate else {
                throw APIError(status: 401, code: "unauthenticated", message: "a client certificate is required", hint: "get one with `shoal ca issue-client` on a manager")
            }
            let subject = certificate.subject
            let role = subject.organizationalUnit ?? ""
            guard role == NodeRole.manager.rawValue || role == CertificateAuthority.clientOrganizationalUnit,
                  subject.organization == (try? manager())?.state.clusterID else {
                throw APIError(status: 403, code: "permission_denied", message: "certificate \(subject) may not use the control API: it needs OU=manager or OU=client of this cluster",
                               hint: "use a client certificate from `shoal ca issue-client`")
            }
        }
    }

    /// Every route as `METHOD /pattern` (the OpenAPI test compares them with the document).
    public static func routeList(local: Bool) -> [String] {
        var routes: [String] = []
        _ = router(daemon: Daemon(settings: DaemonSettings(dataDirectory: "/nonexistent", socketPath: "/nonexistent")), local: local, manager: nil) {
            routes.append("\($0.rawValue) \($1)")
        }
        return routes
    }

    static func router(daemon: Daemon, local: Bool, manager: ManagerNode?, record: ((HTTPMethod, String) -> Void)? = nil) -> HTTPRouter {
        let context = Context(daemon: daemon, local: local, fixed: manager)
        var router = HTTPRouter()
        func addRoute(_ method: HTTPMethod, _ pattern: String, maxBodyBytes: Int, runsOnEventLoop: Bool,
                      _ handler: @escaping @Sendable (Request) async throws -> HTTPServerResponse) {
            record?(method, pattern)
            router.add(method, pattern, maxBodyBytes: maxBodyBytes, runsOnEventLoop: runsOnEventLoop) { request in
                do {
                    try context.authorize(request)
                    return try await handler(Request(raw: request, context: context))
                } catch {
                    return APIError.from(error).response
                }
            }
        }
        func add(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping @Sendable (Request) async throws -> HTTPServerResponse) {
            addRoute(method, pattern, maxBodyBytes: maxBodyBytes, runsOnEventLoop: false, handler)
        }
        func add(_ method: HTTPMethod, _ pattern: String, maxBodyBytes: Int,
                 _ handler: @escaping @Sendable (Request) async throws -> HTTPServerResponse) {
            addRoute(method, pattern, maxBodyBytes: maxBodyBytes, runsOnEventLoop: false, handler)
        }
        /// For handlers that only decode, await Raft (never blocking a
        /// thread) and encode: they run on the connection's event loop, one
        /// thread hop less per request.
        func addOnEventLoop(_ method: HTTPMethod, _ pattern: String, _ handler: @escaping @Sendable (Request) async throws -> HTTPServerResponse) {
            addRoute(method, pattern, maxBodyBytes: maxBodyBytes, runsOnEventLoop: true, handler)
        }
        router.fallback = { request in
            APIError(status: 404, code: "not_found", message: "no API route for \(request.method) \(request.head.rawPath)",
                     hint: "the routes are under /v1; see Sources/Daemon/openapi.json").response
        }

        add(.get, "/v1/status") { _ in json(daemon.status()) }

        if local {
            add(.post, "/v1/init") { request in try await postInit(request) }
            add(.post, "/v1/join") { request in try await postJoin(request) }
            add(.post, "/v1/leave") { request in try await postLeave(request) }
            add(.post, "/v1/ca/client-certificates") { request in try await postCaClientCertificates(request) }
            addContainerRoutes(add)
            addCopyRoutes(add, upload: { add($0, $1, maxBodyBytes: copyMaxBodyBytes, $2) })
        }

        // MARK: cluster

        add(.get, "/v1/cluster") { request in try await getCluster(request) }

        // MARK: nodes

        add(.get, "/v1/nodes") { request in try await getNodes(request) }
        add(.get, "/v1/nodes/<id>") { request in try await getNodesByID(request) }
        add(.post, "/v1/nodes/<id>/update") { request in try await postNodesByIDUpdate(request) }
        add(.post, "/v1/nodes/<id>/promote") { request in try await postNodesByIDPromote(request) }
        add(.post, "/v1/nodes/<id>/demote") { request in try await postNodesByIDDemote(request) }
        add(.delete, "/v1/nodes/<id>") { request in try await deleteNodesByID(request) }

        // MARK: services

        add(.get, "/v1/services") { request in try await getServices(request) }
        add(.post, "/v1/services") { request in try await postServices(request) }
        add(.get, "/v1/services/<id>") { request in try await getServicesByID(request) }
        add(.post, "/v1/services/<id>/update") { request in try await postServicesByIDUpdate(request) }
        add(.post, "/v1/services/<id>/rollback") { request in try await postServicesByIDRollback(request) }
        add(.delete, "/v1/services/<id>") { request in try await deleteServicesByID(request) }
        add(.get, "/v1/services/<id>/logs") { request in try await getServicesByIDLogs(request) }

        // MARK: tasks

        add(.get, "/v1/tasks") { request in try await getTasks(request) }
        add(.get, "/v1/tasks/<id>") { request in try await getTasksByID(request) }

        add(.get, "/v1/tasks/<id>/logs") { request in try await getTasksByIDLogs(request) }

        // MARK: secrets

        add(.get, "/v1/secrets") { request in try await getSecrets(request) }
        addOnEventLoop(.post, "/v1/secrets") { request in try await createSecret(request, try context.manager()) }
        add(.get, "/v1/secrets/<id>") { request in try await getSecretsByID(request) }
        add(.delete, "/v1/secrets/<id>") { request in try await deleteSecretsByID(request) }

        // MARK: configs (names starting with "shoal." are Shoal's own)

        add(.get, "/v1/configs") { request in try await getConfigs(request) }
        addOnEventLoop(.post, "/v1/configs") { request in try await createConfig(request, try context.manager()) }
        add(.get, "/v1/configs/<id>") { request in try await getConfigsByID(request) }
        add(.delete, "/v1/configs/<id>") { request in try await deleteConfigsByID(request) }

        // MARK: join tokens

        add(.get, "/v1/join-tokens") { request in try await getJoinTokens(request) }
        add(.post, "/v1/join-tokens/<role>/rotate") { request in try await postJoinTokensByRoleRotate(request) }

        // MARK: events

        add(.get, "/v1/events") { request in try await getEvents(request) }
        return router
    }

    // MARK: Route handlers (one function each: the 6.3 optimizer crashed splitting
    // the async closures when their bodies sat inside the router)

    /// POST /v1/init
    static func postInit(_ request: Request) async throws -> HTTPServerResponse {
        try await json(request.context.daemon.initCluster(try await request.decode(InitRequest.self, defaults: InitRequest())), status: 201)
    }

    /// POST /v1/join
    static func postJoin(_ request: Request) async throws -> HTTPServerResponse {
        try await json(request.context.daemon.join(try await request.decode(JoinRequest.self)), status: 201)
    }

    /// POST /v1/leave
    static func postLeave(_ request: Request) async throws -> HTTPServerResponse {
        let daemon = request.context.daemon
        let body = try await request.decodeOptional(LeaveRequest.self) ?? LeaveRequest()
        try await daemon.leave(force: body.force ?? false)
        return HTTPServerResponse(status: .noContent)
    }

    /// POST /v1/ca/client-certificates
    static func postCaClientCertificates(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let body = try await request.decode(ClientCertificateRequest.self)
        let manager = try context.manager()
        let issued: (certificate: Certificate, key: PrivateKey)
        do {
            issued = try manager.authority.issueClientCredentials(name: body.name)
        } catch {
            throw APIError.invalid("name", "\(error)")
        }
        return json(ClientCertificateReply(certificatePEM: issued.certificate.pemEncoded, keyPEM: try issued.key.pemEncoded(),
                                           rootPEM: manager.authority.certificate.pemEncoded), status: 201)
    }

    /// GET /v1/cluster
    static func getCluster(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let stale = try request.stale()
        let nodes = try await manager.read(stale: stale) { $0.nodes }
        let status = manager.raft.status
        var byRaftID: [UInt64: Node] = [:]
        for node in nodes { if let raftID = node.managerStatus?.raftID { byRaftID[raftID] = node } }
        let members = status.configuration.members.map { id in
            MemberView(raftID: id, nodeID: byRaftID[id]?.id.rawValue, address: byRaftID[id]?.managerStatus?.address ?? manager.address(of: id),
                       suffrage: status.configuration.isVoter(id) ? "voter" : "learner", leader: id == status.leader,
                       reachability: manager.isReachable(id) ? "reachable" : "unreachable")
        }
        return json(ClusterView(clusterID: manager.state.clusterID, leaderNodeID: byRaftID[status.leader]?.id.rawValue,
                                raft: RaftStatusView(status), members: members,
                                heartbeatPeriodMilliseconds: manager.dispatcher.heartbeatPeriodMilliseconds), stale: stale)
    }

    /// GET /v1/nodes
    static func getNodes(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let stale = try request.stale()
        let nodes = try await manager.read(stale: stale) { $0.nodes }
        let status = manager.raft.status
        return json(nodes.map { view($0, manager, status) }, stale: stale)
    }

    /// GET /v1/nodes/<id>
    static func getNodesByID(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let stale = try request.stale()
        let key = try request.parameter("id")
        let node = try await manager.read(stale: stale) { resolveNode(key, in: $0) }
        guard let node else { throw APIError.notFound("node \(key)") }
        return json(view(node, manager, manager.raft.status), stale: stale)
    }

    /// POST /v1/nodes/<id>/update
    static func postNodesByIDUpdate(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let body = try await request.decode(NodeUpdateRequest.self, defaults: NodeUpdateRequest())
        let node = try await request.node(manager)
        var spec = node.spec
        if let availability = body.availability { spec.availability = availability }
        for key in body.labelRemove ?? [] {
            guard spec.labels.removeValue(forKey: key) != nil else { throw APIError.invalid("labelRemove", "node \(node.id) has no label '\(key)'") }
        }
        for (key, value) in body.labelAdd ?? [:] {
            guard !key.isEmpty else { throw APIError.invalid("labelAdd", "a label needs a non-empty key") }
            spec.labels[key] = value
        }
        try await manager.propose(.updateNodeSpec(id: node.id, expectedVersion: body.version ?? node.meta.version, spec: spec))
        return try await nodeResponse(node.id, manager)
    }

    /// POST /v1/nodes/<id>/promote
    static func postNodesByIDPromote(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let node = try await request.node(manager)
        if node.spec.role != .manager {
            var spec = node.spec
            spec.role = .manager
            try await manager.propose(.updateNodeSpec(id: node.id, expectedVersion: node.meta.version, spec: spec))
        }
        return try await nodeResponse(node.id, manager)
    }

    /// POST /v1/nodes/<id>/demote
    static func postNodesByIDDemote(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let node = try await request.node(manager)
        _ = try await manager.onLeader(.demote(nodeID: node.id))
        return try await nodeResponse(node.id, manager)
    }

    /// DELETE /v1/nodes/<id>
    static func deleteNodesByID(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let force = try request.flag("force")
        let node = try await request.node(manager)
        _ = try await manager.onLeader(.removeNode(nodeID: node.id, force: force))
        return HTTPServerResponse(status: .noContent)
    }

    /// GET /v1/services
    static func getServices(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let stale = try request.stale()
        return json(try await manager.read(stale: stale) { $0.services }, stale: stale)
    }

    /// POST /v1/services
    static func postServices(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        var spec = try await request.decode(Service.Spec.self, defaults: Service.Spec(name: "", task: TaskTemplate(image: "")))
        try checkSpec(spec)
        let warning = try await pinImage(&spec, request)
        var generator = SecureRandom()
        let id = ObjectID.random(using: &generator)
        let events = try await manager.propose(.createService(id: id, spec: spec))
        guard case .service(let service)? = written(id, in: events) else { throw APIError.notFound("service \(id)") }
        return withWarning(json(service, status: 201), warning)
    }

    /// GET /v1/services/<id>
    static func getServicesByID(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let stale = try request.stale()
        let key = try request.parameter("id")
        guard let service = try await manager.read(stale: stale, { resolveService(key, in: $0) }) else { throw APIError.notFound("service \(key)") }
        return json(service, stale: stale)
    }

    /// POST /v1/services/<id>/update
    static func postServicesByIDUpdate(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let key = try request.parameter("id")
        let body = try await request.decode(ServiceUpdateRequest.self,
                                            defaults: ServiceUpdateRequest(version: nil, spec: Service.Spec(name: "", task: TaskTemplate(image: "")), force: nil))
        guard let version = body.version else { throw APIError.invalid("field 'version'", "it is required (the version you read, for compare-and-set)") }
        var spec = body.spec
        try checkSpec(spec)
        guard let service = try await manager.read({ resolveService(key, in: $0) }) else { throw APIError.notFound("service \(key)") }
        let warning = try await pinImage(&spec, request)
        let events = try await manager.propose(.updateService(id: service.id, expectedVersion: version, spec: spec, force: body.force ?? false))
        guard case .service(let updated)? = written(service.id, in: events) else { throw APIError.notFound("service \(key)") }
        return withWarning(json(updated), warning)
    }

    /// Header of the warning a create or update gave (a tag that could not be pinned).
    public static let warningHeader = "Shoal-Warning"

    /// `?resolveImage=true`: the spec's image tag is pinned to the digest
    /// its registry names now (``ServiceImageResolver``); the warning, if
    /// the registry could not be asked.
    @inline(never)  // see Request.body()
    static func pinImage(_ spec: inout Service.Spec, _ request: Request) async throws -> String? {
        guard try request.flag("resolveImage") else { return nil }
        switch await request.context.daemon.imageResolver.resolve(spec.task.image) {
        case .pinned(let image):
            spec.task.image = image
            return nil
        case .unchanged:
            return nil
        case .unresolved(let warning):
            return warning
        }
    }

    static func withWarning(_ response: HTTPServerResponse, _ warning: String?) -> HTTPServerResponse {
        guard let warning else { return response }
        var response = response
        response.headers.add(name: warningHeader, value: warning)
        return response
    }

    /// What a service spec must satisfy beyond ClusterState's own checks,
    /// known only to the layers above it: the image is a reference, the
    /// placement rules are ones the scheduler reads (as swarmkit's
    /// control API refuses them at create). Nothing is stored otherwise.
    @inline(never)
    static func checkSpec(_ spec: Service.Spec) throws {
        try checkImageReference(spec)
        do {
            _ = try PlacementConstraint.parse(all: spec.task.placement.constraints)
            _ = try PlacementPreference.parse(all: spec.task.placement.preferences)
        } catch {
            let field = error.field == "constraint" ? "spec.task.placement.constraints" : "spec.task.placement.preferences"
            throw APIError.invalid("field '\(field)'", error.description)
        }
    }

    /// A service's image must parse as a reference, or every task would be
    /// rejected by the agent later; an empty one is left to ClusterState's check.
    @inline(never)
    static func checkImageReference(_ spec: Service.Spec) throws {
        guard !spec.task.image.isEmpty else { return }
        do {
            _ = try ImageReference(parsing: spec.task.image)
        } catch {
            throw APIError.invalid("field 'spec.task.image'", "\(error.reason); write [REGISTRY[:PORT]/]NAME[:TAG][@sha256:DIGEST], e.g. 127.0.0.1:5000/web:1")
        }
    }

    /// POST /v1/services/<id>/rollback
    static func postServicesByIDRollback(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let key = try request.parameter("id")
        let body = try await request.decode(ServiceRollbackRequest.self, defaults: ServiceRollbackRequest(version: nil))
        guard let version = body.version else { throw APIError.invalid("field 'version'", "it is required (the version you read, for compare-and-set)") }
        guard let service = try await manager.read({ resolveService(key, in: $0) }) else { throw APIError.notFound("service \(key)") }
        let events = try await manager.propose(.rollbackService(id: service.id, expectedVersion: version))
        guard case .service(let updated)? = written(service.id, in: events) else { throw APIError.notFound("service \(key)") }
        return json(updated)
    }

    /// DELETE /v1/services/<id>
    static func deleteServicesByID(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let key = try request.parameter("id")
        let version = try request.unsigned("version")
        guard let service = try await manager.read({ resolveService(key, in: $0) }) else { throw APIError.notFound("service \(key)") }
        try await manager.propose(.removeService(id: service.id, expectedVersion: version))
        return HTTPServerResponse(status: .noContent)
    }

    /// GET /v1/tasks
    static func getTasks(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let stale = try request.stale()
        let service = try request.raw.query["service"].map { text -> ObjectID in
            guard let id = ObjectID(text) else { throw APIError.invalid("query parameter 'service'", "'\(text)' is not an object id") }
            return id
        }
        let node = try request.raw.query["node"].map { text -> ObjectID in
            guard let id = ObjectID(text) else { throw APIError.invalid("query parameter 'node'", "'\(text)' is not an object id") }
            return id
        }
        let tasks = try await manager.read(stale: stale) { state in
            state.tasks.filter { (service == nil || $0.serviceID == service) && (node == nil || $0.nodeID == node) }
        }
        return json(tasks, stale: stale)
    }

    /// GET /v1/tasks/<id>
    static func getTasksByID(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let stale = try request.stale()
        let id = try request.objectID("id")
        guard let task = try await manager.read(stale: stale, { $0.task(id) }) else { throw APIError.notFound("task \(id)") }
        return json(task, stale: stale)
    }

    /// GET /v1/secrets
    static func getSecrets(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let stale = try request.stale()
        return json(try await manager.read(stale: stale) { $0.secrets.map(secretView) }, stale: stale)
    }

    /// GET /v1/secrets/<id>
    static func getSecretsByID(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let stale = try request.stale()
        let key = try request.parameter("id")
        guard let secret = try await manager.read(stale: stale, { state in state.secrets.first { $0.id.rawValue == key || $0.spec.name == key } }) else {
            throw APIError.notFound("secret \(key)")
        }
        return json(secretView(secret), stale: stale)
    }

    /// DELETE /v1/secrets/<id>
    static func deleteSecretsByID(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let key = try request.parameter("id")
        guard let secret = try await manager.read({ state in state.secrets.first { $0.id.rawValue == key || $0.spec.name == key } }) else {
            throw APIError.notFound("secret \(key)")
        }
        try await manager.propose(.removeSecret(id: secret.id))
        return HTTPServerResponse(status: .noContent)
    }

    /// GET /v1/configs
    static func getConfigs(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let stale = try request.stale()
        return json(try await manager.read(stale: stale) { $0.configs.filter { !isReserved($0.spec.name) }.map(configView) }, stale: stale)
    }

    /// GET /v1/configs/<id>
    static func getConfigsByID(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let stale = try request.stale()
        let key = try request.parameter("id")
        guard let config = try await manager.read(stale: stale, { state in
            state.configs.first { !isReserved($0.spec.name) && ($0.id.rawValue == key || $0.spec.name == key) }
        }) else { throw APIError.notFound("config \(key)") }
        return json(configView(config), stale: stale)
    }

    /// DELETE /v1/configs/<id>
    static func deleteConfigsByID(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let key = try request.parameter("id")
        guard let config = try await manager.read({ state in
            state.configs.first { !isReserved($0.spec.name) && ($0.id.rawValue == key || $0.spec.name == key) }
        }) else { throw APIError.notFound("config \(key)") }
        try await manager.propose(.removeConfig(id: config.id))
        return HTTPServerResponse(status: .noContent)
    }

    /// GET /v1/join-tokens
    static func getJoinTokens(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let stale = try request.stale()
        guard let tokens = try await manager.read(stale: stale, { ManagerNode.joinTokens(in: $0) }) else {
            throw APIError(status: 500, code: "internal", message: "the cluster state holds no join tokens", hint: "rotate them with `shoal join-token --rotate worker`")
        }
        return json(JoinTokensView(worker: tokens.worker, manager: tokens.manager), stale: stale)
    }

    /// POST /v1/join-tokens/<role>/rotate
    static func postJoinTokensByRoleRotate(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let role = try request.parameter("role")
        guard role == "worker" || role == "manager" else { throw APIError.invalid("role", "'\(role)' must be worker or manager") }
        guard case .token(let token) = try await manager.onLeader(.rotateJoinToken(role: role)) else {
            throw APIError(status: 500, code: "internal", message: "the leader did not return a token")
        }
        return json(RotatedTokenView(role: role, token: token))
    }

    /// GET /v1/events
    static func getEvents(_ request: Request) async throws -> HTTPServerResponse {
        let context = request.context
        let manager = try context.manager()
        let since = try request.unsigned("since")
        let events = manager.raft.watch(after: since)
        return HTTPServerResponse(status: .ok, headers: ["Content-Type": "application/x-ndjson"], body: .stream { writer in
            try await streamEvents(events, to: writer)
        })
    }

    // MARK: Helpers

    struct Request: Sendable {
        let raw: HTTPServerRequest
        let context: Context

        // Not inlined: the Swift 6.3 optimizer crashes ("While splitting
        // coroutine", in CoroSplit's swifterror handling) when this do/catch
        // around an await is inlined into an async route handler.
        @inline(never)
        func body() async throws -> [UInt8] {
            do {
                return try await raw.body.collect(upTo: ControlAPI.maxBodyBytes)
            } catch HTTPError.bodyTooLarge(let limit) {
                throw APIError(status: 413, code: "payload_too_large", message: "the request body exceeds \(limit) bytes", hint: "send less; nothing was written")
            } catch let error as HTTPParseError {
                let status = error.status.code
                throw APIError(status: status, code: status == 413 ? "payload_too_large" : "invalid_argument", message: "\(error)", hint: "nothing was written")
            }
        }

        @inline(never)  // see body()
        func decode<T: Codable>(_ type: T.Type, defaults: T? = nil) async throws -> T {
            try StrictJSON.decode(type, from: try await body(), defaults: defaults)
        }

        @inline(never)  // see body()
        func decodeOptional<T: Codable>(_ type: T.Type) async throws -> T? {
            let bytes = try await body()
            if bytes.isEmpty { return nil }
            return try StrictJSON.decode(type, from: bytes)
        }

        func parameter(_ name: String) throws -> String {
            guard let value = raw.pathParameters[name], !value.isEmpty else { throw APIError.invalid(name, "it is missing from the path") }
            return value
        }

        func objectID(_ name: String) throws -> ObjectID {
            let text = try parameter(name)
            guard let id = ObjectID(text) else { throw APIError.notFound("\(name) '\(text)'") }
            return id
        }

        func flag(_ name: String) throws -> Bool {
            guard let text = raw.query[name] else { return false }
            switch text {
            case "true", "1", "": return true
            case "false", "0": return false
            default: throw APIError.invalid("query parameter '\(name)'", "'\(text)' must be true or false")
            }
        }

        func stale() throws -> Bool { try flag("stale") }

        func unsigned(_ name: String) throws -> UInt64? {
            guard let text = raw.query[name] else { return nil }
            guard let value = UInt64(text) else { throw APIError.invalid("query parameter '\(name)'", "'\(text)' must be a non-negative integer") }
            return value
        }

        func node(_ manager: ManagerNode) async throws -> Node {
            let key = try parameter("id")
            guard let node = try await manager.read({ resolveNode(key, in: $0) }) else { throw APIError.notFound("node \(key)") }
            return node
        }
    }

    static func json<T: Encodable>(_ value: T, status: Int = 200, stale: Bool = false) -> HTTPServerResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var bytes = Array(try! encoder.encode(value))
        bytes.append(UInt8(ascii: "\n"))
        var headers: HTTPHeaders = ["Content-Type": "application/json"]
        if stale { headers.add(name: staleHeader, value: "true") }
        return HTTPServerResponse(status: HTTPStatus(code: status), headers: headers, body: .bytes(bytes))
    }

    /// The object `id` as the write that returned `events` left it: a handler
    /// answers with it instead of reading it back through the Raft thread
    /// (where a follower that forwarded the write might not have it yet).
    static func written(_ id: ObjectID, in events: [ClusterEvent]) -> ClusterObject? {
        events.last { $0.id == id && $0.action != .removed }?.object
    }

    static func createSecret(_ request: Request, _ manager: ManagerNode) async throws -> HTTPServerResponse {
        let body = try await request.decode(SecretCreateRequest.self)
        guard let plaintext = Data(base64Encoded: body.data) else { throw APIError.invalid("field 'data'", "it must be base64") }
        let sealed = try manager.secretBox.seal(Array(plaintext))
        var generator = SecureRandom()
        let id = ObjectID.random(using: &generator)
        guard plaintext.count <= 500 * 1024 else { throw APIError.invalid("field 'data'", "\(plaintext.count) bytes exceeds the 512000-byte limit") }
        let events = try await manager.propose(.createSecret(id: id, spec: Secret.Spec(name: body.name, labels: body.labels ?? [:], data: sealed)))
        guard case .secret(let secret)? = written(id, in: events) else { throw APIError.notFound("secret \(id)") }
        return json(secretView(secret), status: 201)
    }

    static func createConfig(_ request: Request, _ manager: ManagerNode) async throws -> HTTPServerResponse {
        let body = try await request.decode(ConfigCreateRequest.self)
        guard !isReserved(body.name) else { throw APIError.invalid("field 'name'", "names starting with 'shoal.' are reserved") }
        guard let data = Data(base64Encoded: body.data) else { throw APIError.invalid("field 'data'", "it must be base64") }
        var generator = SecureRandom()
        let id = ObjectID.random(using: &generator)
        let events = try await manager.propose(.createConfig(id: id, spec: Config.Spec(name: body.name, labels: body.labels ?? [:], data: Array(data))))
        guard case .config(let config)? = written(id, in: events) else { throw APIError.notFound("config \(id)") }
        return json(configView(config), status: 201)
    }

    static func nodeResponse(_ id: ObjectID, _ manager: ManagerNode) async throws -> HTTPServerResponse {
        guard let node = try await manager.read(stale: true, { $0.node(id) }) else { throw APIError.notFound("node \(id)") }
        return json(view(node, manager, manager.raft.status))
    }

    static func isReserved(_ name: String) -> Bool { name.hasPrefix("shoal.") }

    static func resolveNode(_ key: String, in state: ClusterState) -> Node? {
        if let id = ObjectID(key), let node = state.node(id) { return node }
        let named = state.nodes.filter { $0.status.hostname == key }
        return named.count == 1 ? named[0] : nil
    }

    static func resolveService(_ key: String, in state: ClusterState) -> Service? {
        if let id = ObjectID(key), let service = state.service(id) { return service }
        return state.service(named: key)
    }

    static func view(_ node: Node, _ manager: ManagerNode, _ status: ManagerRaft.Status) -> NodeView {
        let managerStatus = node.managerStatus.map { member in
            ManagerStatusView(raftID: member.raftID, address: member.address, leader: member.raftID == status.leader,
                              suffrage: status.configuration.isVoter(member.raftID) ? "voter" : status.configuration.isLearner(member.raftID) ? "learner" : "none",
                              reachability: manager.isReachable(member.raftID) ? "reachable" : "unreachable")
        }
        return NodeView(id: node.id.rawValue, version: node.meta.version, createdAtMilliseconds: node.meta.createdAtMilliseconds,
                        updatedAtMilliseconds: node.meta.updatedAtMilliseconds, spec: node.spec, status: node.status, managerStatus: managerStatus)
    }

    static func secretView(_ secret: Secret) -> SecretView {
        SecretView(id: secret.id.rawValue, version: secret.meta.version, createdAtMilliseconds: secret.meta.createdAtMilliseconds,
                   updatedAtMilliseconds: secret.meta.updatedAtMilliseconds, name: secret.spec.name, labels: secret.spec.labels)
    }

    static func configView(_ config: Config) -> ConfigView {
        ConfigView(id: config.id.rawValue, version: config.meta.version, createdAtMilliseconds: config.meta.createdAtMilliseconds,
                   updatedAtMilliseconds: config.meta.updatedAtMilliseconds, name: config.spec.name, labels: config.spec.labels,
                   data: Data(config.spec.data).base64EncodedString())
    }

    /// One JSON object per line, as changes apply; a blank line every
    /// ``eventKeepAlive`` so a client that went away ends the stream.
    static func streamEvents(_ events: AsyncStream<ClusterEvent>, to writer: HTTPBodyWriter) async throws {
        let (lines, continuation) = AsyncStream<[UInt8]>.makeStream(bufferingPolicy: .bufferingNewest(100_000))
        let pump = Task {
            for await event in events {
                var line = Support.encode(event)
                line.append(UInt8(ascii: "\n"))
                continuation.yield(line)
            }
            continuation.finish()
        }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: eventKeepAlive)
                continuation.yield([UInt8(ascii: "\n")])
            }
        }
        defer {
            pump.cancel()
            ticker.cancel()
        }
        for await line in lines {
            try await writer.write(line)
        }
    }
}
