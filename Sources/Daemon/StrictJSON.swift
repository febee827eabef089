import Foundation

/// Decodes request bodies strictly: malformed JSON, a wrong type, a missing
/// field and an unknown field are each refused with the field's path named
/// (`spec.task.image`), before anything is proposed.
///
/// Swift's `JSONDecoder` ignores unknown keys, so after decoding, the value is
/// encoded again and every key of the input must reappear in it (a key the
/// type does not know never does). `defaults` (a JSON object) supplies
/// fields the client may leave out; the client's fields replace them.
enum StrictJSON {
    // Not inlined: inlined into an async route handler, this typed-throws
    // function makes the Swift 6.3 optimizer crash (CoroSplit's swifterror
    // handling, or correlated-propagation on the handler).
    @inline(never)
    static func decode<T: Codable>(_ type: T.Type, from bytes: [UInt8], defaults: T? = nil) throws(APIError) -> T {
        guard !bytes.isEmpty else { throw .invalid("body", "a JSON object is required") }
        let input: Any
        do {
            input = try JSONSerialization.jsonObject(with: Data(bytes), options: [])
        } catch {
            throw .invalid("body", "malformed JSON: \(describe(error))")
        }
        guard input is [String: Any] else { throw .invalid("body", "a JSON object is required") }
        var merged = input
        if let defaults {
            let base = (try? JSONSerialization.jsonObject(with: Data(Support.encode(defaults)))) ?? [:]
            merged = merge(base, input)
        }
        let value: T
        do {
            // Without defaults the input is what gets decoded: no need to
            // serialize the parsed tree again.
            let data = defaults == nil ? Data(bytes) : try JSONSerialization.data(withJSONObject: merged)
            value = try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw describe(error)
        } catch {
            throw .invalid("body", "\(error)")
        }
        let shape = CheckedShape(type: ObjectIdentifier(T.self), keys: keyShape(of: input))
        if checkedShapes.contains(shape) { return value }
        let echoed = (try? JSONSerialization.jsonObject(with: Data(Support.encode(value)))) ?? [:]
        if let unknown = firstUnknownKey(input, echoed, path: "") {
            throw APIError(status: 400, code: "invalid_argument", message: "unknown field '\(unknown)'",
                           hint: "remove it; see the API's OpenAPI document for the fields; nothing was written")
        }
        checkedShapes.insert(shape)
        return value
    }

    /// An input's keys and where they are, per type: whether it names an
    /// unknown field depends on nothing else (a value decides no key's
    /// knownness; a null one is not checked, so nulls have their own mark).
    struct CheckedShape: Hashable {
        var type: ObjectIdentifier
        var keys: String
    }

    /// The shapes of inputs found to name no unknown field: an input of
    /// one of them skips the check's encode and parse (~40 us of every
    /// `container run`, whose CLI sends the same shape each time). At most
    /// ``checkedShapesKept`` are kept (then no more are added).
    static let checkedShapes = CheckedShapes()
    static let checkedShapesKept = 256

    final class CheckedShapes: @unchecked Sendable {
        private let lock = NSLock()
        private var shapes: Set<CheckedShape> = []

        func contains(_ shape: CheckedShape) -> Bool { lock.withLock { shapes.contains(shape) } }

        func insert(_ shape: CheckedShape) {
            lock.withLock { if shapes.count < StrictJSON.checkedShapesKept { shapes.insert(shape) } }
        }
    }

    /// The keys of a parsed JSON value and what each holds (object, array,
    /// null or another value), without the values: `{3#abc:v,1#x:[v,n]}`
    /// (keys length-prefixed, so no key can pass for structure).
    static func keyShape(of value: Any) -> String {
        var text = ""
        func append(_ value: Any) {
            if let object = value as? [String: Any] {
                text += "{"
                for key in object.keys.sorted() {
                    text += "\(key.utf8.count)#" + key + ":"
                    append(object[key]!)
                }
                text += "}"
            } else if let array = value as? [Any] {
                text += "["
                for element in array { append(element); text += "," }
                text += "]"
            } else {
                text += value is NSNull ? "n" : "v"
            }
        }
        append(value)
        return text
    }

    /// Client fields replace defaults; objects merge, except a one-key object
    /// replacing another one-key object with a different key (an enum case).
    static func merge(_ base: Any, _ override: Any) -> Any {
        guard let baseObject = base as? [String: Any], let overrideObject = override as? [String: Any] else { return override }
        if baseObject.count == 1, overrideObject.count == 1, baseObject.keys.first != overrideObject.keys.first { return override }
        var result = baseObject
        for (key, value) in overrideObject {
            if let existing = baseObject[key], !(value is NSNull) {
                result[key] = merge(existing, value)
            } else {
                result[key] = value
            }
        }
        return result
    }

    static func firstUnknownKey(_ input: Any, _ echoed: Any, path: String) -> String? {
        if let object = input as? [String: Any] {
            let known = echoed as? [String: Any] ?? [:]
            for key in object.keys.sorted() {
                let child = path.isEmpty ? key : "\(path).\(key)"
                guard let value = object[key], !(value is NSNull) else { continue }
                guard let echo = known[key] else { return child }
                if let found = firstUnknownKey(value, echo, path: child) { return found }
            }
        } else if let array = input as? [Any], let echoArray = echoed as? [Any] {
            for (index, element) in array.enumerated() where index < echoArray.count {
                if let found = firstUnknownKey(element, echoArray[index], path: "\(path)[\(index)]") { return found }
            }
        }
        return nil
    }

    static func path(_ codingPath: [any CodingKey]) -> String {
        var text = ""
        for key in codingPath {
            if let index = key.intValue {
                text += "[\(index)]"
            } else {
                text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
            }
        }
        return text.isEmpty ? "body" : text
    }

    static func describe(_ error: DecodingError) -> APIError {
        switch error {
        case .typeMismatch(let type, let context):
            return .invalid("field '\(path(context.codingPath))'", "expected \(typeName(type))")
        case .valueNotFound(let type, let context):
            return .invalid("field '\(path(context.codingPath))'", "expected \(typeName(type)), got null")
        case .keyNotFound(let key, let context):
            return .invalid("field '\(path(context.codingPath + [key]))'", "it is required")
        case .dataCorrupted(let context):
            return .invalid("field '\(path(context.codingPath))'", context.debugDescription)
        @unknown default:
            return .invalid("body", "\(error)")
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Bool.Type: return "a boolean"
        case is Int.Type, is Int64.Type, is UInt64.Type, is Int32.Type, is UInt8.Type: return "an integer"
        case is Double.Type: return "a number"
        default:
            let name = "\(type)"
            if name.hasPrefix("Array") { return "an array" }
            if name.hasPrefix("Dictionary") { return "an object" }
            return "an object"
        }
    }

    static func describe(_ error: any Error) -> String {
        let text = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String
        return text ?? "\(error)"
    }
}
