import Foundation
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// One HTTP GET with hard time limits, for the probing client of the failover benchmark:
/// the body (the answering server's name), or nil.
public enum HTTPProbe {
    public static func get(host: String, port: UInt16, timeoutMilliseconds: Int32) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected != 0 && errno != EINPROGRESS { return nil }
        guard wait(fd, events: Int16(POLLOUT), timeoutMilliseconds) else { return nil }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        guard error == 0 else { return nil }
        let request = Array("GET / HTTP/1.0\r\nHost: \(host)\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == request.count else { return nil }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while response.count < 65_536 {
            guard wait(fd, events: Int16(POLLIN), timeoutMilliseconds) else { return nil }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        let text = String(decoding: response, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.1 200") || text.hasPrefix("HTTP/1.0 200"), let split = text.range(of: "\r\n\r\n") else { return nil }
        return String(text[split.upperBound...]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func wait(_ fd: Int32, events: Int16, _ timeout: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        return poll(&entry, 1, timeout) == 1 && entry.revents & events != 0
    }

    /// Probes every `interval` until `expected` answers or `limit` passes; prints and returns
    /// the `CLOCK_BOOTTIME` (ns) of that first answer.
    public static func untilAnswer(
        host: String, port: UInt16, expected: String, interval: Duration, limit: Duration, requestTimeoutMilliseconds: Int32
    ) -> Int64? {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let started = ContinuousClock.now
            if get(host: host, port: port, timeoutMilliseconds: requestTimeoutMilliseconds) == expected {
                return LeaseFile.boottimeNow()
            }
            let next = started + interval
            let remaining = ContinuousClock.now.duration(to: next)
            if remaining > .zero { usleep(UInt32(remaining.components.attoseconds / 1_000_000_000_000)) }
        }
        return nil
    }
}

/// Unplanned failover in the lab: two servers and a client that probes the floating IP
/// every 10 ms; from the fault (kill -9 of the active daemon, or its link down) to the first
/// answer of the other server. As in the keepalived comparison, the service (an HTTP
/// responder that answers its server's name) runs on both servers all the time and only the
/// address moves: the time measured is the cluster's, not the service's start.
public struct FailoverBenchmark {
    public enum Fault: String, CaseIterable, Sendable {
        case kill
        case linkDown = "link-down"
    }

    public let lab: Lab
    public let binary: String
    var log: (String) -> Void

    public init(lab: Lab, binary: String, log: @escaping (String) -> Void = { _ in }) {
        self.lab = lab
        self.binary = binary
        self.log = log
    }

    var spec: LabSpec { lab.spec }
    public var floatingAddress: String { "10.200.\(spec.subnet).50" }

    /// Adds the measured group: a floating IP; with a shared disk (`spec.sharedDisk`) the
    /// floating IP depends on the `disk` resource, so the client's first answer from the other
    /// server comes after the mount.
    public static func writeGroup(spec: LabSpec, probeWait: String) throws {
        let floating = "10.200.\(spec.subnet).50"
        var disk = ""
        var depends = ""
        if spec.sharedDisk == true {
            disk = """
                      - name: shared
                        type: disk
                        device: \(spec.sharedDiskPath)
                        filesystem: ext4
                        mount-point: \(spec.sharedMountPoint)
                        fsck: never
                        depends: []

                """
            depends = "        depends: [shared]\n"
        }
        let group = """
            groups:
              - name: web
                resources:
            \(disk)      - name: fip1
                    type: fip
                    address: \(floating)/24
                    probe-wait: \(probeWait)
                    announce-interval: 20ms
            \(depends)
            """
        try spec.appendToConfig(group)
    }

    /// From the new holder's alert log: milliseconds from "Activating group" to each resource's
    /// "activated", in order (the share of the failover each resource took).
    public func resourceTimes(on server: String) -> [(resource: String, milliseconds: Double)] {
        guard let text = try? String(contentsOfFile: spec.stateDirectory(of: server) + "/alert.log", encoding: .utf8) else { return [] }
        let lines = text.split(separator: "\n")
        guard let start = lines.lastIndex(where: { $0.contains("Activating group web") }) else { return [] }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        func time(_ line: Substring) -> Date? { line.split(separator: " ").first.flatMap { formatter.date(from: String($0)) } }
        guard let begun = time(lines[start]) else { return [] }
        var times: [(String, Double)] = []
        var previous = begun
        for line in lines[start...] where line.contains("[rc 31]") {
            guard let at = time(line), let name = line.split(separator: " ").drop(while: { $0 != "Resource" }).dropFirst().first else {
                continue
            }
            times.append((String(name), at.timeIntervalSince(previous) * 1000))
            previous = at
        }
        return times
    }

    /// The server the client gets its answers from now.
    func answeringServer() -> String? {
        let outcome = try? lab.exec(
            in: LabSpec.client, [binary, "lab", "probe", "--host", floatingAddress, "--once"], timeout: .seconds(5))
        guard let outcome, outcome.succeeded else { return nil }
        let name = outcome.output.trimmingCharacters(in: .whitespacesAndNewlines)
        return name.isEmpty ? nil : name
    }

    /// `runs` failovers caused by `fault`; seconds from fault to first answer of the other server.
    public func run(_ fault: Fault, runs: Int) async throws -> [Double] {
        var results: [Double] = []
        for index in 0..<runs {
            var holder: String?
            _ = await labPoll(upTo: .seconds(30), every: .milliseconds(200)) {
                holder = answeringServer()
                return holder != nil
            }
            guard let holder else { throw LabError("nobody answers on \(floatingAddress)") }
            guard let other = spec.serverNames.first(where: { $0 != holder }) else { throw LabError("one server only") }
            // The prober runs in the client namespace, started before the fault.
            let prober = try startProber(expecting: other)
            try await Task.sleep(for: .milliseconds(300))
            let faultAt = LeaseFile.boottimeNow()
            switch fault {
            case .kill: try lab.kill9(holder)
            case .linkDown: try lab.setLink(holder, up: false)
            }
            prober.waitUntilExit()
            let output = (try? String(contentsOfFile: proberOutput, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            if let answeredAt = output.flatMap(Int64.init) {
                let seconds = Double(answeredAt - faultAt) / 1e9
                results.append(seconds)
                let shares = resourceTimes(on: other).map { "\($0.resource) \(String(format: "%.0f", $0.milliseconds)) ms" }
                log(
                    "run \(index + 1)/\(runs): \(fault.rawValue) of \(holder): \(other) answered after \(String(format: "%.3f", seconds)) s"
                        + (shares.isEmpty ? "" : " (group start: \(shares.joined(separator: ", ")))"))
            } else {
                log("run \(index + 1)/\(runs): \(fault.rawValue) of \(holder): \(other) did not answer within the limit")
            }
            try await restore(holder)
        }
        return results
    }

    var proberOutput: String { spec.folder + "/prober.out" }

    /// The service on every server: answers its server's name on port 8080, any address.
    public func startResponders() throws -> [Process] {
        try spec.serverNames.map { server in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: LabShell.which("ip") ?? "/usr/sbin/ip")
            process.arguments = [
                "netns", "exec", spec.namespace(of: server), binary, "demo-responder", "--address", "0.0.0.0", "--port", "8080", "--name",
                server,
            ]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            return process
        }
    }

    func startProber(expecting server: String) throws -> Process {
        try? FileManager.default.removeItem(atPath: proberOutput)
        _ = FileManager.default.createFile(atPath: proberOutput, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LabShell.which("ip") ?? "/usr/sbin/ip")
        process.arguments = [
            "netns", "exec", spec.clientNamespace, binary, "lab", "probe", "--host", floatingAddress, "--expect", server,
            "--limit", "60",
        ]
        process.standardOutput = FileHandle(forWritingAtPath: proberOutput)
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Puts the old holder back: link up, daemon restarted (and `clpcl -r` to lift the
    /// abnormal-stop suspension), then waits until both servers see each other.
    func restore(_ server: String) async throws {
        try lab.setLink(server, up: true)
        if !(lab.pid(of: server)?.isAlive ?? false) {
            try lab.startDaemon(server)
            try await lab.waitForSocket(server)
            _ = try? lab.exec(in: server, [binary, "clpcl", "-r", "--state-dir", spec.stateDirectory(of: server)], timeout: .seconds(30))
        }
        _ = await labPoll(upTo: .seconds(60), every: .milliseconds(200)) {
            for name in spec.serverNames {
                guard let status = await lab.status(on: name), status.service == "running", !status.isolated,
                    status.servers.allSatisfy({ $0.status == .online })
                else { return false }
            }
            return true
        }
        try await Task.sleep(for: .seconds(1))
    }

    public static func summary(_ values: [Double]) -> (min: Double, median: Double, max: Double)? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        let median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        return (sorted[0], median, sorted[sorted.count - 1])
    }
}
