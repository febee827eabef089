import TestSupport
import Foundation
@testable import Images
import Testing

/// `shoal image import --change`: Docker's instruction grammar, applied to the config.
@Suite struct ImageChangeTests {
    @Test func commandsTakeTheJSONAndTheShellForm() throws {
        #expect(try ImageChange.parse(#"CMD ["/bin/sh", "-c", "echo hi"]"#) == .cmd(["/bin/sh", "-c", "echo hi"]))
        #expect(try ImageChange.parse("cmd echo $HOME && ls") == .cmd(["/bin/sh", "-c", "echo $HOME && ls"]))
        #expect(try ImageChange.parse(#"ENTRYPOINT ["/bin/httpd", "-f"]"#) == .entrypoint(["/bin/httpd", "-f"]))
        #expect(try ImageChange.parse("  Entrypoint   /bin/init  ") == .entrypoint(["/bin/sh", "-c", "/bin/init"]))
        #expect(try ImageChange.parse("CMD []") == .cmd([]))
    }

    @Test func environmentAndLabelsTakePairsQuotesAndTheOldForm() throws {
        #expect(try ImageChange.parse(#"ENV A=1 B="two words" C='$A' D=\$A"#)
                == .env([("A", "1"), ("B", "two words"), ("C", "$A"), ("D", "$A")]))
        #expect(try ImageChange.parse("ENV GREETING hello big world") == .env([("GREETING", "hello big world")]))
        #expect(try ImageChange.parse(#"LABEL "com.example.vendor"="ACME Inc" version=1.0"#)
                == .label([("com.example.vendor", "ACME Inc"), ("version", "1.0")]))
        #expect(try ImageChange.parse("LABEL maintainer someone@example.com") == .label([("maintainer", "someone@example.com")]))
    }

    @Test func healthchecksTakeOptionsAndBothCommandForms() throws {
        #expect(try ImageChange.parse("HEALTHCHECK --interval=1m30s --timeout=500ms --start-period=2s --retries=5 CMD wget -q localhost || exit 1")
                == .healthcheck(HealthConfig(test: ["CMD-SHELL", "wget -q localhost || exit 1"], intervalNanoseconds: 90_000_000_000,
                                             timeoutNanoseconds: 500_000_000, startPeriodNanoseconds: 2_000_000_000, retries: 5)))
        #expect(try ImageChange.parse(#"healthcheck CMD ["test", "-e", "/ready"]"#) == .healthcheck(HealthConfig(test: ["CMD", "test", "-e", "/ready"])))
        let none = try ImageChange.apply(["HEALTHCHECK CMD true", "HEALTHCHECK NONE"])
        #expect(none.healthcheck?.disablesChecks == true && none.healthcheck?.command == nil)
        #expect(HealthConfig(test: ["CMD-SHELL", "true"]).command == ["/bin/sh", "-c", "true"])
        #expect(ImageChange.goDuration("1.5s") == 1_500_000_000 && ImageChange.goDuration("1h") == 3_600_000_000_000)
        #expect(ImageChange.goDuration("5") == nil && ImageChange.goDuration("s") == nil && ImageChange.goDuration("") == nil)
    }

    @Test func variablesFromEarlierChangesExpand() throws {
        let config = try ImageChange.apply([
            "ENV BASE=/opt/app PATH=/usr/bin:/bin",
            "ENV PATH=${BASE}/bin:$PATH EMPTY=",
            "ENV A=${UNSET:-fallback} B=${BASE:+set} C=${EMPTY:-was-empty} D=${EMPTY-kept-empty}",
            "WORKDIR $BASE",
            "WORKDIR data/../logs",
            "USER ${UNSET:-1000}:1000",
            "EXPOSE 8080 53/udp 7000-7002",
            "LABEL home=\"$BASE\"",
            "STOPSIGNAL SIGQUIT",
            #"VOLUME ["/data", "/cache"]"#,
            "VOLUME /logs $BASE/tmp",
            #"CMD ["run"]"#,
        ])
        #expect(config.env == ["BASE=/opt/app", "PATH=/opt/app/bin:/usr/bin:/bin", "EMPTY=", "A=fallback", "B=set", "C=was-empty", "D="])
        #expect(config.workingDir == "/opt/app/logs")
        #expect(config.user == "1000:1000")
        #expect(config.exposedPorts.map { Set($0.keys) } == ["8080/tcp", "53/udp", "7000/tcp", "7001/tcp", "7002/tcp"])
        #expect(config.labels == ["home": "/opt/app"])
        #expect(config.stopSignal == "SIGQUIT")
        #expect(config.volumes.map { Set($0.keys) } == ["/data", "/cache", "/logs", "/opt/app/tmp"])
        #expect(config.cmd == ["run"])
        // A later ENV replaces the earlier value of the same name where it was.
        #expect(try ImageChange.apply(["ENV A=1 B=1", "ENV A=2"]).env == ["A=2", "B=1"])
    }

    @Test(arguments: [
        ("", "empty instruction"),
        ("RUN apt-get update", "RUN cannot be applied by import"),
        ("FROM busybox", "FROM cannot be applied by import"),
        ("ONBUILD RUN true", "ONBUILD cannot be applied by import"),
        ("HEALTHCHECK", "HEALTHCHECK needs an argument"),
        ("HEALTHCHECK CMD", "HEALTHCHECK CMD needs the command to run"),
        ("HEALTHCHECK --interval=soon CMD true", "must be a duration"),
        ("HEALTHCHECK --interval=10us CMD true", "at least 1ms"),
        ("HEALTHCHECK --retries=-1 CMD true", "--retries=-1 must be a whole number"),
        ("HEALTHCHECK --every=1s CMD true", "unknown HEALTHCHECK option --every"),
        ("HEALTHCHECK --interval 1s CMD true", "must be written --NAME=VALUE"),
        ("HEALTHCHECK NONE extra", "takes no options"),
        ("HEALTHCHECK CMD [\"\"]", "needs the command"),
        ("HEALTHCHECK RUN true", "takes NONE or [OPTIONS] CMD"),
        ("BOGUS x", "unknown instruction"),
        ("CMD", "CMD needs an argument"),
        (#"CMD ["/bin/sh", 1]"#, "not a JSON array of strings"),
        ("ENTRYPOINT [/bin/sh]", "not a JSON array of strings"),
        ("ENV A=1 B", "takes NAME=VALUE for each"),
        ("ENV ONLYNAME", "has no value"),
        (#"ENV A="unterminated"#, "unterminated \" quote"),
        ("ENV A=${", "must be followed by a variable name"),
        ("ENV A=${B", "missing \"}\""),
        ("ENV A=${B?x}", "unsupported expansion"),
        ("LABEL =x", "has an empty name"),
        ("LABEL a=1 =x", "has an empty name"),
        ("USER a b", "exactly one"),
        ("USER :group", "USER or USER:GROUP"),
        ("EXPOSE 0", "ports 1-65535"),
        ("EXPOSE 70000", "ports 1-65535"),
        ("EXPOSE 80/icmp", "tcp, udp or sctp"),
        ("EXPOSE 90-80", "START-END"),
        ("STOPSIGNAL SIGNOPE", "is not a signal"),
        ("STOPSIGNAL 65", "is not a signal"),
        ("VOLUME [\"\"]", "non-empty paths"),
        ("VOLUME [\"/a\"", "not a JSON array of strings"),
    ])
    func badInstructionsSayWhatIsWrong(instruction: String, reason: String) {
        #expect {
            try ImageChange.parse(instruction)
        } throws: { error in
            guard let error = error as? ImageChangeError else { return false }
            return error.instruction == instruction && error.description.contains(reason)
                && error.description.contains("CMD, ENTRYPOINT, ENV")
        }
    }

    @Test func signalsByNameAndNumber() {
        for good in ["SIGTERM", "term", "KILL", "9", "64", "SIGRTMIN+3", "SIGRTMAX-1"] { #expect(ImageChange.isSignal(good), "\(good)") }
        for bad in ["0", "-1", "SIGFOO", "SIGRTMIN+99", ""] { #expect(!ImageChange.isSignal(bad), "\(bad)") }
    }

    @Test func importStoresTheChangedConfig() throws {
        let directory = try TemporaryDirectory()
        var tar = TarBuilder()
        tar.file("./hello", "hi\n")
        tar.end()
        let tarball = directory.file("rootfs.tar")
        try Data(tar.bytes).write(to: URL(fileURLWithPath: tarball))
        let store = try ContentStore(root: directory.file("store"))
        let containerConfig = try ImageChange.apply([#"ENTRYPOINT ["/hello"]"#, "ENV X=1", "EXPOSE 80"])
        let image = try ImageImporter(store: store).importRootfs(tarballAt: tarball, tag: "changed:1", containerConfig: containerConfig)
        let config = try ImageDocument.decodeConfig(try store.read(image.config, maximumBytes: 1 << 20))
        #expect(config.config?.entrypoint == ["/hello"])
        #expect(config.config?.env == ["X=1"])
        #expect(config.config?.exposedPorts?.keys.sorted() == ["80/tcp"])
        // Docker's key names, so docker and skopeo read the same settings.
        let text = String(decoding: try store.read(image.config, maximumBytes: 1 << 20), as: UTF8.self)
        #expect(text.contains(#""Entrypoint":["/hello"]"#) && text.contains(#""ExposedPorts":{"80/tcp":{}}"#))
    }
}
