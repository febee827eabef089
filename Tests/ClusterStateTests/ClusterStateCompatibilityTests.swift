import Testing
@testable import ClusterState

@Suite("ClusterState compatibility of added fields")
struct ClusterStateCompatibilityTests {
    @Test("a restart history given to createTasks lands on the task and survives a snapshot")
    func restartHistoryRoundTrip() throws {
        var applier = Applier()
        try applier.apply(.createService(id: web, spec: webSpec()))
        try applier.apply(.createTasks([.init(id: "t1", serviceID: web, slot: 1, restartHistoryMilliseconds: [100, 200])]))
        #expect(applier.state.task("t1")?.restartHistoryMilliseconds == [100, 200])
        let restored = try ClusterState(snapshot: applier.state.snapshot())
        #expect(restored == applier.state)
    }

    @Test("snapshots and commands written before restart history and platforms existed still decode, with empty values")
    func oldSnapshotsDecode() throws {
        var applier = Applier()
        var spec = webSpec()
        spec.task.placement.constraints = ["node.role==worker"]
        try applier.apply(.createService(id: web, spec: spec))
        try applier.apply(.createTasks([.init(id: "t1", serviceID: web, slot: 1)]))
        let current = String(decoding: applier.state.snapshot(), as: UTF8.self)
        let old = current.replacingOccurrences(",\"restartHistoryMilliseconds\":[]", with: "")
            .replacingOccurrences(",\"platforms\":[]", with: "")
        #expect(old != current && !old.contains("restartHistoryMilliseconds") && !old.contains("platforms"))
        let restored = try ClusterState(snapshot: Array(old.utf8))
        #expect(restored == applier.state)

        let oldProposal = #"{"command":{"createTasks":{"_0":[{"id":"t2","serviceID":"web","slot":2}]}},"formatVersion":1,"timeMilliseconds":5}"#
        let proposal = try ClusterProposal(encoded: Array(oldProposal.utf8))
        #expect(proposal.command == .createTasks([.init(id: "t2", serviceID: web, slot: 2)]))
    }
}

private extension String {
    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        var result = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}
