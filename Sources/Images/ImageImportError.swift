/// Why `shoal image import` refused a rootfs tarball.
public enum ImageImportError: Error, CustomStringConvertible, Sendable {
    /// The file is not a tar archive Shoal can extract (or holds an entry it would refuse).
    case invalidTarball(path: String, LayerExtractionError)
    /// The content store failed.
    case store(ContentStoreError)

    public var description: String {
        switch self {
        case let .invalidTarball(path, error):
            return "cannot import \(path): \(error). Give a tar (or tar.gz) of a root file system, e.g. from `tar -C rootfs -cf rootfs.tar .`"
        case let .store(error):
            return "import failed: \(error)"
        }
    }
}
