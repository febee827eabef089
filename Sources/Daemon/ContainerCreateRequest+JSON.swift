import Wire

extension ContainerCreateRequest {
    /// The request as JSON, the same bytes as ``Support/encode(_:)`` (JSONEncoder
    /// with sorted keys) gives, without JSONEncoder: the CLI's blocking
    /// `container run` sends it (see ``JSONObjectWriter`` for why). A field
    /// added to the type must be added here, in key order (a test checks a
    /// request with every field set against JSONEncoder). `cpus` must be finite.
    public var encodedJSON: [UInt8] {
        var object = JSONObjectWriter()
        object.field("autoRemove", autoRemove)
        object.field("command", command)
        object.field("consoleSize", consoleSize)
        object.field("cpus", cpus)
        object.field("entrypoint", entrypoint)
        object.field("environment", environment)
        object.field("healthCommand", healthCommand)
        object.field("healthInterval", healthInterval)
        object.field("healthRetries", healthRetries)
        object.field("healthStartPeriod", healthStartPeriod)
        object.field("healthTimeout", healthTimeout)
        object.field("hostname", hostname)
        object.field("image", image)
        object.field("interactive", interactive)
        object.field("links", links)
        object.field("logOptions", logOptions)
        object.field("memory", memory)
        object.field("name", name)
        object.field("network", network)
        object.field("noHealthcheck", noHealthcheck)
        object.field("pidsLimit", pidsLimit)
        object.field("publish", publish)
        object.field("publishAll", publishAll)
        object.field("restart", restart)
        object.field("stdinOnce", stdinOnce)
        object.field("stopSignal", stopSignal)
        object.field("stopTimeout", stopTimeout)
        object.field("tty", tty)
        object.field("user", user)
        object.field("volumes", volumes)
        object.field("volumesFrom", volumesFrom)
        object.field("workingDirectory", workingDirectory)
        return object.finished
    }
}
