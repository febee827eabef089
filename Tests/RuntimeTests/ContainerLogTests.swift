import Foundation
@testable import Runtime
import Testing

@Suite("Container logs (JSON lines, rotation)", .serialized, .enabled(if: TestImage.available, "needs root and busybox-static"),
       .timeLimit(.minutes(3)))
struct ContainerLogTests {
    @Test func outputIsStoredAsJSONLinesWithStreamAndTime() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("jsonlog", ["sh", "-c", #"echo 'out "quoted"'; echo err >&2; printf 'tab\there'"#])
        #expect(result.status == .exited(0))
        let entries = try fixture.runtime.logEntries("jsonlog")
        #expect(entries.map(\.log) == ["out \"quoted\"\n", "err\n", "tab\there"] || entries.map(\.log) == ["err\n", "out \"quoted\"\n", "tab\there"],
                "\(entries)")
        #expect(entries.first { $0.log == "err\n" }?.stream == "stderr")
        #expect(entries.allSatisfy { $0.time.hasSuffix("Z") && $0.time.count == 30 }, "\(entries.map(\.time))")
        // The file itself is one JSON object per line, readable without Shoal.
        let text = try String(contentsOfFile: fixture.runtime.container("jsonlog")!.logPath, encoding: .utf8)
        for line in text.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(object?.keys.sorted() == ["log", "stream", "time"])
        }
        #expect(try fixture.runtime.logs("jsonlog").standardError == "err\n")
    }

    @Test func rotationKeepsAtMostMaxFilesOfAboutMaxSize() throws {
        let fixture = try RuntimeFixture()
        defer { fixture.close() }
        let result = try fixture.run("rotating", ["sh", "-c", "i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done"]) { spec in
            spec.logging = LogOptions(maxSizeBytes: 2000, maxFiles: 3)
        }
        #expect(result.status == .exited(0))
        let directory = fixture.runtime.container("rotating")!.directory
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("container.log") }.sorted()
        #expect(files == ["container.log", "container.log.1", "container.log.2"], "\(files)")
        for file in files {
            let size = try FileManager.default.attributesOfItem(atPath: directory + "/" + file)[.size] as! Int
            #expect(size < 2000 + ContainerLogFile.maxLineBytes + 200, "\(file): \(size) bytes")
        }
        let kept = try fixture.runtime.logEntries("rotating").map(\.log)
        // The newest lines are kept, in order, without gaps.
        #expect(kept.last == "line-399\n")
        let numbers = kept.compactMap { Int($0.dropFirst("line-".count).dropLast()) }
        #expect(numbers == Array((400 - numbers.count)..<400), "\(numbers.prefix(5))")
        #expect(numbers.count < 400)
    }

    @Test func encodingEscapesControlCharactersAndCutsLongLines() {
        var output: [UInt8] = []
        ContainerLogFile.encode(Array("a\u{1}\"\\\n".utf8), stream: "stdout", time: "T", into: &output)
        #expect(String(decoding: output, as: UTF8.self) == #"{"log":"a\u0001\"\\\n","stream":"stdout","time":"T"}"# + "\n")
        let entries = ContainerLogFile.decode(output)
        #expect(entries == [LogEntry(log: "a\u{1}\"\\\n", stream: "stdout", time: "T")])
    }
}
