/// Names for containers created without `--name`, Docker-style
/// (`adjective_scientist`), so `ps` stays readable.
enum ContainerNames {
    static let adjectives = [
        "brave", "calm", "clever", "eager", "fervent", "gentle", "happy", "jolly", "keen", "lucid",
        "nimble", "quiet", "quirky", "serene", "sharp", "steady", "swift", "tender", "vivid", "witty",
    ]
    static let names = [
        "babbage", "curie", "dijkstra", "euler", "fermat", "gauss", "hopper", "kepler", "knuth", "lamport",
        "lovelace", "noether", "ongaro", "pascal", "ritchie", "shannon", "thompson", "turing", "wirth", "yonath",
    ]

    static func generate() -> String {
        "\(adjectives.randomElement()!)_\(names.randomElement()!)_\(Int.random(in: 1...999))"
    }
}
