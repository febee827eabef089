import Testing
@testable import HTTP

@Suite("Router")
struct HTTPRouterTests {
    private func router() -> HTTPRouter {
        var router = HTTPRouter()
        let ok: HTTPRouter.Handler = { _ in HTTPServerResponse() }
        router.add(.get, "/v2/", ok)
        router.add(.get, "/v2/<name...>/manifests/<reference>", ok)
        router.add(.put, "/v2/<name...>/manifests/<reference>", maxBodyBytes: 4 * 1024 * 1024, ok)
        router.add(.get, "/v2/<name...>/blobs/<digest>", ok)
        router.add(.patch, "/v2/<name...>/blobs/uploads/<id>", maxBodyBytes: .max, ok)
        return router
    }

    @Test func namesWithSlashesBindToTheRestParameter() {
        guard case .found(let route, let parameters) = router().match(method: .get, path: "/v2/library/tools/busybox/manifests/latest") else {
            Issue.record("no match")
            return
        }
        #expect(route.pattern == "/v2/<name...>/manifests/<reference>")
        #expect(parameters == ["name": "library/tools/busybox", "reference": "latest"])

        guard case .found(_, let blob) = router().match(method: .get, path: "/v2/a/blobs/sha256%3Aabc") else {
            Issue.record("no blob match")
            return
        }
        #expect(blob == ["name": "a", "digest": "sha256:abc"])
        // A repository literally named `manifests` inside the path still binds (longest name first).
        guard case .found(_, let nested) = router().match(method: .get, path: "/v2/x/manifests/y/manifests/z") else {
            Issue.record("no nested match")
            return
        }
        #expect(nested == ["name": "x/manifests/y", "reference": "z"])
        guard case .found(let upload, let uploadParameters) = router().match(method: .patch, path: "/v2/a/b/blobs/uploads/u-1") else {
            Issue.record("no upload match")
            return
        }
        #expect(upload.maxBodyBytes == .max)
        #expect(uploadParameters == ["name": "a/b", "id": "u-1"])
    }

    @Test func wrongMethodIs405WithAllowAndHeadFallsBackToGet() {
        guard case .methodNotAllowed(let allowed) = router().match(method: .delete, path: "/v2/a/manifests/latest") else {
            Issue.record("expected 405")
            return
        }
        #expect(allowed == [.get, .put, .head])
        guard case .found(let route, _) = router().match(method: .head, path: "/v2/a/blobs/sha256:1") else {
            Issue.record("HEAD did not fall back to GET")
            return
        }
        #expect(route.method == .get)
    }

    @Test func unknownPathsEmptySegmentsAndPrefixesDoNotMatch() {
        for path in ["/v3/", "/v2", "/v2/manifests/latest", "/v2//manifests/latest", "/v2/a/manifests/", "/v2/a/manifests/b/extra", "v2/"] {
            if case .notFound = router().match(method: .get, path: Substring(path)) { continue }
            Issue.record("\(path) should not match")
        }
    }
}
