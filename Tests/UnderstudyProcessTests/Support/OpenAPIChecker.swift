import Foundation
import UnderstudyWeb

/// Checks responses against the OpenAPI document the server publishes: finds the operation
/// by method and path template, the response by status (or `default`), and validates the
/// JSON body against its schema (type, properties, required, additionalProperties, enum,
/// items, anyOf, $ref — what the document uses).
struct OpenAPIChecker {
    let document: JSONValue

    /// Problems found; empty when the response conforms.
    func problems(method: String, path: String, status: Int, body: JSONValue) -> [String] {
        guard case .object(let paths)? = document["paths"] else { return ["the document has no paths"] }
        let segments = path.split(separator: "/").map(String.init)
        // Literal paths win over templates (/groups/start before /groups/{name}).
        let candidates = paths.filter { template, _ in
            let parts = template.split(separator: "/").map(String.init)
            return parts.count == segments.count && zip(parts, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
        }.sorted { a, b in a.0.filter { $0 == "{" }.count < b.0.filter { $0 == "{" }.count }
        guard let (template, item) = candidates.first else { return ["\(method) \(path): no path of the document matches"] }
        guard let operation = item[method.lowercased()] else { return ["\(method) \(template): not in the document"] }
        guard let responses = operation["responses"] else { return ["\(method) \(template): no responses"] }
        guard let response = responses["\(status)"] ?? responses["default"] else {
            return ["\(method) \(template): status \(status) is not documented"]
        }
        guard let schema = response["content"]?["application/json"]?["schema"] else {
            return ["\(method) \(template) \(status): no application/json schema"]
        }
        var found: [String] = []
        check(body, against: schema, at: "\(method) \(path) \(status): $", problems: &found)
        return found
    }

    func resolve(_ schema: JSONValue) -> JSONValue {
        guard let reference = schema["$ref"]?.stringValue, reference.hasPrefix("#/") else { return schema }
        var node: JSONValue? = document
        for part in reference.dropFirst(2).split(separator: "/") { node = node?[String(part)] }
        return node.map(resolve) ?? .null
    }

    func check(_ value: JSONValue, against rawSchema: JSONValue, at path: String, problems: inout [String]) {
        let schema = resolve(rawSchema)
        if case .array(let options)? = schema["anyOf"] {
            let passes = options.contains { option in
                var inner: [String] = []
                check(value, against: option, at: path, problems: &inner)
                return inner.isEmpty
            }
            if !passes { problems.append("\(path): matches none of anyOf") }
            return
        }
        if let type = schema["type"]?.stringValue {
            let matches: Bool
            switch (type, value) {
            case ("object", .object), ("array", .array), ("string", .string), ("boolean", .bool): matches = true
            case ("number", .number): matches = true
            case ("integer", .number(let number)): matches = number == number.rounded()
            default: matches = false
            }
            if !matches {
                problems.append("\(path): expected \(type), got \(value.serialized.prefix(80))")
                return
            }
        }
        if case .array(let allowed)? = schema["enum"], !allowed.contains(value) {
            problems.append("\(path): \(value.serialized) is not one of \(JSONValue.array(allowed).serialized)")
        }
        if case .object(let fields) = value {
            let properties = schema["properties"]
            if case .array(let required)? = schema["required"] {
                for case .string(let key) in required where !fields.contains(where: { $0.0 == key }) {
                    problems.append("\(path): missing required \(key)")
                }
            }
            for (key, item) in fields {
                if let property = properties?[key] {
                    check(item, against: property, at: "\(path).\(key)", problems: &problems)
                } else if schema["additionalProperties"] == .bool(false) {
                    problems.append("\(path): property \(key) is not in the document")
                }
            }
        }
        if case .array(let items) = value, let itemSchema = schema["items"] {
            for (index, item) in items.enumerated() {
                check(item, against: itemSchema, at: "\(path)[\(index)]", problems: &problems)
            }
        }
    }
}
