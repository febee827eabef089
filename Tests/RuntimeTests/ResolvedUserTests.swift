import Foundation
import Runtime
import Testing

@Suite("Users from the image")
struct ResolvedUserTests {
    final class Etc {
        let root = NSTemporaryDirectory() + "shoal-etc-\(UUID().uuidString.prefix(8))"
        init() throws {
            try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
            try "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n# comment\nnobody:x:65534:65534::/:/bin/false\n"
                .write(toFile: root + "/etc/passwd", atomically: true, encoding: .utf8)
            try "root:x:0:\nstaff:x:50:app,other\napp:x:1001:\nwheel:x:10:root\n"
                .write(toFile: root + "/etc/group", atomically: true, encoding: .utf8)
        }
        deinit { try? FileManager.default.removeItem(atPath: root) }
    }

    @Test func resolvesNamesNumbersAndGroups() throws {
        let etc = try Etc()
        let layers = [etc.root]
        #expect(try ResolvedUser.resolve(nil, layers: layers) == ResolvedUser(uid: 0, gid: 0, additionalGroups: [10], home: "/root"))
        #expect(try ResolvedUser.resolve("app", layers: layers) == ResolvedUser(uid: 1000, gid: 1001, additionalGroups: [50], home: "/home/app"))
        #expect(try ResolvedUser.resolve("1000", layers: layers).gid == 1001)
        #expect(try ResolvedUser.resolve("4242", layers: layers) == ResolvedUser(uid: 4242, gid: 0, additionalGroups: [], home: "/"))
        #expect(try ResolvedUser.resolve("app:staff", layers: layers) == ResolvedUser(uid: 1000, gid: 50, additionalGroups: [], home: "/home/app"))
        #expect(try ResolvedUser.resolve("nobody:7", layers: layers).gid == 7)
        #expect(throws: RuntimeError.noSuchUser("bob")) { try ResolvedUser.resolve("bob", layers: layers) }
        #expect(throws: RuntimeError.noSuchGroup("nope")) { try ResolvedUser.resolve("app:nope", layers: layers) }
    }

    @Test func topmostLayerWinsAndSymlinksStayInside() throws {
        let lower = try Etc()
        let upper = try Etc()
        try "root:x:0:0:root:/root:/bin/sh\nbob:x:7:7::/b:/bin/sh\n".write(toFile: upper.root + "/etc/passwd", atomically: true, encoding: .utf8)
        #expect(try ResolvedUser.resolve("bob", layers: [upper.root, lower.root]).uid == 7)
        #expect(throws: RuntimeError.noSuchUser("bob")) { try ResolvedUser.resolve("bob", layers: [lower.root]) }

        // An absolute symlink is resolved inside the layer, never on the host.
        let evil = try Etc()
        try FileManager.default.removeItem(atPath: evil.root + "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: evil.root + "/etc/passwd", withDestinationPath: "/etc/hostpasswd")
        try "root:x:0:0:root:/root:/bin/sh\nmallory:x:9:9::/:/bin/sh\n".write(toFile: evil.root + "/etc/hostpasswd", atomically: true, encoding: .utf8)
        #expect(try ResolvedUser.resolve("mallory", layers: [evil.root]).uid == 9)
        // root of the host resolves to the layer's root, and ../ cannot climb out.
        try FileManager.default.removeItem(atPath: evil.root + "/etc/passwd")
        try FileManager.default.createSymbolicLink(atPath: evil.root + "/etc/passwd", withDestinationPath: "../../../../../etc/passwd")
        #expect(throws: RuntimeError.noSuchUser("_apt")) { try ResolvedUser.resolve("_apt", layers: [evil.root]) }
    }
}
