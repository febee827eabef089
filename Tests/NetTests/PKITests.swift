import struct Raft.SeededGenerator
import Foundation
import Testing
@testable import Net

@Suite("PKI", .timeLimit(.minutes(2)))
struct PKITests {
    @Test func rootCAIsASelfSignedP256CertificateAuthority() throws {
        let now = Date()
        let authority = try CertificateAuthority.createRoot(clusterID: "cluster-a", now: now)
        let root = authority.certificate
        #expect(root.version == 3)
        #expect(root.isCertificateAuthority)
        #expect(root.subject == DistinguishedName(commonName: CertificateAuthority.rootCommonName, organization: "cluster-a"))
        #expect(root.issuer == root.subject)
        #expect(root.isSigned(by: root))
        #expect(try #require(root.keyUsage) & 0x0004 != 0, "keyCertSign") // KU_KEY_CERT_SIGN
        #expect(authority.clusterID == "cluster-a")
        #expect(root.notAfter.timeIntervalSince(now) > 19 * 365 * 86_400)
        // The text form agrees: an independent parser (openssl x509) reads the same.
        let text = try runOpenSSL(["x509", "-noout", "-text"], input: root.pemEncoded)
        #expect(text.contains("ASN1 OID: prime256v1"))
        #expect(text.contains("CA:TRUE"))
        #expect(text.contains("Certificate Sign"))
    }

    @Test func nodeCertificateFromCSRCarriesNodeRoleAndCluster() throws {
        let now = Date(timeIntervalSince1970: 1_900_000_000)
        let authority = try CertificateAuthority.createRoot(clusterID: "prod-eu", now: now)
        let key = try PrivateKey.generateP256()
        let request = try CertificateSigningRequest.create(nodeID: "node-42", key: key)
        // The request travels as PEM; parse it back as the CA would.
        let received = try CertificateSigningRequest(pemEncoded: request.pemEncoded)
        #expect(received.hasValidSignature)
        #expect(received.subject.commonName == "node-42")
        let issued = try authority.issue(for: received, nodeID: "node-42", role: .worker, now: now)
        // Round trip through PEM, then read every field back.
        let certificate = try Certificate(pemEncoded: issued.pemEncoded)
        #expect(certificate.subject == DistinguishedName(commonName: "node-42", organizationalUnit: "worker", organization: "prod-eu"))
        #expect(certificate.nodeIdentity == NodeIdentity(nodeID: "node-42", role: .worker, clusterID: "prod-eu"))
        #expect(certificate.issuer == authority.certificate.subject)
        #expect(certificate.isSigned(by: authority.certificate))
        #expect(!certificate.isSigned(by: try CertificateAuthority.createRoot(clusterID: "other").certificate))
        #expect(certificate.matches(key))
        #expect(!certificate.isCertificateAuthority)
        #expect(certificate.allowsServerAndClientAuthentication)
        #expect(certificate.version == 3)
        #expect(certificate.notAfter == now.addingTimeInterval(90 * 86_400), "90-day default lifetime")
        #expect(certificate.notBefore <= now)
        let text = try runOpenSSL(["x509", "-noout", "-text"], input: certificate.pemEncoded)
        #expect(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"))
        #expect(text.contains("CA:FALSE"))
        #expect(text.contains("Digital Signature"))
        #expect(text.contains("X509v3 Authority Key Identifier"))
        // openssl verify agrees the chain is valid.
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try authority.certificate.write(toFile: directory + "/root.pem")
        try certificate.write(toFile: directory + "/node.pem")
        let verified = try runOpenSSL(["verify", "-attime", "1900000100", "-purpose", "sslclient", "-CAfile", directory + "/root.pem", directory + "/node.pem"])
        #expect(verified.contains("OK"))
    }

    @Test func lifetimeIsSettable() throws {
        let now = Date(timeIntervalSince1970: 1_900_000_000)
        let authority = try CertificateAuthority.createRoot(clusterID: "c", now: now)
        let (certificate, _) = try authority.issueNodeCredentials(nodeID: "m1", role: .manager, now: now, lifetime: .seconds(3600))
        #expect(certificate.notAfter == now.addingTimeInterval(3600))
        #expect(certificate.nodeIdentity?.role == .manager)
    }

    @Test func caIgnoresTheSubjectTheRequesterAskedFor() throws {
        let authority = try CertificateAuthority.createRoot(clusterID: "c")
        let key = try PrivateKey.generateP256()
        let request = try CertificateSigningRequest.create(nodeID: "wants-to-be-manager", key: key)
        let issued = try authority.issue(for: request, nodeID: "worker-3", role: .worker)
        #expect(issued.subject.commonName == "worker-3")
        #expect(issued.subject.organizationalUnit == "worker")
    }

    @Test func tamperedRequestIsRefused() throws {
        let authority = try CertificateAuthority.createRoot(clusterID: "c")
        let key = try PrivateKey.generateP256()
        let pem = try CertificateSigningRequest.create(nodeID: "node-1", key: key).pemEncoded
        // Flip one base64 character inside the body (the signature is at the end).
        var lines = pem.split(separator: "\n").map(String.init)
        let index = lines.count - 2
        var bytes = Array(lines[index].utf8)
        bytes[4] = bytes[4] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        lines[index] = String(decoding: bytes, as: UTF8.self)
        let tampered = lines.joined(separator: "\n") + "\n"
        // Either the DER no longer parses or the signature no longer verifies:
        // both are refusals, and nothing is issued.
        var issued: Certificate?
        var refusal: (any Error)?
        do {
            let request = try CertificateSigningRequest(pemEncoded: tampered)
            issued = try authority.issue(for: request, nodeID: "node-1", role: .worker)
        } catch {
            refusal = error
        }
        #expect(issued == nil)
        #expect(refusal is PKIError)
    }

    @Test func invalidNamesAreRefusedWithTheReason() throws {
        let authority = try CertificateAuthority.createRoot(clusterID: "c")
        let key = try PrivateKey.generateP256()
        #expect(throws: PKIError.self) { _ = try CertificateSigningRequest.create(nodeID: "", key: key) }
        #expect(throws: PKIError.self) { _ = try CertificateSigningRequest.create(nodeID: "a,b=c", key: key) }
        #expect(throws: PKIError.self) { _ = try CertificateAuthority.createRoot(clusterID: String(repeating: "x", count: 65)) }
        do {
            _ = try authority.issueNodeCredentials(nodeID: "bad/name", role: .worker)
            Issue.record("accepted node id with '/'")
        } catch {
            #expect("\(error)".contains("node id"))
        }
    }

    @Test func keyFileIsOwnerOnlyAndRoundTrips() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/root-ca.key"
        // A world-readable file already at the path must not keep its mode.
        _ = FileManager.default.createFile(atPath: path, contents: Data("old".utf8), attributes: [.posixPermissions: 0o644])
        let authority = try CertificateAuthority.createRoot(clusterID: "c")
        try authority.key.write(toFile: path)
        var status = stat()
        #expect(stat(path, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)
        let reloaded = try PrivateKey.read(fromFile: path)
        #expect(authority.certificate.matches(reloaded))
        let certificatePath = directory + "/root-ca.pem"
        try authority.certificate.write(toFile: certificatePath)
        let again = try CertificateAuthority(certificate: Certificate.read(fromFile: certificatePath), key: reloaded)
        #expect(again.certificate.sha256Digest == authority.certificate.sha256Digest)
        // A key that is not the CA's is refused.
        #expect(throws: PKIError.self) { _ = try CertificateAuthority(certificate: authority.certificate, key: PrivateKey.generateP256()) }
        #expect(throws: PKIError.self) { _ = try PrivateKey.read(fromFile: directory + "/missing.key") }
        #expect(throws: PKIError.self) { _ = try PrivateKey(pemEncoded: "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n") }
    }

    @Test func rootDigestIsSHA256OfTheDER() throws {
        let root = try CertificateAuthority.createRoot(clusterID: "c").certificate
        let der = root.derEncoded
        #expect(der.first == 0x30) // a DER SEQUENCE
        let fingerprint = try runOpenSSL(["x509", "-noout", "-fingerprint", "-sha256"], input: root.pemEncoded)
        let expected = fingerprint.split(separator: "=").last!.replacingOccurrences(of: ":", with: "").lowercased()
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(root.sha256Digest == expected)
        #expect(root.sha256Digest.count == 64)
    }

    @Test func joinTokenRoundTripsAndPinsTheRoot() throws {
        let root = try CertificateAuthority.createRoot(clusterID: "c").certificate
        let token = JoinToken.generate(root: root)
        let text = token.description
        #expect(text.hasPrefix("SHOAL-1-\(root.sha256Digest)-"))
        #expect(text.count == "SHOAL-1-".count + 64 + 1 + JoinToken.secretLength)
        let parsed = try JoinToken(parsing: text)
        #expect(parsed == token)
        #expect(parsed.pins(root))
        #expect(!parsed.pins(try CertificateAuthority.createRoot(clusterID: "c").certificate))
        #expect(parsed.hasSameSecret(as: token))
        let other = JoinToken.generate(root: root)
        #expect(other.secret != token.secret, "secrets come from the RNG")
        #expect(!other.hasSameSecret(as: token))
    }

    @Test(arguments: [
        ("", "malformed"),
        ("SHOAL-1-abc", "malformed"),
        ("SWMTKN-1-\(String(repeating: "a", count: 64))-\(String(repeating: "a", count: 32))", "malformed"),
        ("SHOAL-2-\(String(repeating: "a", count: 64))-\(String(repeating: "a", count: 32))", "version"),
        ("SHOAL-1-\(String(repeating: "A", count: 64))-\(String(repeating: "a", count: 32))", "digest"),
        ("SHOAL-1-\(String(repeating: "a", count: 63))-\(String(repeating: "a", count: 32))", "digest"),
        ("SHOAL-1-\(String(repeating: "a", count: 64))-\(String(repeating: "a", count: 31))", "secret"),
        ("SHOAL-1-\(String(repeating: "a", count: 64))-\(String(repeating: "1", count: 32))", "secret"),
        ("SHOAL-1-\(String(repeating: "a", count: 64))-\(String(repeating: "a", count: 32))-x", "malformed"),
    ])
    func malformedJoinTokensAreRefused(token: String, kind: String) {
        do {
            _ = try JoinToken(parsing: token)
            Issue.record("accepted \(token)")
        } catch {
            switch (error, kind) {
            case (.malformed, "malformed"), (.unsupportedVersion, "version"), (.invalidDigest, "digest"), (.invalidSecret, "secret"):
                #expect(error.description.contains("shoal join-token"), "the error says where to get a good token")
            default:
                Issue.record("\(token): expected \(kind), got \(error)")
            }
        }
    }

    @Test func base32MatchesRFC4648Vectors() {
        #expect(JoinToken.base32(Array("foobar".utf8)) == "mzxw6ytboi")
        #expect(JoinToken.base32(Array("f".utf8)) == "my")
        #expect(JoinToken.base32([]) == "")
    }

    @Test func renewalFallsBetweenHalfAndFourFifthsOfTheLifetime() {
        let start = Date(timeIntervalSince1970: 1_000_000)
        let end = start.addingTimeInterval(90 * 86_400)
        var generator = SeededGenerator(seed: 7)
        var times: [Date] = []
        for _ in 0..<1000 {
            let time = RenewalSchedule.renewalTime(notBefore: start, notAfter: end, using: &generator)
            #expect(time >= start.addingTimeInterval(45 * 86_400) && time <= start.addingTimeInterval(72 * 86_400))
            times.append(time)
        }
        // Jittered: spread over most of the window, not one point.
        let spread = times.max()!.timeIntervalSince(times.min()!)
        #expect(spread > 0.9 * 27 * 86_400)
        // Deterministic for a seed.
        var first = SeededGenerator(seed: 99), second = SeededGenerator(seed: 99)
        #expect(RenewalSchedule.renewalTime(notBefore: start, notAfter: end, using: &first)
            == RenewalSchedule.renewalTime(notBefore: start, notAfter: end, using: &second))
    }

    @Test func renewalOfAnIssuedCertificate() throws {
        let now = Date(timeIntervalSince1970: 1_900_000_000)
        let authority = try CertificateAuthority.createRoot(clusterID: "c", now: now)
        let (certificate, _) = try authority.issueNodeCredentials(nodeID: "w", role: .worker, now: now)
        var generator = SeededGenerator(seed: 1)
        let renewal = RenewalSchedule.renewalTime(for: certificate, using: &generator)
        #expect(renewal > now.addingTimeInterval(44 * 86_400) && renewal < now.addingTimeInterval(73 * 86_400))
        #expect(renewal < certificate.notAfter)
    }
}


/// Runs the `openssl` command-line tool (an independent implementation to check our output against).
func runOpenSSL(_ arguments: [String], input: String? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = arguments
    let output = Pipe(), stdin = Pipe()
    process.standardOutput = output
    process.standardError = output
    process.standardInput = stdin
    try process.run()
    if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
    try stdin.fileHandleForWriting.close()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}
