@testable import Daemon
import Testing

/// The engine's memory of removed `--rm` containers' exits, which a `wait`
/// arriving after the removal answers from.
@Suite("Recent --rm exits: a bounded first-in-first-out memory")
struct RecentExitsTests {
    static func reply(_ code: Int) -> ContainerWaitReply {
        ContainerWaitReply(statusCode: Int32(code), oomKilled: false, error: nil)
    }

    @Test("past the capacity only the oldest container is forgotten: every one of the last `capacity` is still found, by id and by name")
    func forgetsTheOldestOnly() {
        var exits = RecentExits(capacity: ContainerEngine.recentExitsKept)
        let total = 3 * exits.capacity + 7
        var missing: [String] = []
        for index in 0..<total {
            exits.remember(Self.reply(index % 256), keys: ["id\(index)", "name\(index)"])
            // Right after each exit, however many came before: the late `wait` of this one and of the previous ones finds them.
            let oldestKept = max(0, index - exits.capacity + 1)
            for kept in [oldestKept, (oldestKept + index) / 2, index] {
                if exits["id\(kept)"]?.statusCode != Int32(kept % 256) || exits["name\(kept)"]?.statusCode != Int32(kept % 256) {
                    missing.append("container \(kept) after \(index + 1) exits")
                }
            }
            if oldestKept > 0 {
                #expect(exits["id\(oldestKept - 1)"] == nil && exits["name\(oldestKept - 1)"] == nil, "container \(oldestKept - 1) is the one forgotten")
            }
        }
        #expect(missing.isEmpty, "not found: \(missing.prefix(5)) and \(max(0, missing.count - 5)) more")
        #expect(exits.count == exits.capacity)
    }

    @Test("a name reused by a later container answers with the later exit, and forgetting the earlier container keeps it")
    func aReusedNameBelongsToTheLaterContainer() {
        var exits = RecentExits(capacity: 2)
        exits.remember(Self.reply(1), keys: ["first", "web"])
        exits.remember(Self.reply(2), keys: ["second", "web"])
        #expect(exits["web"]?.statusCode == 2)
        exits.remember(Self.reply(3), keys: ["third", "db"])  // forgets "first"
        #expect(exits["first"] == nil)
        #expect(exits["web"]?.statusCode == 2, "the name is the second container's now")
        #expect(exits["second"]?.statusCode == 2 && exits["third"]?.statusCode == 3 && exits["db"]?.statusCode == 3)
    }
}
