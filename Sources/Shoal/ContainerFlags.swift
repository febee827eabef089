import Foundation

/// Docker-style flags of one `shoal container|volume` subcommand: long
/// (`--name x`, `--name=x`) and short (`-e X`), short switches combined
/// (`-dit`); for commands that run something (`run IMAGE CMD...`,
/// `exec CONTAINER CMD...`) parsing stops after the first positionals, so
/// the command's own flags reach it untouched.
struct ContainerFlags {
    /// A flag: its canonical name (the long one) and whether it takes a value.
    struct Definition {
        var names: [String]
        var takesValue: Bool

        static func flag(_ names: String...) -> Definition { Definition(names: names, takesValue: false) }
        static func option(_ names: String...) -> Definition { Definition(names: names, takesValue: true) }
    }

    var values: [String: [String]] = [:]
    var switches: Set<String> = []
    /// Switches turned off by name (`--pause=false`), for those on by default.
    var disabled: Set<String> = []
    var positional: [String] = []
    /// What follows the leading positionals of a run-like command.
    var trailing: [String] = []

    /// `leadingPositionals`: how many positionals end flag parsing (1 for
    /// `run IMAGE`, 1 for `exec CONTAINER`); nil parses everything.
    init(_ arguments: [String], definitions: [Definition], leadingPositionals: Int? = nil) throws {
        var byName: [String: Definition] = [:]
        for definition in definitions + ContainerFlags.global {
            for name in definition.names { byName[name] = definition }
        }
        func canonical(_ definition: Definition) -> String { definition.names[0] }
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "--" {
                positional += arguments[index...]
                break
            }
            if argument.hasPrefix("--") {
                var name = argument
                var value: String?
                if let equals = argument.firstIndex(of: "=") {
                    name = String(argument[..<equals])
                    value = String(argument[argument.index(after: equals)...])
                }
                guard let definition = byName[name] else { throw ClusterCommands.Failure(description: "unknown flag: \(name)") }
                if definition.takesValue {
                    if value == nil {
                        guard index < arguments.count else { throw ClusterCommands.Failure(description: "flag needs an argument: \(name)") }
                        value = arguments[index]
                        index += 1
                    }
                    values[canonical(definition), default: []].append(value!)
                } else {
                    if let value, value != "true" {
                        if value == "false" {
                            switches.remove(canonical(definition))
                            disabled.insert(canonical(definition))
                            continue
                        }
                        throw ClusterCommands.Failure(description: "\(name) takes no value (got '\(value)')")
                    }
                    switches.insert(canonical(definition))
                }
            } else if argument.hasPrefix("-") && argument.count > 1 {
                // -e X, -eX, -dit, -dp 80:80
                let letters = Array(argument.dropFirst())
                var position = 0
                while position < letters.count {
                    let name = "-" + String(letters[position])
                    guard let definition = byName[name] else { throw ClusterCommands.Failure(description: "unknown shorthand flag: '\(letters[position])' in \(argument)") }
                    position += 1
                    if definition.takesValue {
                        var value = String(letters[position...])
                        if value.hasPrefix("=") { value.removeFirst() }
                        if value.isEmpty {
                            guard index < arguments.count else { throw ClusterCommands.Failure(description: "flag needs an argument: \(name)") }
                            value = arguments[index]
                            index += 1
                        }
                        values[canonical(definition), default: []].append(value)
                        break
                    }
                    switches.insert(canonical(definition))
                }
            } else {
                positional.append(argument)
                if let leadingPositionals, positional.count == leadingPositionals {
                    trailing = Array(arguments[index...])
                    break
                }
            }
        }
    }

    func value(_ name: String) -> String? { values[name]?.last }
    func all(_ name: String) -> [String] { values[name] ?? [] }
    func has(_ name: String) -> Bool { switches.contains(name) }
    /// A switch that is on unless given `=false` (`--sig-proxy`).
    func isOn(byDefault name: String) -> Bool { !disabled.contains(name) }

    /// Accepted by every subcommand.
    static let global: [Definition] = [.option("--host", "-H"), .option("--tls-dir"), .flag("--help")]
}
