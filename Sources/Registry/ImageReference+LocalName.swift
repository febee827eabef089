extension ImageReference {
    /// The tag a local image gets from a name a user gives it (`image
    /// tag`, `image import`, `container commit`): checked against the
    /// reference grammar, kept as typed, `:latest` added when it has no
    /// tag. A digest is refused: it names content, not a new name.
    public static func localName(_ text: String, defaultRegistry: String = shoalDefaultRegistry) throws(ImageReferenceError) -> String {
        let reference = try ImageReference(parsing: text, defaultRegistry: defaultRegistry)
        if reference.digest != nil {
            throw ImageReferenceError(text: text, reason: "it names a digest; give the image a NAME[:TAG] instead")
        }
        let lastComponent = text.split(separator: "/").last ?? ""
        return lastComponent.contains(":") ? text : text + ":latest"
    }
}
