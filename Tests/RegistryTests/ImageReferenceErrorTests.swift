import TestSupport
import Foundation
import Images
@testable import Registry
import Testing

/// Bad image references: each refused with the reason, the text as given,
/// and the grammar to write instead.
@Suite struct ImageReferenceErrorTests {
    @Test(arguments: [
        ("", "empty reference"),
        ("UPPER", "uppercase letters are not allowed"),
        ("team/App:1", "uppercase letters are not allowed"),
        ("app:", "a tag cannot be empty"),
        ("app:-x", "a tag must start with a letter, digit or '_'"),
        ("app:t+t", "is not allowed in a tag"),
        ("app:" + String(repeating: "t", count: 129), "longer than 128 characters"),
        ("app:bad/tag", "port \"bad\" is not 1-65535"),
        ("app@sha256:123", "bad digest"),
        ("app@sha512:" + String(repeating: "a", count: 128), "only sha256 is accepted"),
        ("app@sha256:" + String(repeating: "A", count: 64), "lowercase"),
        ("host:99999/app", "is not 1-65535"),
        ("host:0/app", "is not 1-65535"),
        ("bad_host.example/app", "host components hold letters, digits and '-'"),
        ("-host.example/app", "bad host component"),
        ("[::1/app", "unterminated IPv6 address"),
        ("a//b", "empty path component"),
        ("team/app/", "empty path component"),
        ("-app", "must start and end with a lowercase letter or digit"),
        ("app-", "cannot end with a separator"),
        ("a b", "is not allowed"),
        ("app:tag:extra", "is not allowed"),
        (":tag", "cannot be empty"),
        (String(repeating: "a", count: 700), "longer than"),
    ])
    func badReferencesSayWhy(text: String, reason: String) {
        #expect {
            try ImageReference(parsing: text)
        } throws: { error in
            guard let error = error as? ImageReferenceError else { return false }
            return error.text == text && error.reason.contains(reason)
                && error.description.contains("write [registry[:port]/]name[:tag][@sha256:<64 hex>]")
        }
    }

    @Test func goodReferencesNormalise() throws {
        let cases: [(String, String)] = [
            ("busybox", "127.0.0.1:5000/busybox:latest"),
            ("team/app:v1.2_rc-3", "127.0.0.1:5000/team/app:v1.2_rc-3"),
            ("localhost/app", "localhost/app:latest"),
            ("registry.example/a/b/c:1", "registry.example/a/b/c:1"),
            ("[::1]:5000/app:x", "[::1]:5000/app:x"),
            ("my-registry.example:443/app__x.y", "my-registry.example:443/app__x.y:latest"),
        ]
        for (text, normalized) in cases {
            #expect(try ImageReference(parsing: text).description == normalized, "\(text)")
        }
    }
}
