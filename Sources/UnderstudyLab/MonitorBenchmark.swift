import Foundation
import UnderstudyEngine
import UnderstudyModel

/// Many monitors on one daemon: node1 of a two-server lab runs `count` miiw monitors (the
/// cheapest probe: two sysfs reads, so the runner and the Engine are what is measured) at
/// `interval`; after they all run, CPU and memory of its daemon are measured over `seconds`,
/// with how late checks and heartbeats started against their schedule (the daemon's own
/// recorders, newest 65,536 samples).
public struct MonitorBenchmark {
    public struct Result: Sendable {
        public var monitors: Int
        public var seconds: Int
        public var cpuPercent: Double
        public var rssMiB: Double
        public var idleCPUPercent: Double
        /// Share of the machine's CPU time the hypervisor stole during the measurement.
        public var stealPercent: Double
        /// A thread of the benchmark process doing nothing but sleep 10 ms at a time: the
        /// machine's own lateness over the same minute, to tell the daemon's from the VM's.
        public var reference: TimerJitterProbe.Summary
        public var runtime: ClusterStatusSnapshot.RuntimeLine
    }

    public let lab: Lab

    public init(lab: Lab) { self.lab = lab }

    /// The monitors section for `count` miiw monitors on node1.
    public static func monitorsYAML(count: Int, interval: String) -> String {
        var text = "monitors:\n"
        for index in 1...count {
            text += """
                  - name: miiw\(index)
                    type: miiw
                    interface: eth0
                    servers: [node1]
                    interval: \(interval)
                    timeout: 5s
                    recovery: {target: local-server, final-action: none}

                """
        }
        return text
    }

    public func run(count: Int, seconds: Int, log: (String) -> Void) async throws -> Result {
        let spec = lab.spec
        for server in spec.serverNames { try lab.startDaemon(server) }
        for server in spec.serverNames {
            for peer in spec.serverNames { try await lab.waitUntil(server, sees: peer, .online, timeout: .seconds(30)) }
        }
        let allNormal = await labPoll(upTo: .seconds(120), every: .milliseconds(500)) {
            guard let monitors = await lab.status(on: "node1")?.monitors else { return false }
            return monitors.filter { $0.perServer["node1"] == .normal }.count == count
        }
        guard allNormal else { throw LabError("not every monitor turned Normal on node1 within 120 s") }
        log("all \(count) monitors Normal on node1; measuring \(seconds) s")
        guard let daemon = lab.pid(of: "node1"), let peer = lab.pid(of: "node2"),
            let before = IdleWatch.usage(of: daemon.pid), let peerBefore = IdleWatch.usage(of: peer.pid),
            let machineBefore = IdleWatch.machineTicks()
        else { throw LabError("cannot read the daemons' usage") }
        let reference = TimerJitterProbe()
        reference.start(limit: .seconds(seconds + 5))
        let started = ContinuousClock.now
        try await Task.sleep(for: .seconds(seconds))
        let elapsed = started.duration(to: .now)
        let referenceSummary = await reference.stop()
        guard let after = IdleWatch.usage(of: daemon.pid), let peerAfter = IdleWatch.usage(of: peer.pid),
            let machineAfter = IdleWatch.machineTicks()
        else { throw LabError("cannot read the daemons' usage after the measurement (did a daemon exit?)") }
        guard let runtime = await lab.status(on: "node1")?.runtime else {
            throw LabError("node1's daemon did not answer clpstat after the measurement")
        }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        let wall = elapsed.inSeconds
        return Result(
            monitors: count, seconds: seconds, cpuPercent: (after.ticks - before.ticks) / ticks / wall * 100,
            rssMiB: after.rssKiB / 1024, idleCPUPercent: (peerAfter.ticks - peerBefore.ticks) / ticks / wall * 100,
            stealPercent: (machineAfter.steal - machineBefore.steal) / max(machineAfter.total - machineBefore.total, 1) * 100,
            reference: referenceSummary, runtime: runtime)
    }
}
