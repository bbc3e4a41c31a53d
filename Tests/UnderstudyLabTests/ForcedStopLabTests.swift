import Foundation
import Testing
import UnderstudyEngine
import UnderstudyLab
import UnderstudyTestSupport

/// Forced stop in the lab: two servers with ping resolution (the client is the ping target),
/// each with a real IPMI BMC (`ipmi_sim` in the client's namespace, reached over the lab's
/// public LAN by the real `ipmitool`). A BMC's chassis that loses power kills every process
/// of its server's namespace (what a power cut does). Each test checks the BMC's own record
/// of the power-off against the records of the group's start scripts.
@Suite("Lab: forced stop (fencing) through IPMI and a script", .serialized, .requires(labPrerequisite), .requires(IPMISimulator.prerequisite))
struct ForcedStopLabTests {
    static let user = IPMISimulator.User(name: "fence", password: "lab-bmc-secret", privilege: "operator")

    func spec() -> LabSpec {
        var spec = LabSpec(
            prefix: LabSpec.uniquePrefix(), servers: 2, secondLink: false, heartbeatInterval: "200ms",
            heartbeatTimeoutMilliseconds: 2000, syncWait: "1s")
        spec.resolution = "ping"
        return spec
    }

    /// One BMC per server in the client's namespace; powering one off kills its server.
    func startBMCs(_ spec: LabSpec) async throws -> [String: IPMISimulator] {
        var bmcs: [String: IPMISimulator] = [:]
        for (index, server) in spec.serverNames.enumerated() {
            bmcs[server] = try await IPMISimulator.start(
                address: spec.publicAddress(of: LabSpec.client), users: [Self.user], namespace: spec.clientNamespace,
                port: 6230 + index, onPowerOff: "ip netns pids \(spec.namespace(of: server)) | xargs -r kill -9")
        }
        return bmcs
    }

    func fencingYAML(_ bmcs: [String: IPMISimulator], delay: String = "1500ms", retry: String = "2s", check: String = "1s") -> String {
        let entries = bmcs.keys.sorted().compactMap { server -> String? in
            guard let bmc = bmcs[server] else { return nil }
            return "        \(server): {address: \(bmc.address), port: \(bmc.port), user: \(Self.user.name), password-file: \(bmc.passwordFile(for: Self.user.name))}"
        }
        return """
            fencing:
              timeout: 10s
              on-failure: cancel
              check-interval: \(check)
              delay: \(delay)
              retry-interval: \(retry)
              agents:
                - name: bmc
                  type: ipmi
                  action: power-off
                  cipher-suite: 3
                  bmc:
            \(entries.joined(separator: "\n"))

            """
    }

    /// grp1's start runs on `server` (wall clock, nanoseconds), from the start script's records.
    func starts(_ spec: LabSpec, on server: String) -> [UInt64] {
        let text = (try? String(contentsOfFile: spec.recordsPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t")
            guard fields.count == 3, fields[0] == "start", fields[1] == server else { return nil }
            return UInt64(fields[2])
        }
    }

    func log(_ spec: LabSpec, _ server: String) -> String {
        (try? String(contentsOfFile: spec.logPath(of: server), encoding: .utf8)) ?? ""
    }

    func diagnostics(_ lab: Lab, _ bmcs: [String: IPMISimulator]) -> String {
        let logs = lab.spec.serverNames.map { server in
            "--- \(server)\n" + log(lab.spec, server).split(separator: "\n").suffix(30).joined(separator: "\n")
        }
        let chassis = bmcs.sorted { $0.key < $1.key }.map { "--- BMC of \($0.key): \($0.value.chassisCommands)" }
        return lab.report() + "\n" + (logs + chassis).joined(separator: "\n")
    }

    /// The lab with its BMCs, the fencing section (`fencing(bmcs)`) appended, grp1 running on node1.
    /// The BMCs are stopped (by PID) before the lab's namespaces go, in `down`.
    func up(_ spec: LabSpec, fencing: ([String: IPMISimulator]) throws -> String) async throws -> (Lab, [String: IPMISimulator]) {
        let lab = try await Lab.up(spec, binary: labBinary, startDaemons: false)
        var bmcs: [String: IPMISimulator] = [:]
        do {
            bmcs = try await startBMCs(spec)
            try spec.appendToConfig(try fencing(bmcs))
            for server in spec.serverNames { try lab.startDaemon(server) }
            try await waitUntilFormed(lab, timeout: .seconds(20))
            _ = try await lab.waitForStatus("grp1 online on node1", on: "node2", timeout: .seconds(20)) {
                $0.groups.first { $0.name == "grp1" }.map { $0.status == .online && $0.current == "node1" } ?? false
            }
        } catch {
            print(diagnostics(lab, bmcs))
            down(lab, bmcs)
            throw error
        }
        return (lab, bmcs)
    }

    func down(_ lab: Lab, _ bmcs: [String: IPMISimulator]) {
        for bmc in bmcs.values { bmc.stop() }
        lab.down()
    }

    /// Waits (bounded) until grp1 started on `server` per the records; the first start.
    func waitForStart(_ spec: LabSpec, on server: String, within limit: Duration) async throws -> UInt64? {
        let end = ContinuousClock.now + limit
        while ContinuousClock.now < end {
            if let first = starts(spec, on: server).first { return first }
            try await Task.sleep(for: .milliseconds(100))
        }
        return nil
    }

    @Test("a hung master is powered off through its BMC, after the delay, before its group starts on the other server")
    func hungServerPoweredOff() async throws {
        let spec = spec()
        let (lab, bmcs) = try await up(spec) { fencingYAML($0) }
        defer { down(lab, bmcs) }
        let node1BMC = try #require(bmcs["node1"])
        let node2BMC = try #require(bmcs["node2"])
        let daemon1 = try #require(lab.pid(of: "node1"))
        // The periodic checks pass on both servers before anything happens.
        try await Task.sleep(for: .seconds(2))
        #expect(!log(spec, "node2").contains("[rc 414]"), "\(diagnostics(lab, bmcs))")
        let status = try #require(await lab.status(on: "node2", timeout: .seconds(10)))
        let checks = status.fencing?.checks ?? []
        #expect(checks.contains { $0.server == "node1" && $0.agent == "bmc" && $0.normal }, "node2 checked node1's BMC: \(checks)")

        let frozeAt = UInt64(Date().timeIntervalSince1970 * 1_000_000_000)
        try lab.freeze("node1")
        let started = try await waitForStart(spec, on: "node2", within: .seconds(25))
        let startedAt = try #require(started, "grp1 did not start on node2: \(diagnostics(lab, bmcs))")
        let offTimes = node1BMC.powerOffTimes
        if let off = offTimes.first, off > frozeAt, startedAt > off {
            // For docs/benchmarks.md (forced stop): where the time goes, not a bound.
            print(
                "forced stop timing: freeze -> power off \((off - frozeAt) / 1_000_000) ms (timeout 2 s, ping, delay 1.5 s, ipmitool), power off -> grp1 start \((startedAt - off) / 1_000_000) ms"
            )
        }
        #expect(offTimes.count == 1, "node1's BMC powered it off once: \(node1BMC.chassisCommands)")
        #expect(node2BMC.powerOffTimes.isEmpty, "node2 was not powered off")
        if let off = offTimes.first { #expect(off < startedAt, "the power went off (\(off)) before grp1 started on node2 (\(startedAt))") }
        #expect(node1BMC.power == false)
        #expect(!daemon1.isAlive, "the power-off took node1's daemon with it")
        let text = log(spec, "node2")
        #expect(text.contains("[rc 411]"), "node2 waited the delay before stopping the higher-ranked node1")
        #expect(text.contains("[rc 410]") && text.contains("[rc 412]"), "\(diagnostics(lab, bmcs))")
        #expect(!text.contains("lab-bmc-secret"), "the BMC password never reaches the log")
        let after = try #require(await lab.status(on: "node2", timeout: .seconds(10)))
        #expect(after.fencing?.stops.first { $0.server == "node1" }?.state == "stopped", "\(String(describing: after.fencing))")
    }

    @Test("a BMC that refuses the account cancels the failover with an alert; fixed, the retry stops the server and the group moves")
    func failingBMCCancelsFailover() async throws {
        let spec = spec()
        let (lab, bmcs) = try await up(spec) { fencingYAML($0) }
        defer { down(lab, bmcs) }
        let node1BMC = try #require(bmcs["node1"])
        let passwordFile = node1BMC.passwordFile(for: Self.user.name)
        try IPMISimulator.writePasswordFile(passwordFile, "not-the-password")
        // The periodic check finds it first (every second).
        let checkFailed = try await lab.waitUntilLog(spec, "node2", contains: "[rc 414]", within: .seconds(15))
        #expect(checkFailed, "the periodic check says node1's BMC does not work: \(diagnostics(lab, bmcs))")

        try lab.freeze("node1")
        let cancelled = try await lab.waitUntilLog(spec, "node2", contains: "[rc 433]", within: .seconds(25))
        #expect(cancelled, "the failover is cancelled: \(diagnostics(lab, bmcs))")
        try await Task.sleep(for: .seconds(4))
        #expect(starts(spec, on: "node2").isEmpty, "grp1 must not start on node2 while node1 may still run it")
        #expect(node1BMC.power == true)
        let text = log(spec, "node2")
        #expect(text.components(separatedBy: "[rc 433]").count - 1 == 1, "the cancelled failover is said once")
        #expect(text.components(separatedBy: "[rc 413]").count - 1 >= 2, "each failed attempt is said (retried every 2 s)")
        #expect(!text.contains("not-the-password") && !text.contains(Self.user.password))

        // The operator fixes the BMC account: the next attempt powers node1 off and grp1 moves.
        try IPMISimulator.writePasswordFile(passwordFile, Self.user.password)
        let fixedAt = UInt64(Date().timeIntervalSince1970 * 1_000_000_000)
        let started = try await waitForStart(spec, on: "node2", within: .seconds(20))
        let startedAt = try #require(started, "grp1 did not start on node2: \(diagnostics(lab, bmcs))")
        let off = try #require(node1BMC.powerOffTimes.first)
        #expect(off > fixedAt && off < startedAt, "powered off after the fix, before grp1 started on node2")
        #expect(try await lab.waitUntilLog(spec, "node2", contains: "[rc 412]", within: .seconds(5)))
    }

    @Test("a split where both servers still reach the ping target: exactly one server is powered off, the lower-ranked one")
    func splitStopsExactlyOne() async throws {
        let spec = spec()
        let (lab, bmcs) = try await up(spec) { fencingYAML($0) }
        defer { down(lab, bmcs) }
        let node1BMC = try #require(bmcs["node1"])
        let node2BMC = try #require(bmcs["node2"])
        let daemon1 = try #require(lab.pid(of: "node1"))
        try lab.partition(["node1"], ["node2"])
        let end = ContinuousClock.now + .seconds(25)
        while ContinuousClock.now < end && node2BMC.powerOffTimes.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
        // Longer than node2's delay: had it survived, it would have stopped node1 by now.
        try await Task.sleep(for: .seconds(4))
        #expect(node2BMC.powerOffTimes.count == 1, "node1 stopped node2: \(diagnostics(lab, bmcs))")
        #expect(node1BMC.powerOffTimes.isEmpty, "node2 waited its delay and was off before it ended: \(node1BMC.chassisCommands)")
        #expect(daemon1.isAlive)
        let status = try #require(await lab.status(on: "node1", timeout: .seconds(10)))
        #expect(status.groups.first { $0.name == "grp1" }.map { $0.status == .online && $0.current == "node1" } ?? false)
        #expect(starts(spec, on: "node2").isEmpty)
    }

    @Test("the script agent: CLP_SERVER_DOWN, CLP_SERVER_LOCAL and CLP_FORCESTOP_MODE as EXPRESSCLUSTER's scripts read them")
    func scriptAgent() async throws {
        let spec = spec()
        let calls = spec.folder + "/fence-calls.log"
        let (lab, bmcs) = try await up(spec) { _ in
            // Mode 1 stops the server as a hypervisor would: every process of its namespace.
            try spec.writeScript(
                "scripts/fence.sh",
                """
                #!/bin/sh
                echo "$CLP_FORCESTOP_MODE $CLP_SERVER_DOWN $CLP_SERVER_LOCAL $(date +%s%N)" >> '\(calls)'
                if [ "$CLP_FORCESTOP_MODE" = 1 ]; then
                    ip netns pids '\(spec.prefix)'-"$CLP_SERVER_DOWN" | xargs -r kill -9
                fi
                exit 0

                """)
            return """
            fencing:
              check-interval: 1s
              delay: 1500ms
              agents:
                - name: hypervisor
                  type: script
                  command: scripts/fence.sh

            """
        }
        defer { down(lab, bmcs) }
        try await Task.sleep(for: .seconds(2))
        try lab.freeze("node1")
        let started = try await waitForStart(spec, on: "node2", within: .seconds(25))
        let startedAt = try #require(started, "grp1 did not start on node2: \(diagnostics(lab, bmcs))")
        let lines = ((try? String(contentsOfFile: calls, encoding: .utf8)) ?? "").split(separator: "\n").map { $0.split(separator: " ") }
        let stops = lines.filter { $0.first == "1" }
        #expect(stops.count == 1, "one stop: \(lines)")
        if let stop = stops.first, stop.count == 4 {
            #expect(stop[1] == "node1" && stop[2] == "node2")
            #expect(UInt64(stop[3]).map { $0 < startedAt } ?? false, "the stop ran before grp1 started on node2")
        }
        #expect(lines.contains { $0.count == 4 && $0[0] == "0" && $0[1] == "node2" && $0[2] == "node1" }, "node1 checked stopping node2")
        #expect(lines.contains { $0.count == 4 && $0[0] == "0" && $0[1] == "node1" && $0[2] == "node2" }, "node2 checked stopping node1")
    }
}

extension Lab {
    /// Waits (bounded) until the server's daemon log contains `text`.
    func waitUntilLog(_ spec: LabSpec, _ server: String, contains text: String, within limit: Duration) async throws -> Bool {
        let end = ContinuousClock.now + limit
        while ContinuousClock.now < end {
            let log = (try? String(contentsOfFile: spec.logPath(of: server), encoding: .utf8)) ?? ""
            if log.contains(text) { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }
}
