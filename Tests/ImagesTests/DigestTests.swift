import Images
import Testing

@Suite struct DigestTests {
    let valid = "sha256:" + String(repeating: "ab", count: 32)

    @Test func parsesCanonicalSHA256() throws {
        let digest = try Digest(parsing: valid)
        #expect(digest.hex == String(repeating: "ab", count: 32))
        #expect(digest.description == valid)
    }

    @Test func sha256OfKnownInput() {
        // sha256("abc"), FIPS 180-2 appendix B.1.
        #expect(Digest.of(Array("abc".utf8)).description
            == "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(Digest.of([UInt8]()).description
            == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test(arguments: [
        ("sha512:" + String(repeating: "a", count: 128), "unsupported algorithm"),
        ("sha256:" + String(repeating: "a", count: 63), "64 hex characters"),
        ("sha256:" + String(repeating: "a", count: 65), "64 hex characters"),
        ("sha256:" + String(repeating: "A", count: 64), "uppercase"),
        ("sha256:" + String(repeating: "g", count: 64), "not lowercase hex"),
        (String(repeating: "a", count: 64), "missing the algorithm"),
        ("sha256:../../" + String(repeating: "a", count: 58), "not lowercase hex"),
        ("", "missing the algorithm"),
    ])
    func rejectsNonCanonicalDigests(text: String, reason: String) {
        #expect {
            try Digest(parsing: text)
        } throws: { error in
            (error as? DigestError)?.description.contains(reason) == true
        }
    }

    @Test func decodesAndEncodesAsJSONString() throws {
        let data = Array("\"\(valid)\"".utf8)
        let digest = try JSONDecoder().decode(Digest.self, from: Data(data))
        #expect(digest.description == valid)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(Digest.self, from: Data("\"md5:abc\"".utf8))
        }
    }
}

import Foundation
