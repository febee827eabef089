/// The word rules of Dockerfile instruction arguments (moby/buildkit's
/// `shell` lexer, the subset `--change` needs): unquoted whitespace splits
/// words; `'...'` is literal; inside `"..."` a backslash escapes only `"`,
/// `\` and `$`; outside quotes a backslash escapes any character; `$NAME`,
/// `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}` and
/// `${NAME+word}` expand from the environment built so far (never inside
/// single quotes). Expanded values are not split again into words.
enum DockerfileWords {
    /// Why a word could not be read.
    struct Problem: Error {
        let reason: String
    }

    /// Splits `text` at unquoted whitespace, keeping quotes and escapes in
    /// each word for ``expand(_:environment:)``.
    static func split(_ text: String) throws(Problem) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for character in text {
            if escaped {
                current.append(character)
                escaped = false
                continue
            }
            if character == "\\" && quote != "'" {
                current.append(character)
                escaped = true
                inWord = true
                continue
            }
            if let open = quote {
                current.append(character)
                if character == open { quote = nil }
                continue
            }
            if character == "'" || character == "\"" {
                quote = character
                current.append(character)
                inWord = true
            } else if character.isWhitespace {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(character)
                inWord = true
            }
        }
        if let quote { throw Problem(reason: "unterminated \(quote) quote") }
        if escaped { current.append("\\") }
        if inWord { words.append(current) }
        return words
    }

    /// Removes quotes and escapes and expands variables in one word (or a
    /// whole argument taken as one word, whose spaces are kept).
    static func expand(_ word: String, environment: [String]) throws(Problem) -> String {
        var output = ""
        var characters = Array(word)[...]
        var quote: Character?
        while let character = characters.popFirst() {
            switch (quote, character) {
            case ("'", "'"), ("\"", "\""):
                quote = nil
            case ("'", _):
                output.append(character)
            case (nil, "'"), (nil, "\""):
                quote = character
            case (nil, "\\"):
                if let next = characters.popFirst() { output.append(next) } else { output.append("\\") }
            case ("\"", "\\"):
                if let next = characters.first, next == "\"" || next == "\\" || next == "$" {
                    output.append(next)
                    characters.removeFirst()
                } else {
                    output.append("\\")
                }
            case (_, "$"):
                output += try variable(&characters, environment: environment)
            default:
                output.append(character)
            }
        }
        if let quote { throw Problem(reason: "unterminated \(quote) quote") }
        return output
    }

    /// Expands the variable after a `$` (consumed), reading its name and any `${...}` modifier.
    private static func variable(_ characters: inout ArraySlice<Character>, environment: [String]) throws(Problem) -> String {
        func isNameCharacter(_ character: Character) -> Bool {
            character.isASCII && (character.isLetter || character.isNumber || character == "_")
        }
        guard let first = characters.first else { return "$" }
        if first != "{" {
            var name = ""
            while let next = characters.first, isNameCharacter(next) {
                name.append(next)
                characters.removeFirst()
            }
            return name.isEmpty ? "$" : value(of: name, environment: environment) ?? ""
        }
        characters.removeFirst()
        var name = ""
        while let next = characters.first, isNameCharacter(next) {
            name.append(next)
            characters.removeFirst()
        }
        guard !name.isEmpty else { throw Problem(reason: "\"${\" must be followed by a variable name") }
        var modifier = ""
        if characters.first == ":" {
            modifier = ":"
            characters.removeFirst()
        }
        var word = ""
        if let operation = characters.first, operation == "-" || operation == "+" {
            modifier.append(operation)
            characters.removeFirst()
            var depth = 0
            while let next = characters.first, next != "}" || depth > 0 {
                if next == "{" { depth += 1 }
                if next == "}" { depth -= 1 }
                word.append(next)
                characters.removeFirst()
            }
        } else if !modifier.isEmpty || (characters.first.map { $0 != "}" } ?? false) {
            throw Problem(reason: "unsupported expansion in ${\(name)...}: write ${NAME}, ${NAME:-default} or ${NAME:+alternative}")
        }
        guard characters.popFirst() == "}" else { throw Problem(reason: "missing \"}\" after ${\(name)") }
        let current = value(of: name, environment: environment)
        let alternative = try expand(word, environment: environment)
        switch modifier {
        case ":-": return (current?.isEmpty ?? true) ? alternative : current!
        case "-": return current ?? alternative
        case ":+": return (current?.isEmpty ?? true) ? "" : alternative
        case "+": return current == nil ? "" : alternative
        default: return current ?? ""
        }
    }

    /// The last value of `NAME=...` in `environment`, or nil if unset.
    private static func value(of name: String, environment: [String]) -> String? {
        for entry in environment.reversed() {
            if entry.hasPrefix(name + "=") { return String(entry.dropFirst(name.count + 1)) }
        }
        return nil
    }
}
