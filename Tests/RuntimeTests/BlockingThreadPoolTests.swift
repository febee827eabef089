import Foundation
import Posix
import Testing

@Suite("Blocking thread pool")
struct BlockingThreadPoolTests {
    /// Every job gets a thread even while the others block: 40 jobs that
    /// each wait until all 40 have started all finish.
    @Test func jobsThatWaitOnEachOtherAllFinish() {
        let pool = BlockingThreadPool(idleLimit: 4)
        let count = 40
        let started = DispatchSemaphore(value: 0)
        let release = DispatchSemaphore(value: 0)
        let finished = DispatchSemaphore(value: 0)
        for _ in 0..<count {
            pool.run {
                started.signal()
                release.wait()
                finished.signal()
            }
        }
        for _ in 0..<count { #expect(started.wait(timeout: .now() + 30) == .success, "a job never started") }
        #expect(pool.threadCount >= count)
        for _ in 0..<count { release.signal() }
        for _ in 0..<count { #expect(finished.wait(timeout: .now() + 30) == .success) }
    }

    /// Jobs one after another reuse the waiting threads instead of starting
    /// one each, and no more than `idleLimit` threads stay once all are done.
    @Test func threadsAreReusedAndTheIdleOnesBounded() {
        let pool = BlockingThreadPool(idleLimit: 2)
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<200 {
            pool.run { done.signal() }
            #expect(done.wait(timeout: .now() + 30) == .success)
        }
        #expect(pool.threadsStarted <= 20, "\(pool.threadsStarted) threads started for 200 jobs run one at a time")
        // A burst grows it; once done, the extra threads end.
        let release = DispatchSemaphore(value: 0)
        for _ in 0..<10 { pool.run { release.wait(); done.signal() } }
        for _ in 0..<10 { release.signal() }
        for _ in 0..<10 { #expect(done.wait(timeout: .now() + 30) == .success) }
        let deadline = Date().addingTimeInterval(10)
        while pool.threadCount > 2 && Date() < deadline { usleep(1_000) }
        #expect(pool.threadCount <= 2)
    }
}
