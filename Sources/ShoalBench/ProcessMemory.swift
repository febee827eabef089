import Foundation

/// Resident memory of a process, from /proc/PID/status.
enum ProcessMemory {
    /// This process's peak resident set (VmHWM), in MiB.
    static func peakResidentMebibytes() -> Int { field("VmHWM", pid: "self") / 1024 }

    /// A process's peak resident set (VmHWM), in MiB; 0 if it is gone.
    static func peakResidentMebibytes(pid: Int32) -> Int { field("VmHWM", pid: String(pid)) / 1024 }

    /// A process's current resident set (VmRSS), in MiB; 0 if it is gone.
    static func residentMebibytes(pid: Int32) -> Int { field("VmRSS", pid: String(pid)) / 1024 }

    /// A `Name:   N kB` line of /proc/PID/status, in KiB.
    private static func field(_ name: String, pid: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
        }
        return 0
    }
}
