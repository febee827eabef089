import Images
import Runtime

extension HealthCheck {
    /// Takes the timings an image's HEALTHCHECK sets (zero or absent keeps the
    /// current value): Docker applies them to the image's command and to one
    /// given at run or service create alike.
    public mutating func adoptTimings(of image: HealthConfig) {
        func milliseconds(_ nanoseconds: Int64?) -> Int? {
            guard let nanoseconds, nanoseconds > 0 else { return nil }
            return Int(max(1, nanoseconds / 1_000_000))
        }
        if let value = milliseconds(image.intervalNanoseconds) { intervalMilliseconds = value }
        if let value = milliseconds(image.timeoutNanoseconds) { timeoutMilliseconds = value }
        if let value = milliseconds(image.startPeriodNanoseconds) { startPeriodMilliseconds = value }
        if let retries = image.retries, retries > 0 { self.retries = retries }
    }
}
