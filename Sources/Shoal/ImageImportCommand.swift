import Foundation
import Images

/// `shoal image import ROOTFS.tar NAME:TAG [--data DIR]`: stores a root file
/// system tarball as a one-layer image in the node's content store
/// (DIR/images, DIR as the daemon's `--data`), where the agent finds it by
/// tag. `shoal image ls` lists the tags.
enum ImageImportCommand {
    static let usage = "shoal image import ROOTFS.tar NAME:TAG [--data DIR] | shoal image ls [--data DIR]"

    static func run(_ rest: [String]) -> Int32 {
        do {
            let arguments = try ClusterCommands.Arguments(rest, switches: [])
            let data = arguments.value("--data") ?? "/var/lib/shoal"
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let store = try ContentStore(root: data + "/images")
            switch arguments.positional.first {
            case "import":
                guard arguments.positional.count == 3 else { throw ClusterCommands.Failure(description: "usage: \(usage)") }
                let imported = try ImageImporter(store: store).importRootfs(tarballAt: arguments.positional[1], tag: arguments.positional[2])
                print("Imported \(arguments.positional[2]) (\(imported.manifest)) into \(data)/images")
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
