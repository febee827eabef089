import Foundation
@testable import Runtime
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// How the runtime writes its state file.
@Suite("State files")
struct StateFileTests {
    @Test("the state's dates are written as the .iso8601 strategy writes them, so a restarted runtime reads them alike")
    func datesMatchFoundationsISO8601() throws {
        struct Stamp: Codable { var at: Date }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let dates = [0, 1, 59.999, 946_684_799.5, 951_782_400, 1_795_972_130.272837, 1_795_972_130.999_999, 4_102_444_799]
            .map(Date.init(timeIntervalSince1970:)) + [Date()]
        for date in dates {
            let foundation = String(decoding: try encoder.encode(Stamp(at: date)), as: UTF8.self)
            #expect(foundation == "{\"at\":\"\(ContainerState.iso8601(date))\"}", "\(date.timeIntervalSince1970)")
            let read = try decoder.decode(Stamp.self, from: Data("{\"at\":\"\(ContainerState.iso8601(date))\"}".utf8)).at
            #expect(read.timeIntervalSince1970 == date.timeIntervalSince1970.rounded(.down))
        }
    }
}
