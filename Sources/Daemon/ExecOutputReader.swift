import CContainer
import Foundation
import Posix
import Runtime
#if canImport(Glibc)
import Glibc
#endif

/// Reads a streaming exec's output (its pty master, or its stdout and
/// stderr pipes) on a thread of its own until the process has exited and
/// what it left is read; a pipe or terminal that a background process keeps
/// open does not hold the stream past the exit.
enum ExecOutputReader {
    static let readChunkBytes = 64 * 1024

    static func stream(_ process: ExecProcess) -> AsyncStream<ContainerOutput> {
        AsyncStream { continuation in
            let thread = Thread {
                read(process) { continuation.yield($0) }
                continuation.finish()
            }
            thread.name = "shoal-exec-output-\(process.pid)"
            thread.start()
        }
    }

    private static func read(_ process: ExecProcess, _ emit: (ContainerOutput) -> Void) {
        var open: [(descriptor: Int32, name: String)] = process.terminal >= 0
            ? [(process.terminal, "stdout")]
            : [(process.standardOutput, "stdout"), (process.standardError, "stderr")].filter { $0.descriptor >= 0 }
        for stream in open { _ = fcntl(stream.descriptor, F_SETFL, fcntl(stream.descriptor, F_GETFL) | O_NONBLOCK) }
        let pidfd = shoal_pidfd_open(process.pid)
        defer { if pidfd >= 0 { Syscall.close(pidfd) } }
        var buffer = [UInt8](repeating: 0, count: readChunkBytes)
        /// Reads what is there; false once the stream ended (EOF, or EIO from a terminal whose slaves are all closed).
        func drain(_ stream: (descriptor: Int32, name: String)) -> Bool {
            while true {
                let count = buffer.withUnsafeMutableBytes { Glibc.read(stream.descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    emit(ContainerOutput(stream: stream.name, bytes: Array(buffer[0..<count])))
                    continue
                }
                if count < 0 && errno == EINTR { continue }
                return count < 0 && errno == EAGAIN
            }
        }
        let exited = pidfd < 0
        while !open.isEmpty {
            var descriptors = open.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
            if !exited { descriptors.append(pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)) }
            if poll(&descriptors, nfds_t(descriptors.count), -1) < 0 {
                if errno == EINTR { continue }
                return
            }
            if !exited && descriptors[open.count].revents != 0 {
                // Gone: what it wrote is buffered; read that and stop.
                for stream in open { _ = drain(stream) }
                return
            }
            open = zip(open, descriptors).filter { stream, polled in polled.revents == 0 || drain(stream) }.map(\.0)
        }
    }
}
