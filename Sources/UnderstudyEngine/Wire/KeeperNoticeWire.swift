import UnderstudyModel

/// The payload of a keeper's notice (KeeperNotices.swift), inside the same authenticated
/// envelope as a heartbeat (`DatagramCodec`: sender, boot id, sequence, MAC):
///
/// ```
/// marker u8 = 0xDE | version u8 = 1 | server | boot | run
/// ```
/// The marker is never a heartbeat's first byte (its format version, 2), so one socket and one
/// envelope carry both. Numbers are LEB128 varints, the name a varint length and UTF-8.
public enum KeeperNoticeWire {
    public static let marker: UInt8 = 0xDE
    public static let version: UInt8 = 1

    public struct Notice: Sendable, Equatable {
        public var server: ServerName
        public var instance: ServerInstance

        public init(server: ServerName, instance: ServerInstance) {
            self.server = server
            self.instance = instance
        }
    }

    public static func encode(_ notice: Notice) -> [UInt8] {
        var writer = WireWriter(capacity: 32)
        writer.byte(marker)
        writer.byte(version)
        writer.string(notice.server)
        writer.varint(notice.instance.boot)
        writer.varint(notice.instance.run)
        return writer.bytes
    }

    /// Whether a payload is a notice (and not a heartbeat).
    public static func isNotice(_ payload: [UInt8]) -> Bool { payload.first == marker }

    /// Decodes a notice; throws on anything malformed (never traps). Bytes after the known
    /// fields are ignored.
    public static func decode(_ bytes: [UInt8]) throws -> Notice {
        var reader = WireReader(bytes)
        guard try reader.byte("marker") == marker else { throw WireReader.Malformed(what: "not a keeper notice") }
        let format = try reader.byte("version")
        guard format == version else { throw WireReader.Malformed(what: "keeper notice version \(format), this build speaks \(version)") }
        let server = try reader.string("server", limit: HeartbeatWire.maximumName)
        let boot = try reader.varint("boot id")
        let run = try reader.varint("run")
        return Notice(server: server, instance: ServerInstance(boot: boot, run: run))
    }
}
