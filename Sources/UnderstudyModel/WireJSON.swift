import Foundation

/// The JSON of everything that travels between servers and between the CLI and a daemon
/// (heartbeat payloads, control frames, local requests): sorted keys, so the same value
/// always gives the same bytes. In the Model so that the Engine can measure a heartbeat as
/// it will travel and the simulator can check every one it sends.
public enum WireJSON {
    public static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding our own plain value types cannot fail; an empty payload is rejected by
        // the receiver as a protocol error should it ever happen.
        return (try? Array(encoder.encode(value))) ?? []
    }

    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try JSONDecoder().decode(type, from: Data(bytes))
    }
}
