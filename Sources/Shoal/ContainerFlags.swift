import Foundation

/// Docker-style flags of one `shoal container|volume` subcommand: long
/// (`--name x`, `--name=x`) and short (`-e X`), short switches combined
/// (`-dit`); for commands that run something (`run IMAGE CMD...`,
/// `exec CONTAINER CMD...`) parsing stops after the first positionals, so
/// the command's own flags reach it untouched.
struct ContainerFlags {
    /// A flag: its canonical name (the long one) and whether it takes a value.
    /// Up to three names, not an array: `run` builds its table of some 35
    /// of these before its request goes out.
    struct Definition {
        /// The canonical name.
        var long: String
        var short: String?
        var alias: String?
        var takesValue: Bool

        static func flag(_ long: String, _ short: String? = nil, _ alias: String? = nil) -> Definition {
            Definition(long: long, short: short, alias: alias, takesValue: false)
        }

        static func option(_ long: String, _ short: String? = nil, _ alias: String? = nil) -> Definition {
            Definition(long: long, short: short, alias: alias, takesValue: true)
        }

        func isNamed(_ name: String) -> Bool { long == name || short == name || alias == name }
    }

    // Arrays, not a Dictionary or Set: a String-keyed one costs `container
    // run` a scan of every protocol conformance in the binary at first use
    // (String: Hashable), and these hold a handful of names.
    /// Each given option's values, in the order first given.
    private var values: [Given] = []
    private var switches: [String] = []
    /// Switches turned off by name (`--pause=false`), for those on by default.
    private(set) var disabled: [String] = []
    var positional: [String] = []
    /// What follows the leading positionals of a run-like command.
    var trailing: [String] = []

    /// `leadingPositionals`: how many positionals end flag parsing (1 for
    /// `run IMAGE`, 1 for `exec CONTAINER`); nil parses everything.
    init(_ arguments: [String], definitions: [Definition], leadingPositionals: Int? = nil) throws {
        let known = definitions + ContainerFlags.global
        // The last definition of a name wins, as the dictionary this was did.
        func lookup(_ name: String) -> Definition? { known.last { $0.isNamed(name) } }
        func canonical(_ definition: Definition) -> String { definition.long }
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
                guard let definition = lookup(name) else { throw ClusterCommands.Failure(description: "unknown flag: \(name)") }
                if definition.takesValue {
                    if value == nil {
                        guard index < arguments.count else { throw ClusterCommands.Failure(description: "flag needs an argument: \(name)") }
                        value = arguments[index]
                        index += 1
                    }
                    append(value!, to: canonical(definition))
                } else {
                    if let value, value != "true" {
                        if value == "false" {
                            switches.removeAll { $0 == canonical(definition) }
                            if !disabled.contains(canonical(definition)) { disabled.append(canonical(definition)) }
                            continue
                        }
                        throw ClusterCommands.Failure(description: "\(name) takes no value (got '\(value)')")
                    }
                    turnOn(canonical(definition))
                }
            } else if argument.hasPrefix("-") && argument.count > 1 {
                // -e X, -eX, -dit, -dp 80:80
                let letters = Array(argument.dropFirst())
                var position = 0
                while position < letters.count {
                    let name = "-" + String(letters[position])
                    guard let definition = lookup(name) else { throw ClusterCommands.Failure(description: "unknown shorthand flag: '\(letters[position])' in \(argument)") }
                    position += 1
                    if definition.takesValue {
                        var value = String(letters[position...])
                        if value.hasPrefix("=") { value.removeFirst() }
                        if value.isEmpty {
                            guard index < arguments.count else { throw ClusterCommands.Failure(description: "flag needs an argument: \(name)") }
                            value = arguments[index]
                            index += 1
                        }
                        append(value, to: canonical(definition))
                        break
                    }
                    turnOn(canonical(definition))
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

    /// A struct, not a tuple: a tuple's type metadata is made at run time.
    private struct Given {
        var name: String
        var values: [String]
    }

    private mutating func append(_ value: String, to name: String) {
        if let index = values.firstIndex(where: { $0.name == name }) {
            values[index].values.append(value)
        } else {
            values.append(Given(name: name, values: [value]))
        }
    }

    private mutating func turnOn(_ name: String) {
        if !switches.contains(name) { switches.append(name) }
    }

    func value(_ name: String) -> String? { given(name)?.last }
    func all(_ name: String) -> [String] { given(name) ?? [] }
    /// The values of option `name`; nil when it was not given.
    func given(_ name: String) -> [String]? { values.first { $0.name == name }?.values }
    func has(_ name: String) -> Bool { switches.contains(name) }
    /// A switch that is on unless given `=false` (`--sig-proxy`).
    func isOn(byDefault name: String) -> Bool { !disabled.contains(name) }

    /// Accepted by every subcommand.
    static let global: [Definition] = [.option("--host", "-H"), .option("--tls-dir"), .flag("--help")]
}
