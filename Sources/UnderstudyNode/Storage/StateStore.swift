import Foundation

/// A state file exists but cannot be used. The daemon refuses to start on this rather than
/// guess: the message names the file and tells the operator what to do.
public struct CorruptStateError: Error, Sendable, Equatable, CustomStringConvertible {
    public var path: String
    public var detail: String

    public init(path: String, detail: String) {
        self.path = path
        self.detail = detail
    }

    public var description: String {
        "state file \(path) is corrupt (\(detail)); repair it, or move it away to start from a clean state"
    }
}

/// Small typed state documents, one JSON file each (`<directory>/<name>.json`), written
/// durably through `AtomicFile` and pretty-printed with sorted keys so operators can read
/// and diff them.
public struct StateStore: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public func path(for name: String) -> String {
        directory + "/" + name + ".json"
    }

    /// The stored value, or nil when there is none. Throws `CorruptStateError` when the file
    /// cannot be decoded and `StorageError` when it cannot be read.
    public func load<Value: Decodable>(_ type: Value.Type, name: String) throws -> Value? {
        let path = try checkedPath(for: name)
        guard let data = try AtomicFile.read(path) else { return nil }
        do {
            return try JSONDecoder().decode(Value.self, from: data)
        } catch let error as DecodingError {
            throw CorruptStateError(path: path, detail: Self.explain(error, data: data))
        } catch {
            throw CorruptStateError(path: path, detail: "\(error)")
        }
    }

    public func save<Value: Encodable>(_ value: Value, name: String) throws {
        let path = try checkedPath(for: name)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(value)
        data.append(UInt8(ascii: "\n"))
        try AtomicFile.write(data, to: path)
    }

    public func remove(name: String) throws {
        try AtomicFile.remove(checkedPath(for: name))
    }

    /// Names are plain file names: no folders, no hidden files, no temp-file look-alikes.
    private func checkedPath(for name: String) throws(StorageError) -> String {
        let valid = !name.isEmpty && !name.hasPrefix(".") && !name.contains("/") && !name.utf8.contains(0)
        guard valid else {
            throw StorageError(path: directory, message: "invalid state name \(name.debugDescription)")
        }
        return path(for: name)
    }

    private static func explain(_ error: DecodingError, data: Data) -> String {
        if data.isEmpty { return "the file is empty" }
        func at(_ codingPath: [any CodingKey]) -> String {
            codingPath.isEmpty ? "" : " at " + codingPath.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .dataCorrupted(let context):
            return "not valid JSON\(at(context.codingPath)): \(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "missing \(key.stringValue.debugDescription)\(at(context.codingPath))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "unexpected value\(at(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
