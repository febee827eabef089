import TestSupport
import Foundation
@testable import Images
import Testing

/// `shoal image import --change`, `history`, `save`, `rm`, `load` as a user
/// runs them: the real binary on a scratch data directory.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ImageCommandTests {
    struct Result {
        var status: Int32
        var output: String
        var error: String
    }

    let directory: TemporaryDirectory

    init() throws {
        directory = try TemporaryDirectory("image-commands")
    }

    func shoal(_ arguments: [String]) throws -> Result {
        let result = try runToExit(ShoalBinary.path!, ["image"] + arguments + ["--data", directory.file("data")])
        return Result(status: result.status, output: result.output, error: result.error)
    }

    func blobCount() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: directory.file("data/images/blobs/sha256")).count) ?? 0
    }

    @Test(.enabled(if: ShoalBinary.path != nil, "the shoal binary is not built next to the tests (swift build --build-tests)"))
    func importHistorySaveRemoveLoad() throws {
        var tar = TarBuilder()
        tar.file("./greeting", "hello\n")
        tar.end()
        let rootfs = directory.file("rootfs.tar")
        try Data(tar.bytes).write(to: URL(fileURLWithPath: rootfs))

        // A bad --change is refused before anything is stored.
        let bad = try shoal(["import", rootfs, "web:1", "--change", "CMD [\"/bin/sh\"]", "--change", "EXPOSE 99999"])
        #expect(bad.status == 1)
        #expect(bad.error.contains("invalid --change \"EXPOSE 99999\"") && bad.error.contains("ports 1-65535"), "\(bad.error)")
        #expect(blobCount() == 0)
        // So is a name that breaks the reference grammar.
        let badName = try shoal(["import", rootfs, "Web:1"])
        #expect(badName.status == 1 && badName.error.contains("invalid image reference"), "\(badName.error)")
        #expect(blobCount() == 0)

        let imported = try shoal(["import", rootfs, "web:1", "--change", "ENTRYPOINT [\"/bin/sh\", \"-c\"]", "--change", "CMD cat /greeting",
                                  "--change", "ENV GREETING=hello", "--change", "WORKDIR /srv"])
        #expect(imported.status == 0, "\(imported.error)")
        let inspect = try shoal(["inspect", "web:1"])
        #expect(inspect.output.contains(#""Cmd":["/bin/sh","-c","cat /greeting"]"#) && inspect.output.contains(#""WorkingDir":"/srv""#), "\(inspect.output)")

        let history = try shoal(["history", "web:1", "--format", "json"])
        #expect(history.status == 0, "\(history.error)")
        #expect(try shoal(["history", "web"]).error.contains("web"), "no web:latest: a clear error")
        struct Line: Decodable { var ID, CreatedBy, Size, CreatedSince: String; var SizeBytes: Int64 }
        let lines = try history.output.split(separator: "\n").map { try JSONDecoder().decode(Line.self, from: Data($0.utf8)) }
        #expect(lines.count == 1)
        #expect(lines.first?.CreatedBy == "shoal image import" && lines.first?.SizeBytes == Int64(tar.bytes.count))
        #expect(lines.first?.ID.hasPrefix("sha256:") == true)
        let table = try shoal(["history", "web:1"])
        #expect(table.output.hasPrefix("IMAGE") && table.output.contains("shoal image import"), "\(table.output)")
        #expect(try shoal(["history", "web:1", "--format", "{{.ID}}"]).status == 1)

        // save → rm → prune → load, in both formats.
        for format in ["oci-archive", "docker-archive"] {
            let archive = directory.file("web-\(format).tar")
            let saved = try shoal(["save", "-o", archive, "--format", format, "web:1"])
            #expect(saved.status == 0, "\(saved.error)")
            #expect(try shoal(["rm", "web:1"]).status == 0)
            _ = try shoal(["prune"])
            #expect(try shoal(["inspect", "web:1"]).status == 1)
            let loaded = try shoal(["load", "-i", archive])
            #expect(loaded.status == 0 && loaded.output.contains("Loaded image: web:1"), "\(loaded.output) \(loaded.error)")
            #expect(try shoal(["inspect", "web:1"]).output.contains("cat /greeting"))
        }

        // A truncated archive: a clear error, and no new blobs.
        let archive = directory.file("web-oci-archive.tar")
        let bytes = try Data(contentsOf: URL(fileURLWithPath: archive))
        let truncated = directory.file("truncated.tar")
        try bytes.prefix(bytes.count - 1_600).write(to: URL(fileURLWithPath: truncated))
        #expect(try shoal(["rm", "web:1"]).status == 0)
        let blobsBefore = blobCount()
        let failed = try shoal(["load", "-i", truncated])
        #expect(failed.status == 1 && failed.error.contains("nothing was loaded"), "\(failed.error)")
        #expect(blobCount() == blobsBefore)
        #expect(try shoal(["save", "web:1"]).error.contains("needs -o FILE"))
    }
}
