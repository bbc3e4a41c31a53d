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
        return body(response)
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
        untilAnswer(
            host: host, port: port, accepting: { $0 == expected }, interval: interval, limit: limit,
            requestTimeoutMilliseconds: requestTimeoutMilliseconds)?.at
    }

    /// Starts a request every `interval`, whether or not the ones before have answered, until an
    /// answer `accepting` takes arrives, or `limit` passes: the `CLOCK_BOOTTIME` (ns) of that
    /// first answer and the answer (the server's name). Each request has its own
    /// `requestTimeoutMilliseconds` for connecting and for the answer; up to timeout ÷ interval
    /// + 1 are open at once. (A prober that waits for each request before the next would send
    /// only one per timeout while the address answers nowhere, and so round every failover up
    /// to its timeout's steps.)
    public static func untilAnswer(
        host: String, port: UInt16, accepting: (String) -> Bool, interval: Duration, limit: Duration, requestTimeoutMilliseconds: Int32
    ) -> (at: Int64, answer: String)? {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else { return nil }
        let request = Array("GET / HTTP/1.0\r\nHost: \(host)\r\n\r\n".utf8)
        let requestTimeout = Duration.milliseconds(Int64(requestTimeoutMilliseconds))
        let deadline = ContinuousClock.now + limit
        var open: [ProbeRequest] = []
        defer { for attempt in open { close(attempt.fd) } }
        var nextStart = ContinuousClock.now
        while ContinuousClock.now < deadline {
            let now = ContinuousClock.now
            if now >= nextStart {
                if let attempt = ProbeRequest.start(to: address, at: now) { open.append(attempt) }
                nextStart = max(nextStart + interval, now)
            }
            // Requests past their time are given up.
            open.removeAll { attempt in
                guard now - attempt.phaseStarted >= requestTimeout else { return false }
                close(attempt.fd)
                return true
            }
            let untilNext = max(.zero, ContinuousClock.now.duration(to: nextStart))
            let waitMilliseconds = Int32(
                clamping: (untilNext.components.attoseconds / 1_000_000_000_000_000) + untilNext.components.seconds * 1000)
            var entries = open.map { pollfd(fd: $0.fd, events: Int16($0.connected ? POLLIN : POLLOUT), revents: 0) }
            let ready = entries.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), max(0, waitMilliseconds)) }
            guard ready > 0 else { continue }
            var finished: Set<Int32> = []
            for (index, entry) in entries.enumerated() where entry.revents != 0 {
                var attempt = open[index]
                if !attempt.connected {
                    var error: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    getsockopt(attempt.fd, SOL_SOCKET, SO_ERROR, &error, &length)
                    let written = request.withUnsafeBytes { send(attempt.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    guard error == 0, entry.revents & Int16(POLLOUT) != 0, written == request.count else {
                        finished.insert(attempt.fd)
                        continue
                    }
                    attempt.connected = true
                    attempt.phaseStarted = ContinuousClock.now
                    open[index] = attempt
                    continue
                }
                var buffer = [UInt8](repeating: 0, count: 4096)
                let count = buffer.withUnsafeMutableBytes { recv(attempt.fd, $0.baseAddress, $0.count, 0) }
                if count > 0, attempt.response.count < 65_536 {
                    open[index].response += buffer[0..<count]
                    continue
                }
                finished.insert(attempt.fd)
                let at = LeaseFile.boottimeNow()
                guard count == 0, let answer = body(attempt.response), accepting(answer) else { continue }
                return (at, answer)
            }
            open.removeAll { attempt in
                guard finished.contains(attempt.fd) else { return false }
                close(attempt.fd)
                return true
            }
        }
        return nil
    }

    /// The body of a complete `200` answer, trimmed.
    static func body(_ response: [UInt8]) -> String? {
        let text = String(decoding: response, as: UTF8.self)
        guard text.hasPrefix("HTTP/1.1 200") || text.hasPrefix("HTTP/1.0 200"), let split = text.range(of: "\r\n\r\n") else { return nil }
        return String(text[split.upperBound...]).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

/// One request of the prober: a non-blocking socket connecting, then waiting for its answer.
struct ProbeRequest {
    var fd: Int32
    var connected = false
    /// When the current phase (connecting, then waiting for the answer) began.
    var phaseStarted: ContinuousClock.Instant
    var response: [UInt8] = []

    static func start(to address: sockaddr_in, at now: ContinuousClock.Instant) -> ProbeRequest? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        var target = address
        let connected = withUnsafePointer(to: &target) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 || errno == EINPROGRESS else {
            close(fd)
            return nil
        }
        return ProbeRequest(fd: fd, phaseStarted: now)
    }
}

/// Unplanned failover in the lab: servers and a client that probes the floating IP every
/// 10 ms; from the fault (kill -9 of the active daemon, or its link down) to the first answer
/// of another server. As in the keepalived comparison (`KeepalivedBenchmark`, which runs this
/// very loop), the service (an HTTP responder that answers its server's name) runs on every
/// server all the time and only the address moves: the time measured is the cluster's, not
/// the service's start.
public struct FailoverBenchmark {
    public enum Fault: String, CaseIterable, Codable, Sendable {
        case kill
        case linkDown = "link-down"
    }

    /// One failover: who held the address, who answered next and after how long (nil: nobody
    /// within the limit).
    public struct Run: Codable, Sendable, Equatable {
        public var index: Int
        public var holder: String
        public var answeredBy: String?
        public var seconds: Double?
        /// Per resource of the new holder's group start, milliseconds (Understudy only).
        public var resourceMilliseconds: [String: Double]?
    }

    /// The runs of one fault, with the machine's steal and load meanwhile.
    public struct Series: Codable, Sendable {
        public var fault: Fault
        public var runs: [Run]
        public var stealPercent: Double
        public var loadBefore: [Double]
        public var loadAfter: [Double]
        public var startedAt: String
        public var seconds: [Double] { runs.compactMap(\.seconds) }
    }

    public let lab: Lab
    public let binary: String
    /// The pause after the cluster is whole again before the next fault.
    public var settle: Duration = .seconds(1)
    var log: (String) -> Void

    public init(lab: Lab, binary: String, log: @escaping (String) -> Void = { _ in }) {
        self.lab = lab
        self.binary = binary
        self.log = log
    }

    var spec: LabSpec { lab.spec }
    public var floatingAddress: String { Self.floatingAddress(spec: spec, group: 1) }

    /// The address of group `group` (1-based): 10.200.X.(49 + group).
    public static func floatingAddress(spec: LabSpec, group: Int) -> String { "10.200.\(spec.subnet).\(49 + group)" }

    /// The most groups `writeGroups` places (their addresses stay below the client's .100).
    public static let maxGroups = 40

    /// Adds the measured group: a floating IP; with a shared disk (`spec.sharedDisk`) the
    /// floating IP depends on the `disk` resource, so the client's first answer from the other
    /// server comes after the mount.
    public static func writeGroup(spec: LabSpec, probeWait: String) throws {
        try spec.appendToConfig(groupsYAML(spec: spec, count: 1, probeWait: probeWait))
    }

    /// `count` groups of one floating IP each (`web`, or `web1` … `webN` for more than one),
    /// at 10.200.X.50, .51, …
    public static func writeGroups(spec: LabSpec, count: Int, probeWait: String) throws {
        try spec.appendToConfig(groupsYAML(spec: spec, count: count, probeWait: probeWait))
    }

    /// The `groups:` section of `writeGroups`.
    public static func groupsYAML(spec: LabSpec, count: Int, probeWait: String) throws -> String {
        guard (1...maxGroups).contains(count) else { throw LabError("1 to \(maxGroups) groups, not \(count)") }
        var disk = ""
        var depends = ""
        if spec.sharedDisk == true {
            guard count == 1 else { throw LabError("a shared disk goes with one group only") }
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
        var text = "groups:\n"
        for group in 1...count {
            text += """
                  - name: \(count == 1 ? "web" : "web\(group)")
                    resources:
                \(disk)      - name: fip\(group)
                        type: fip
                        address: \(floatingAddress(spec: spec, group: group))/24
                        probe-wait: \(probeWait)
                        announce-interval: 20ms
                \(depends)
                """
        }
        return text
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
    public func answeringServer() -> String? {
        let outcome = try? lab.exec(
            in: LabSpec.client, [binary, "lab", "probe", "--host", floatingAddress, "--once"], timeout: .seconds(5))
        guard let outcome, outcome.succeeded else { return nil }
        let name = outcome.output.trimmingCharacters(in: .whitespacesAndNewlines)
        return name.isEmpty ? nil : name
    }

    /// `runs` failovers of Understudy caused by `fault`.
    public func run(_ fault: Fault, runs: Int) async throws -> Series {
        try await measure(
            fault, runs: runs,
            inject: { holder in
                switch fault {
                case .kill: try lab.kill9(holder)
                case .linkDown: try lab.setLink(holder, up: false)
                }
            },
            restore: { try await restore($0) },
            detail: { server in
                let times = resourceTimes(on: server)
                return times.isEmpty ? nil : Dictionary(times.map { ($0.resource, $0.milliseconds) }, uniquingKeysWith: { $1 })
            })
    }

    /// The measuring loop, the same for every competitor: `runs` times, find who answers on the
    /// floating address, start the prober in the client namespace, wait 300 ms, take the fault
    /// time on `CLOCK_BOOTTIME`, `inject` the fault into the holder, wait for the prober's first
    /// answer from any other server (same clock), `restore` the holder and pause `settle`.
    public func measure(
        _ fault: Fault, runs: Int, inject: (String) throws -> Void, restore: (String) async throws -> Void,
        detail: (String) -> [String: Double]? = { _ in nil }
    ) async throws -> Series {
        let machineBefore = Footprint.MachineTicks.now()
        let loadBefore = Footprint.loadAverage()
        let startedAt = ISO8601DateFormatter().string(from: Date())
        var results: [Run] = []
        for index in 0..<runs {
            var holder: String?
            _ = await labPoll(upTo: .seconds(30), every: .milliseconds(200)) {
                holder = answeringServer()
                return holder != nil
            }
            guard let holder else { throw LabError("nobody answers on \(floatingAddress)") }
            guard spec.serverNames.contains(where: { $0 != holder }) else { throw LabError("one server only") }
            // The prober runs in the client namespace, started before the fault.
            let prober = try startProber(otherThan: holder)
            try await Task.sleep(for: .milliseconds(300))
            let faultAt = LeaseFile.boottimeNow()
            do {
                try inject(holder)
            } catch {
                kill(prober.processIdentifier, SIGKILL)
                prober.waitUntilExit()
                throw error
            }
            prober.waitUntilExit()
            let output = (try? String(contentsOfFile: proberOutput, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
            let fields = output?.split(separator: " ") ?? []
            var run = Run(index: index + 1, holder: holder, answeredBy: nil, seconds: nil, resourceMilliseconds: nil)
            if let first = fields.first, let answeredAt = Int64(first) {
                let seconds = Double(answeredAt - faultAt) / 1e9
                let other = fields.count > 1 ? String(fields[1]) : "another server"
                run.seconds = seconds
                run.answeredBy = other
                run.resourceMilliseconds = detail(other)
                let shares = (run.resourceMilliseconds ?? [:]).sorted { $0.key < $1.key }.map {
                    "\($0.key) \(String(format: "%.0f", $0.value)) ms"
                }
                log(
                    "run \(index + 1)/\(runs): \(fault.rawValue) of \(holder): \(other) answered after \(String(format: "%.3f", seconds)) s"
                        + (shares.isEmpty ? "" : " (group start: \(shares.joined(separator: ", ")))"))
            } else {
                log("run \(index + 1)/\(runs): \(fault.rawValue) of \(holder): no other server answered within the limit")
            }
            results.append(run)
            try await restore(holder)
            try await Task.sleep(for: settle)
        }
        let steal = machineBefore.flatMap { before in Footprint.MachineTicks.now().map { before.stealPercent(until: $0) } } ?? 0
        return Series(
            fault: fault, runs: results, stealPercent: steal, loadBefore: loadBefore, loadAfter: Footprint.loadAverage(),
            startedAt: startedAt)
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

    /// Kills the responders (by pid) and reaps them.
    public static func stopResponders(_ responders: [Process]) {
        for responder in responders where responder.isRunning {
            kill(responder.processIdentifier, SIGKILL)
            responder.waitUntilExit()
        }
    }

    /// The prober: prints the `CLOCK_BOOTTIME` of the first answer from a server other than
    /// `holder`, and that server's name.
    func startProber(otherThan holder: String) throws -> Process {
        try? FileManager.default.removeItem(atPath: proberOutput)
        _ = FileManager.default.createFile(atPath: proberOutput, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: LabShell.which("ip") ?? "/usr/sbin/ip")
        process.arguments = [
            "netns", "exec", spec.clientNamespace, binary, "lab", "probe", "--host", floatingAddress, "--other-than", holder,
            "--limit", "60",
        ]
        process.standardOutput = FileHandle(forWritingAtPath: proberOutput)
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Puts the old holder back: link up, daemon restarted (and `clpcl -r` to lift the
    /// abnormal-stop suspension), then waits until all servers see each other.
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
    }

    public static func summary(_ values: [Double]) -> (min: Double, median: Double, max: Double)? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        let median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
        return (sorted[0], median, sorted[sorted.count - 1])
    }
}
