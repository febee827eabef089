/// Capability bit masks (linux/capability.h numbers).
public enum Capabilities {
    public static let chown: UInt64 = 1 << 0
    public static let dacOverride: UInt64 = 1 << 1
    public static let fowner: UInt64 = 1 << 3
    public static let fsetid: UInt64 = 1 << 4
    public static let kill: UInt64 = 1 << 5
    public static let setgid: UInt64 = 1 << 6
    public static let setuid: UInt64 = 1 << 7
    public static let setpcap: UInt64 = 1 << 8
    public static let netBindService: UInt64 = 1 << 10
    public static let netRaw: UInt64 = 1 << 13
    public static let sysChroot: UInt64 = 1 << 18
    public static let sysModule: UInt64 = 1 << 16
    public static let sysAdmin: UInt64 = 1 << 21
    public static let mknod: UInt64 = 1 << 27
    public static let auditWrite: UInt64 = 1 << 29
    public static let setfcap: UInt64 = 1 << 31

    /// Docker's default 14: `CapBnd: 00000000a80425fb` inside `docker run`.
    public static let dockerDefault: UInt64 =
        chown | dacOverride | fowner | fsetid | kill | setgid | setuid | setpcap
        | netBindService | netRaw | sysChroot | mknod | auditWrite | setfcap
}
