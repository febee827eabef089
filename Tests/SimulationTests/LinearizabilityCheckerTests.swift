import Testing

@testable import Simulation

@Suite struct LinearizabilityCheckerTests {
    typealias Op = ClientOperation

    static func put(_ client: UInt64, _ key: UInt64, _ value: UInt64, _ start: UInt64, _ end: UInt64?) -> Op {
        Op(client: client, kind: .put, key: key, value: value, invokeTime: start, returnTime: end)
    }
    static func get(_ client: UInt64, _ key: UInt64, _ value: UInt64, _ start: UInt64, _ end: UInt64) -> Op {
        Op(client: client, kind: .get, key: key, value: value, invokeTime: start, returnTime: end)
    }

    let checker = LinearizabilityChecker()

    @Test func acceptsConcurrentWritesReadInEitherOrder() {
        // Two overlapping writes; readers after both see one of them, then consistently.
        let history = [
            Self.put(1, 1, 10, 0, 10),
            Self.put(2, 1, 20, 5, 15),
            Self.get(3, 1, 10, 20, 25),
            Self.get(3, 1, 10, 30, 35),
        ]
        #expect(checker.check(history) == .linearizable)
    }

    @Test func rejectsAStaleRead() {
        // put 10 completes, then put 20 completes, then a read returns 10.
        let history = [
            Self.put(1, 1, 10, 0, 10),
            Self.put(1, 1, 20, 11, 20),
            Self.get(2, 1, 10, 21, 30),
        ]
        guard case .notLinearizable(let key, let operations) = checker.check(history) else {
            Issue.record("a stale read was accepted")
            return
        }
        #expect(key == 1)
        #expect(operations.count == 3)
    }

    @Test func rejectsReadsThatGoBackInTime() {
        // Concurrent with a write, one reader sees the new value and a later
        // reader the old one: no single order explains both.
        let history = [
            Self.put(1, 1, 10, 0, 5),
            Self.put(2, 1, 20, 10, 100),
            Self.get(3, 1, 20, 20, 30),
            Self.get(4, 1, 10, 40, 50),
        ]
        #expect(checker.check(history) != .linearizable)
    }

    @Test func rejectsAValueNobodyWrote() {
        #expect(checker.check([Self.get(1, 1, 99, 0, 5)]) != .linearizable)
        #expect(checker.check([Self.get(1, 1, 0, 0, 5)]) == .linearizable, "an absent key reads as 0")
    }

    @Test func aTimedOutWriteMayOrMayNotHaveTakenEffect() {
        // Client 1's write timed out (unknown outcome).
        let tookEffect = [
            Self.put(1, 1, 10, 0, nil),
            Self.get(2, 1, 10, 50, 60),
        ]
        #expect(checker.check(tookEffect) == .linearizable)
        let didNot = [
            Self.put(1, 1, 10, 0, nil),
            Self.get(2, 1, 0, 50, 60),
        ]
        #expect(checker.check(didNot) == .linearizable)
        // But it cannot take effect before it was sent.
        let beforeInvoke = [
            Self.get(2, 1, 10, 0, 5),
            Self.put(1, 1, 10, 10, nil),
        ]
        #expect(checker.check(beforeInvoke) != .linearizable)
        // Nor flip back and forth.
        let flipFlop = [
            Self.put(1, 1, 10, 0, nil),
            Self.get(2, 1, 10, 10, 20),
            Self.get(2, 1, 0, 30, 40),
        ]
        #expect(checker.check(flipFlop) != .linearizable)
    }

    @Test func keysAreCheckedIndependently() {
        let history = [
            Self.put(1, 1, 10, 0, 10),
            Self.put(1, 2, 20, 11, 20),
            Self.get(2, 2, 20, 21, 30),
            Self.get(2, 1, 10, 31, 40),
            Self.get(3, 2, 0, 41, 50),  // stale on key 2
        ]
        guard case .notLinearizable(let key, _) = checker.check(history) else {
            Issue.record("the stale read on key 2 was accepted")
            return
        }
        #expect(key == 2)
    }

    @Test func aLongConcurrentHistoryIsDecidedWithinBudget() {
        // Five clients, 400 overlapping writes and reads, all consistent with
        // the order of invocation.
        var history: [Op] = []
        var last: UInt64 = 0
        for step in 0..<400 {
            let client = UInt64(step % 5 + 1)
            let start = UInt64(step * 10)
            if step % 3 == 0 {
                history.append(Self.get(client, 1, last, start, start + 35))
            } else {
                last = UInt64(step + 1)
                history.append(Self.put(client, 1, last, start, start + 35))
            }
        }
        #expect(checker.check(history) == .linearizable)
        let invariants = RaftInvariants()
        #expect((try? invariants.linearizableHistory(history, time: 0)) == true)
    }
}
