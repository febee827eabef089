import Foundation
import Runtime

/// The single-host engine behind `shoal container` and `shoal volume`:
/// created when the daemon starts (so running containers are re-adopted and
/// watched again), or on first use.
extension Daemon {
    public func containerEngine() throws -> ContainerEngine {
        try withLock {
            if let engineInstance { return engineInstance }
            do {
                let engine = try ContainerEngine(dataDirectory: settings.dataDirectory, cgroupParent: settings.cgroupParent, bridge: settings.bridge,
                                             defaultPublishAddress: settings.defaultPublishAddress ?? PortMapping.everyInterface,
                                             warmDirectories: settings.warmContainerDirectories, warmRootMounts: settings.warmRootMounts)
                engineInstance = engine
                return engine
            } catch {
                throw APIError(status: 503, code: "engine_unavailable", message: "the container engine cannot start: \(error)",
                               hint: "the daemon must run as root on a host with cgroups and overlayfs; check its log")
            }
        }
    }

    func startEngine() {
        guard settings.runsAgent else { return }
        do {
            _ = try containerEngine()
        } catch {
            FileHandle.standardError.write(Data("shoal daemon: \(error); `shoal container` will not work\n".utf8))
        }
    }
}
