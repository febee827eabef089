@testable import Daemon
import Foundation
@testable import Runtime
import Testing

/// The blocking `container run`'s hand-written JSON against Foundation's:
/// the request it sends must be the bytes `JSONEncoder` (sorted keys) gives,
/// and every stream line must read as `JSONDecoder` reads it.
@Suite("container run's request and stream JSON match JSONEncoder and JSONDecoder")
struct ContainerRunJSONTests {
    /// Every ASCII byte, the JSON escapes, multi-byte UTF-8, U+2028, DEL, an emoji.
    static let awkward = (0..<0x80).map { String(UnicodeScalar(UInt8($0))) }.joined() + "é\u{2028}\u{2029}\u{7F}\u{85}😀\u{FEFF}/\\\"\\u0041"

    /// A request with every field set: a field added to the type and not
    /// to ``ContainerCreateRequest/encodedJSON`` fails the check below.
    static var everyField: ContainerCreateRequest {
        var request = ContainerCreateRequest(image: "registry.local:5000/team/busybox:1.36@sha256:" + String(repeating: "a", count: 64))
        request.name = "web-1"
        request.command = ["sh", "-c", awkward, ""]
        request.entrypoint = "/bin/sh"
        request.environment = ["A=1", "PATH=/usr/bin:/bin", "Q=\"quoted\" \\ tab\t"]
        request.hostname = "host"
        request.user = "1000:1000"
        request.workingDirectory = "/srv/app"
        request.volumes = ["data:/data", "/host:/in:ro"]
        request.volumesFrom = ["other:ro"]
        request.memory = "64m"
        request.cpus = 1.5
        request.pidsLimit = -1
        request.restart = "on-failure:3"
        request.stopSignal = "SIGUSR1"
        request.stopTimeout = 0
        request.autoRemove = false
        request.network = "none"
        request.publish = ["127.0.0.1:8080:80/tcp"]
        request.publishAll = true
        request.links = ["db:database"]
        request.logOptions = ["max-size": "10m", "max-file": "3", "Z": "upper", "a_b": "x", "a-b": "y", "é": "z", "10": "n", "9": "m"]
        request.healthCommand = "wget -q -O- http://localhost/ || exit 1"
        request.healthInterval = "30s"
        request.healthTimeout = "500ms"
        request.healthStartPeriod = "1m"
        request.healthRetries = Int.max
        request.noHealthcheck = true
        request.interactive = true
        request.stdinOnce = false
        request.tty = true
        request.consoleSize = [24, 80]
        return request
    }

    /// The names of `value`'s stored properties that hold nil.
    static func unsetFields(of value: Any) -> [String] {
        Mirror(reflecting: value).children.compactMap { child in
            if case Optional<Any>.none = child.value { return child.label ?? "?" } else { return nil }
        }
    }

    @Test("every field set: the same bytes as JSONEncoder with sorted keys, and no field left out")
    func everyFieldEncodesAsFoundationDoes() throws {
        let request = Self.everyField
        let unset = Self.unsetFields(of: request)
        #expect(unset.isEmpty, "set every field here: \(unset)")
        #expect(String(decoding: request.encodedJSON, as: UTF8.self) == String(decoding: Support.encode(request), as: UTF8.self))
        #expect(try JSONDecoder().decode(ContainerCreateRequest.self, from: Data(request.encodedJSON)) == request)
    }

    @Test("the requests the CLI sends most: the same bytes as JSONEncoder")
    func commonRequestsEncodeAsFoundationDoes() {
        var benchmark = ContainerCreateRequest(image: "busybox")
        benchmark.autoRemove = true
        benchmark.command = ["true"]
        #expect(String(decoding: benchmark.encodedJSON, as: UTF8.self) == #"{"autoRemove":true,"command":["true"],"image":"busybox"}"#)
        var empty = ContainerCreateRequest(image: "")
        empty.command = []
        empty.environment = []
        empty.logOptions = [:]
        empty.consoleSize = []
        for request in [benchmark, empty, ContainerCreateRequest(image: Self.awkward)] {
            #expect(request.encodedJSON == Support.encode(request), "\(request)")
        }
    }

    @Test("numbers as JSONEncoder writes them", arguments: [0.0, -0.0, 0.5, 1.5, 2.0, 0.1, 0.3, 1e-7, 3e-5, 1e16, 1e21, 1e300,
                                                             123456789012345678.0, 5e-324, Double.greatestFiniteMagnitude, -2.25])
    func cpusEncodesAsFoundationDoes(_ cpus: Double) {
        var request = ContainerCreateRequest(image: "busybox")
        request.cpus = cpus
        request.pidsLimit = Int.min
        #expect(String(decoding: request.encodedJSON, as: UTF8.self) == String(decoding: Support.encode(request), as: UTF8.self))
    }

    /// The line as the CLI read it with JSONDecoder before.
    struct DecodedLine: Decodable {
        var log: String?
        var stream: String?
        var time: String?
        var exit: ContainerWaitReply?
        var startError: String?
        var startErrorCode: String?

        var asStreamLine: ContainerRunStreamLine {
            ContainerRunStreamLine(log: log, stream: stream, time: time,
                                   exit: exit.map { .init(statusCode: $0.statusCode, oomKilled: $0.oomKilled, error: $0.error) },
                                   startError: startError, startErrorCode: startErrorCode)
        }
    }

    static func logLine(_ text: String, stream: String = "stdout") -> String {
        var output: [UInt8] = []
        ContainerLogFile.encode(Array(text.utf8), stream: stream, time: ContainerLogFile.timestamp(), into: &output)
        return String(decoding: output.dropLast(), as: UTF8.self)  // without its newline, as the CLI gets it
    }

    static let lines: [String] = [
        // What the daemon sends.
        logLine("hello\n"), logLine(awkward, stream: "stderr"), logLine(""), logLine("\u{1}\u{1F}\r\t\u{8}\u{C}"),
        #"{"exit":{"oomKilled":false,"statusCode":0}}"#,
        #"{"exit":{"error":"","oomKilled":true,"statusCode":137}}"#,
        #"{"exit":{"error":"could not remove: \/x \"y\"","oomKilled":false,"statusCode":-1}}"#,
        #"{"startError":"executable file not found in $PATH: nosuch","startErrorCode":"executable_not_found"}"#,
        #"{"startError":"no such user: bob"}"#,
        // Escapes: \u forms, surrogate pairs, every short escape.
        #"{"log":"\u0041\u00e9\u2028\ud83d\ude00\/\\\"\b\f\n\r\t","stream":"stdout","time":"t"}"#,
        #"{"log":"\uD83D\uDE00 upper-case hex","stream":"stdout"}"#,
        // Whitespace, nulls, unknown fields (nested too), field order, repeated keys.
        " \t\r\n{ \"log\" : \"x\" , \"stream\" : \"stdout\" , \"time\" : null } \n",
        #"{"log":null,"stream":null,"exit":null,"startError":null}"#,
        #"{"future":{"a":[1,2.5e-3,-0,true,false,null,{"b":"c"}],"d":{}},"log":"x","stream":"stdout","extra":[]}"#,
        #"{"statusCode":3,"exit":{"statusCode":4,"oomKilled":false,"extra":{"x":1}}}"#,
        #"{}"#, #"{"log":"x",}"#, #"{"log":"x" , }"#, #"{"a":[1,],"b":{"c":1,},"log":"y"}"#,
        #"{,}"#, #"{"log":"x",,}"#, #"{"a":[,],"log":"x"}"#, #"{"a":[1,,2],"log":"x"}"#, #"{"a":[],,"log":"x"}"#,
        // Wrong types and missing fields: JSONDecoder refuses the whole line.
        #"{"log":5,"stream":"stdout"}"#, #"{"log":"x","stream":true}"#, #"{"exit":{"oomKilled":false}}"#,
        #"{"exit":{"statusCode":0}}"#, #"{"exit":{"statusCode":"0","oomKilled":false}}"#, #"{"exit":{"statusCode":0,"oomKilled":0}}"#,
        #"{"exit":{"statusCode":2147483648,"oomKilled":false}}"#, #"{"exit":{"statusCode":-2147483648,"oomKilled":false}}"#,
        #"{"exit":[],"log":"x"}"#, #"{"exit":{"statusCode":0,"oomKilled":false,"error":7}}"#, #"{"startErrorCode":[]}"#,
        // Not one JSON object.
        "", " ", "[]", "\"text\"", "null", "12", #"{"log":"x"} {"#, #"{"log":"x"}x"#, #"{"log":"x",}"#, #"{"log":"x""stream":"y"}"#,
        #"{"log":"unterminated}"#, "{\"log\":\"raw\ttab\"}", "{\"log\":\"raw\nnewline\"}", #"{"log":"bad \x escape"}"#,
        #"{"log":"\u12"}"#, #"{"log":"\ud83d alone"}"#, #"{"log":"\ude00 alone"}"#, #"{"log":"\ud83d\u0041"}"#,
        #"{"exit":{"statusCode":01,"oomKilled":false}}"#, #"{"exit":{"statusCode":-,"oomKilled":false}}"#,
        #"{"exit":{"statusCode":1.,"oomKilled":false}}"#, #"{"exit":{"statusCode":.5,"oomKilled":false}}"#,
        #"{"exit":{"statusCode":1e,"oomKilled":false}}"#, #"{"exit":{"statusCode":+1,"oomKilled":false}}"#,
        #"{"log":tru,"stream":"stdout"}"#, #"{"log":"x","stream":"stdout""#, "{", #"{"a":"#, #"{'log':'x'}"#,
        String(repeating: "[", count: 600) + String(repeating: "]", count: 600),
    ]

    @Test("stream lines read as JSONDecoder reads them", arguments: lines)
    func streamLineReadsAsFoundationDoes(_ line: String) {
        let expected = (try? JSONDecoder().decode(DecodedLine.self, from: Data(line.utf8)))?.asStreamLine
        #expect(ContainerRunStreamLine(line: line) == expected, "\(line.debugDescription)")
    }

    @Test("numbers JSONDecoder reads as a whole Int32 but the daemon never writes read the same way, or are refused",
          arguments: ["1.0", "1e2", "-0", "0e0", "2.5"])
    func unusualStatusCodes(_ number: String) {
        let line = #"{"exit":{"statusCode":"# + number + #","oomKilled":false}}"#
        let expected = (try? JSONDecoder().decode(DecodedLine.self, from: Data(line.utf8)))?.asStreamLine
        let read = ContainerRunStreamLine(line: line)
        // The CLI refuses what it cannot read exactly; it never reads a different code.
        #expect(read == nil || read == expected, "\(number): \(String(describing: read)) vs \(String(describing: expected))")
    }
}
