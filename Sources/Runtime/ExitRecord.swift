import Foundation
import Posix
#if canImport(Glibc)
import Glibc
#endif

/// What shoal-monitor wrote to a container's `exit-status` file once the
/// init was gone: its status and when it ended. Read by the runtime when the
/// monitor exits, and by a restarted daemon for a container that exited
/// while no daemon ran.
struct ExitRecord: Equatable {
    var status: ExitStatus
    var finishedAt: Date

    static let fileName = "exit-status"
    static func path(directory: String) -> String { directory + "/" + fileName }

    /// What the file holds from a start until the monitor writes the record
    /// over it (a longer line, from offset 0): no record.
    static let placeholder = Array("running\n".utf8)

    /// Opens the file for the monitor of a run that starts now, holding
    /// ``placeholder`` instead of whatever an earlier run (or the earlier
    /// container of a reused directory) left. Written over rather than
    /// emptied: see ``Syscall/overwriteFile(_:_:mode:)``.
    static func openForRun(directory: String) throws(SystemError) -> Int32 {
        let path = path(directory: directory)
        try Syscall.overwriteFile(path, placeholder)
        return try Syscall.open(path, O_WRONLY)
    }

    /// nil when the file is missing, empty or the placeholder (the container
    /// still runs or its monitor died first) or not a record.
    static func read(directory: String) -> ExitRecord? {
        guard let text = try? Syscall.readFile(path(directory: directory)) else { return nil }
        return parse(text)
    }

    /// `exited CODE SECONDS.NANOSECONDS` or `signaled SIGNAL SECONDS.NANOSECONDS`.
    static func parse(_ text: String) -> ExitRecord? {
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 3, let value = Int32(fields[1]), let seconds = Double(fields[2]) else { return nil }
        let finishedAt = Date(timeIntervalSince1970: seconds)
        switch fields[0] {
        case "exited": return ExitRecord(status: .exited(value), finishedAt: finishedAt)
        case "signaled": return ExitRecord(status: .signaled(value), finishedAt: finishedAt)
        default: return nil
        }
    }
}
