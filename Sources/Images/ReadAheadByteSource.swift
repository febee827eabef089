import Foundation

/// Reads (and decompresses, and hashes) a source on a second thread while
/// the caller writes files: layer extraction then costs max(read + inflate +
/// SHA-256, file creation) instead of their sum. Bytes are handed over in
/// chunks through a small bounded queue (``depth`` × ``chunkBytes``), so
/// memory stays bounded however fast the producer is.
///
/// The producer owns `source` after init. The consumer must call ``close()``
/// when done (also after an error): it stops the producer and waits for it,
/// so no thread outlives the extraction.
final class ReadAheadByteSource: ByteSource, @unchecked Sendable {
    static let chunkBytes = 1 << 20
    static let depth = 4

    private let source: ByteSource
    private let hasher = SHA256Hasher()
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var ready: [(buffer: UnsafeMutableRawBufferPointer, count: Int)] = []
    private var free: [UnsafeMutableRawBufferPointer] = []
    private var ended = false
    private var failure: LayerExtractionError?
    private var cancelled = false
    private var producerRunning = true
    private var digest: Digest?
    /// CPU seconds the producer thread used (reading, inflating, hashing), set when it exits.
    private var producerCPU: Double = 0
    // Consumer only.
    private var current: (buffer: UnsafeMutableRawBufferPointer, count: Int, offset: Int)?
    private var all: [UnsafeMutableRawBufferPointer] = []

    init(source: ByteSource) {
        self.source = source
        for _ in 0..<Self.depth {
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunkBytes, alignment: 4096)
            free.append(buffer)
            all.append(buffer)
        }
        let thread = Thread { [self] in produce() }
        thread.name = "shoal-layer-read-ahead"
        thread.start()
    }

    deinit {
        precondition(!producerRunning, "ReadAheadByteSource dropped without close()")
        for buffer in all { buffer.deallocate() }
    }

    private func produce() {
        while true {
            condition.lock()
            while free.isEmpty && !cancelled { condition.wait() }
            if cancelled {
                producerCPU = Self.threadCPUSeconds()
                producerRunning = false
                condition.broadcast()
                condition.unlock()
                return
            }
            let buffer = free.removeLast()
            condition.unlock()

            var count = 0
            var error: LayerExtractionError?
            do {
                // Fill the chunk (sources may return short reads) so hand-overs stay few.
                while count < buffer.count {
                    let read = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[count...]))
                    if read == 0 { break }
                    count += read
                }
            } catch let caught {
                error = caught
            }
            if count > 0 { hasher.update(UnsafeRawBufferPointer(rebasing: buffer[..<count])) }

            condition.lock()
            if count > 0 { ready.append((buffer, count)) } else { free.append(buffer) }
            if let error {
                failure = error
            } else if count < buffer.count {
                ended = true
                digest = hasher.finish()
            }
            let done = ended || failure != nil
            if done {
                producerCPU = Self.threadCPUSeconds()
                producerRunning = false
            }
            condition.broadcast()
            condition.unlock()
            if done { return }
        }
    }

    func read(into target: UnsafeMutableRawBufferPointer) throws(LayerExtractionError) -> Int {
        if current == nil || current!.offset == current!.count {
            condition.lock()
            if let finished = current {
                free.append(finished.buffer)
                current = nil
                condition.broadcast()
            }
            while ready.isEmpty && !ended && failure == nil { condition.wait() }
            if !ready.isEmpty {
                let next = ready.removeFirst()
                current = (next.buffer, next.count, 0)
            }
            let error = failure
            condition.unlock()
            if current == nil {
                if let error { throw error }
                return 0
            }
        }
        let count = min(target.count, current!.count - current!.offset)
        target.baseAddress!.copyMemory(from: current!.buffer.baseAddress! + current!.offset, byteCount: count)
        current!.offset += count
        return count
    }

    /// The SHA-256 of the whole source; call after ``read(into:)`` returned 0.
    func finish() -> Digest {
        condition.lock()
        defer { condition.unlock() }
        guard let digest else { preconditionFailure("ReadAheadByteSource.finish before the end of the source") }
        return digest
    }

    /// CPU seconds the producer thread used; meaningful after ``close()``.
    var producerCPUSeconds: Double {
        condition.lock()
        defer { condition.unlock() }
        return producerCPU
    }

    static func threadCPUSeconds() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    /// Stops the producer and waits for it to exit.
    func close() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        while producerRunning { condition.wait() }
        condition.unlock()
    }
}
