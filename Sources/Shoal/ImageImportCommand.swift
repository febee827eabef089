import Foundation
import Images
import Registry

/// `shoal image import ROOTFS.tar NAME:TAG [--change 'CMD ...' ...] [--data DIR]`:
/// stores a root file system tarball as a one-layer image in the node's
/// content store (DIR/images, DIR as the daemon's `--data`), where the agent
/// finds it by tag; each `--change` is a Dockerfile instruction applied to
/// the image's config (as `docker import --change`). `shoal image ls` lists the tags.
enum ImageImportCommand {
    static let usage = """
        shoal image import ROOTFS.tar NAME:TAG [--change 'INSTRUCTION' ...] [--data DIR]
                                                     store a rootfs tarball as an image; --change takes CMD, ENTRYPOINT,
                                                     ENV, WORKDIR, USER, EXPOSE, LABEL, STOPSIGNAL or VOLUME
          image ls [--data DIR]                      list local images
        """

    static func run(_ rest: [String]) -> Int32 {
        do {
            let arguments = try ClusterCommands.Arguments(rest, switches: [])
            let data = arguments.value("--data") ?? "/var/lib/shoal"
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let store = try ContentStore(root: data + "/images")
            switch arguments.positional.first {
            case "import":
                guard arguments.positional.count == 3 else { throw ClusterCommands.Failure(description: "usage: \(usage)") }
                // Every change is checked before the tarball is read: a bad one stores nothing.
                let changes = arguments.all("--change")
                let containerConfig = changes.isEmpty ? nil : try ImageChange.apply(changes)
                let name = try ImageCommands.localName(arguments.positional[2])
                let imported = try ImageImporter(store: store).importRootfs(
                    tarballAt: arguments.positional[1], tag: name, containerConfig: containerConfig)
                print("Imported \(name) (\(imported.manifest)) into \(data)/images")
                return 0
            case "ls", "list":
                ClusterCommands.printTable(["TAG", "DIGEST"], try store.tags().map { [$0.name, $0.digest.description] })
                return 0
            default:
                throw ClusterCommands.Failure(description: "usage: \(usage)")
            }
        } catch {
            FileHandle.standardError.write(Data("shoal image: \(error)\n".utf8))
            return 1
        }
    }
}
