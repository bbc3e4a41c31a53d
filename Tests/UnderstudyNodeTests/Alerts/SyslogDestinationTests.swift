import Foundation
import Testing
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// A real rsyslogd of the test's own: imuxsock on a socket in a temp folder, imudp and imtcp
/// on loopback ports, everything written to a file with the fields the test checks.
struct Rsyslog {
    let folder: String
    let socket: String
    let udpPort: Int
    let tcpPort: Int
    let process: Process
    var output: String { folder + "/out.log" }

    static let prerequisite = Prerequisite.executable("/usr/sbin/rsyslogd", package: "rsyslog")

    static func start(in folder: String) async throws -> Rsyslog {
        let socket = folder + "/log.sock"
        let udpPort = try FreePort.take()
        let tcpPort = try FreePort.take()
        let config = """
            global(workDirectory="\(folder)")
            module(load="imuxsock" SysSock.Use="off")
            input(type="imuxsock" Socket="\(socket)" CreatePath="on" UseSpecialParser="off" ParseHostname="on")
            module(load="imudp")
            input(type="imudp" address="127.0.0.1" port="\(udpPort)")
            module(load="imtcp")
            input(type="imtcp" address="127.0.0.1" port="\(tcpPort)")
            template(name="fields" type="string" string="%hostname%|%app-name%|%syslogseverity%|%syslogfacility-text%|%msgid%|%structured-data%|%msg%\\n")
            *.* action(type="omfile" file="\(folder)/out.log" template="fields")

            """
        try config.write(toFile: folder + "/rsyslog.conf", atomically: true, encoding: .utf8)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/sbin/rsyslogd")
        process.arguments = ["-n", "-f", folder + "/rsyslog.conf", "-i", folder + "/rsyslogd.pid"]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let server = Rsyslog(folder: folder, socket: socket, udpPort: udpPort, tcpPort: tcpPort, process: process)
        let ready = await eventually(within: .seconds(10)) {
            FileManager.default.fileExists(atPath: socket)
                && TCPOneShot.send([], host: "127.0.0.1", port: tcpPort, deadline: .now + .milliseconds(200)) == nil
        }
        guard ready else {
            server.stop()
            throw TestSupportError("rsyslogd did not open \(socket) and port \(tcpPort) within 10 s")
        }
        return server
    }

    /// SIGKILL: rsyslogd started by a test process ignores SIGTERM (the signal mask it
    /// inherits), and its output has been read by then.
    func stop() {
        process.stopBounded()
    }

    func lines() -> [String] {
        ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }
}

@Suite("Syslog destination")
struct SyslogDestinationTests {
    static func alert(_ level: LogLevel, _ message: String) -> AlertEvent {
        AlertEvent(cluster: "c1", server: "node1", time: Date(), level: level, module: "rm", eventID: 9, message: message)
    }

    @Test("RFC 5424: priority, header, structured data, CLUSTERPRO's message text")
    func format() {
        let line = SyslogFormat.rfc5424(
            AlertEvent(
                cluster: "c\"1]", server: "node1", time: Date(timeIntervalSince1970: 0), level: .warning, module: "nm", eventID: 2,
                message: "Server node2 is down.\nsecond line"), tag: "understudy", facility: 3, processID: 42)
        #expect(
            line
                == "<28>1 1970-01-01T00:00:00.000Z node1 understudy 42 nm-2 [understudy@32473 module=\"nm\" id=\"2\" server=\"node1\" cluster=\"c\\\"1\\]\"] WARN: <type: nm><event: 2> Server node2 is down. second line"
        )
        #expect(SyslogFormat.severity(.info) == 6 && SyslogFormat.severity(.error) == 3)
        #expect(SyslogFormat.octetCounted("abc") == Array("3 abc".utf8))
    }

    @Test("journald's native fields; a multi-line message is sent as one line")
    func journalFields() {
        let bytes = SyslogFormat.journalFields(Self.alert(.error, "a\nb"), tag: "understudy", facility: 3)
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.contains("PRIORITY=3\n") && text.contains("SYSLOG_IDENTIFIER=understudy\n"))
        #expect(
            text.contains("UNDERSTUDY_MODULE=rm\n") && text.contains("UNDERSTUDY_EVENT_ID=9\n")
                && text.contains("UNDERSTUDY_SERVER=node1\n"))
        let message = Array("ERROR: <type: rm><event: 9> a b".utf8)
        #expect(text.contains("MESSAGE=" + String(decoding: message, as: UTF8.self) + "\n"))
    }

    @Test("journald gets native fields when its socket exists")
    func journalSocket() async throws {
        try await withTemporaryFolder { folder in
            let path = folder + "/journal.sock"
            let receiver = try UnixDatagramReceiver(path: path)
            defer { receiver.close() }
            let destination = SyslogDestination(
                name: "s", settings: SyslogDestinationSettings(socket: folder + "/absent.sock", journalSocket: path))
            try await destination.deliver(Self.alert(.warning, "to the journal"))
            let received = try #require(receiver.receive())
            let text = String(decoding: received, as: UTF8.self)
            #expect(text.contains("MESSAGE=WARN: <type: rm><event: 9> to the journal\n"))
            #expect(text.contains("PRIORITY=4\n"))
        }
    }

    @Test("a missing local socket fails the attempt, naming it")
    func missingSocket() async throws {
        let destination = SyslogDestination(
            name: "s", settings: SyslogDestinationSettings(socket: "/nonexistent/dev-log", journalSocket: "/nonexistent/journal"))
        await #expect(throws: AlertDeliveryError.self) { try await destination.deliver(Self.alert(.info, "x")) }
        do {
            try await destination.deliver(Self.alert(.info, "x"))
        } catch {
            #expect("\(error)".contains("/nonexistent/dev-log"))
        }
    }

    @Test("a real rsyslogd takes alerts on its local socket, over UDP and over TCP", .requires(Rsyslog.prerequisite))
    func rsyslog() async throws {
        try await withTemporaryFolder { folder in
            let server = try await Rsyslog.start(in: folder)
            defer { server.stop() }
            let local = SyslogDestination(
                name: "local",
                settings: SyslogDestinationSettings(tag: "clusterpro", facility: "local3", socket: server.socket, journalSocket: nil))
            let udp = SyslogDestination(
                name: "udp",
                settings: SyslogDestinationSettings(
                    socket: nil, journalSocket: nil, remote: .init(address: "127.0.0.1", port: server.udpPort, transport: .udp)))
            let tcp = SyslogDestination(
                name: "tcp",
                settings: SyslogDestinationSettings(
                    socket: nil, journalSocket: nil, remote: .init(address: "127.0.0.1", port: server.tcpPort, transport: .tcp)))
            try await local.deliver(Self.alert(.error, "Monitor web-http detected an error (local)."))
            try await udp.deliver(Self.alert(.warning, "over udp"))
            try await tcp.deliver(Self.alert(.info, "over tcp"))
            try await tcp.deliver(Self.alert(.info, "over tcp, again"))
            #expect(await eventually(within: .seconds(10)) { server.lines().count >= 4 })
            let lines = server.lines()
            let sd = "[understudy@32473 module=\"rm\" id=\"9\" server=\"node1\" cluster=\"c1\"]"
            #expect(
                lines.contains(
                    "node1|clusterpro|3|local3|rm-9|\(sd)|ERROR: <type: rm><event: 9> Monitor web-http detected an error (local)."))
            #expect(lines.contains("node1|understudy|4|daemon|rm-9|\(sd)|WARN: <type: rm><event: 9> over udp"))
            #expect(lines.contains("node1|understudy|6|daemon|rm-9|\(sd)|INFO: <type: rm><event: 9> over tcp"))
            #expect(lines.contains("node1|understudy|6|daemon|rm-9|\(sd)|INFO: <type: rm><event: 9> over tcp, again"))
        }
    }
}

/// A bound UNIX datagram socket standing in for journald's.
final class UnixDatagramReceiver {
    let fd: Int32

    init(path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0 else { throw TestSupportError("cannot bind \(path)") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    func receive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65536)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? Array(buffer[..<count]) : nil
    }

    func close() { Glibc.close(fd) }
}
