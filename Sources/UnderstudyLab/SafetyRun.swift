import Foundation
import UnderstudyEngine
import UnderstudyModel
import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// The faults of a safety run.
public enum SafetyFault: String, CaseIterable, Codable, Sendable {
    /// Every server cut from every other; the ping target stays reachable from the first
    /// server only (with `pingnp`), so one side can prove it survives.
    case partition
    /// Every server cut from every other, the ping target unreachable for all: no side can
    /// prove it survives (documented outcome: every side stops its groups).
    case partitionNoTarget = "partition-no-target"
    /// The holder's heartbeats do not reach the others; theirs still reach it.
    case asymmetric
    /// 30 % loss on the holder's link, both directions.
    case loss
    /// The holder (daemon and service) frozen longer than the timeout, then resumed.
    case freeze
    /// kill -9 of the holder's daemon, restarted afterwards.
    case kill
    /// The holder's link goes down and up five times, 150 ms apart, then stays down a moment.
    case flap
}

/// A safety run in the lab: a recorded service in one group, faults injected one after
/// another, and afterwards a check that no two servers ever considered themselves active at
/// once (see `ActivityCheck`).
public struct SafetyRun {
    public struct Result: Sendable {
        public var injected: [SafetyFault: Int]
        public var overlaps: [ActivityCheck.Overlap]
        public var samples: Int
        public var activeSeconds: [String: Double]
        /// Faults after which the group was online again (faults where both sides could not
        /// prove survival are expected to stop it until the heal).
        public var recovered: Int
        /// `partition-no-target` faults after which some server still held the group (the
        /// documented outcome is that every side stops).
        public var stillHeldWithoutProof: [String]
        public var elapsed: Duration
    }

    public let lab: Lab
    public let binary: String
    var log: (String) -> Void
    /// With a shared disk: which servers have it mounted, every 50 ms during the run.
    public let mountSampler: MountSampler

    public init(lab: Lab, binary: String, log: @escaping (String) -> Void = { _ in }) {
        self.lab = lab
        self.binary = binary
        self.log = log
        self.mountSampler = MountSampler(spec: lab.spec)
    }

    var spec: LabSpec { lab.spec }
    var timeout: Duration { .milliseconds(spec.heartbeatTimeoutMilliseconds) }
    func recordsFile(_ server: String) -> String { spec.folder + "/activity-\(server).log" }
    func recorderPidFile(_ server: String) -> String { spec.folder + "/recorder-\(server).pid" }

    /// The group the run watches: one exec resource whose async start is the recorder; with a
    /// shared disk (`spec.sharedDisk`) also the `disk` resource and a writer of numbered,
    /// fsync'ed records on it (`SharedDiskWriter`).
    public static func writeGroup(spec: LabSpec, binary: String) throws {
        let folder = spec.folder
        var diskResources = ""
        if spec.sharedDisk == true {
            try spec.writeScript(
                "scripts/safe/writer.sh",
                """
                #!/bin/sh
                exec '\(binary)' lab disk-writer --server "$CLP_SERVER_LOCAL" --file '\(spec.sharedMountPoint)/records' \\
                  --acknowledgements '\(folder)/acks-'"$CLP_SERVER_LOCAL"'.log' --pid-file '\(folder)/writer-'"$CLP_SERVER_LOCAL"'.pid'

                """)
            diskResources = """
                      - name: shared
                        type: disk
                        device: \(spec.sharedDiskPath)
                        filesystem: ext4
                        mount-point: \(spec.sharedMountPoint)
                        mount-timeout: 30s
                        mount-retries: 1
                        fsck: never
                        unmount-interval: 500ms
                      - name: writer
                        type: exec
                        start: scripts/safe/writer.sh
                        stop: scripts/safe/stop.sh
                        start-mode: async

                """
        }
        try spec.writeScript(
            "scripts/safe/start.sh",
            """
            #!/bin/sh
            exec '\(binary)' lab recorder --server "$CLP_SERVER_LOCAL" --lease-file "$UNDERSTUDY_LEASE_FILE" \\
              --output '\(folder)/activity-'"$CLP_SERVER_LOCAL"'.log' --pid-file '\(folder)/recorder-'"$CLP_SERVER_LOCAL"'.pid'

            """)
        try spec.writeScript("scripts/safe/stop.sh", "#!/bin/sh\nexit 0\n")
        let group = """
            groups:
              - name: safe
                resources:
                  - name: recorder
                    type: exec
                    start: scripts/safe/start.sh
                    stop: scripts/safe/stop.sh
                    start-mode: async

            """
        try spec.appendToConfig(group + diskResources)
    }

    /// Injects `perKind` faults of each kind, round robin, and checks the records.
    public func run(kinds: [SafetyFault], perKind: Int) async throws -> Result {
        let started = ContinuousClock.now
        var injected: [SafetyFault: Int] = [:]
        var recovered = 0
        var stillHeld: [String] = []
        try await waitForHolder(upTo: .seconds(30))
        let sampler = mountSampler
        let sampling = spec.sharedDisk == true ? Task { await sampler.run() } : nil
        defer { sampling?.cancel() }
        for round in 0..<perKind {
            for kind in kinds {
                guard let holder = await currentHolder() ?? spec.serverNames.first else { continue }
                log("fault \(round + 1)/\(perKind): \(kind.rawValue) on \(holder) at boottime \(Double(LeaseFile.boottimeNow()) / 1e9) s")
                try await inject(kind, on: holder)
                // With a disk heartbeat the servers still hear each other: nothing has to stop.
                if kind == .partitionNoTarget && spec.extraHeartbeats == nil {
                    // Nobody can prove it survives: every server has stopped the group.
                    for server in spec.serverNames {
                        if let group = await lab.status(on: server)?.groups.first(where: { $0.name == "safe" }),
                            group.perServer[server]?.holdsResources ?? false
                        {
                            stillHeld.append("\(server) after fault \(round + 1)")
                        }
                    }
                }
                injected[kind, default: 0] += 1
                try await restoreEverything()
                if (try? await waitForHolder(upTo: .seconds(20))) != nil { recovered += 1 }
            }
        }
        // Settle, then read what the services recorded.
        try? await Task.sleep(for: .milliseconds(500))
        let check = ActivityCheck(files: spec.serverNames.map(recordsFile))
        return Result(
            injected: injected, overlaps: check.overlaps, samples: check.samples, activeSeconds: check.activeSeconds,
            recovered: recovered, stillHeldWithoutProof: stillHeld, elapsed: started.duration(to: .now))
    }

    // MARK: - Shared disk

    public struct SharedDiskResult: Sendable {
        public var check: SharedDiskCheck
        /// `e2fsck -n -f` found the file system clean.
        public var fsckClean: Bool
        public var fsckOutput: String
        /// Mounts the daemons logged as refused because the file system was in use (MMP or
        /// busy): the kernel's last line of defence at work.
        public var refusedMounts: Int
        /// Samples (every 50 ms over the run) at which two servers had it mounted at once.
        public var doubleMounts: [String]
        public var mountSamples: Int
        public var mountedSeconds: [String: Double]
    }

    /// After the run: every process of the lab killed (so every server's mount namespace and
    /// its mounts are gone), then the file system checked read-only, mounted read-only on the
    /// host, its records compared with the writers' acknowledgements.
    public func checkSharedDisk() throws -> SharedDiskResult {
        lab.killEverything()
        guard let device = lab.diskDevices[spec.serverNames[0]] else { throw LabError("the lab has no shared disk") }
        // The kernel finishes the unmounts of the vanished namespaces in the background.
        var fsck = try LabShell.run(["e2fsck", "-n", "-f", device], timeout: .seconds(120))
        for _ in 0..<50 where !fsck.succeeded && fsck.output.contains("in use") {
            usleep(100_000)
            fsck = try LabShell.run(["e2fsck", "-n", "-f", device], timeout: .seconds(120))
        }
        let view = spec.folder + "/shared-check"
        try FileManager.default.createDirectory(atPath: view, withIntermediateDirectories: true)
        try LabShell.check(["mount", "-o", "ro,noload", device, view], timeout: .seconds(60))
        let records = (try? String(contentsOfFile: view + "/records", encoding: .utf8)) ?? ""
        _ = try? LabShell.run(["umount", view], timeout: .seconds(60))
        let acknowledgements = spec.serverNames.map {
            (try? String(contentsOfFile: spec.folder + "/acks-\($0).log", encoding: .utf8)) ?? ""
        }
        var refused = 0
        for server in spec.serverNames {
            let log = (try? String(contentsOfFile: spec.logPath(of: server), encoding: .utf8)) ?? ""
            refused +=
                log.split(separator: "\n").filter {
                    $0.contains("mount attempt") && ($0.contains("MMP") || $0.contains("already mounted") || $0.contains("busy"))
                }.count
        }
        return SharedDiskResult(
            check: SharedDiskCheck(diskRecords: records, acknowledgements: acknowledgements), fsckClean: fsck.succeeded,
            fsckOutput: String(fsck.output.suffix(2000)), refusedMounts: refused, doubleMounts: mountSampler.doubleMounts,
            mountSamples: mountSampler.sampleCount, mountedSeconds: mountSampler.mountedSeconds)
    }

    // MARK: - Faults

    func inject(_ kind: SafetyFault, on holder: String) async throws {
        let others = spec.serverNames.filter { $0 != holder }
        // Long enough for the others to judge the holder down and act.
        let hold = timeout * 3 + .milliseconds(300)
        switch kind {
        case .partition:
            // The holder is cut from the other servers and from the target (the client).
            try lab.partition([holder], others + [LabSpec.client])
            try await Task.sleep(for: hold)
        case .partitionNoTarget:
            try lab.partition(spec.serverNames, [LabSpec.client])
            for (index, server) in spec.serverNames.enumerated() {
                let rest = Array(spec.serverNames[(index + 1)...])
                if !rest.isEmpty { try lab.partition([server], rest) }
            }
            try await Task.sleep(for: hold)
        case .asymmetric:
            try lab.partition([holder], others, oneWay: true)
            try await Task.sleep(for: hold)
        case .loss:
            try lab.netem(holder, direction: .both, lossPercent: 30)
            try await Task.sleep(for: hold)
        case .freeze:
            let targets = frozenProcesses(of: holder)
            for pid in targets { kill(pid, SIGSTOP) }
            try await Task.sleep(for: hold)
            for pid in targets { kill(pid, SIGCONT) }
        case .kill:
            try lab.kill9(holder)
            try await Task.sleep(for: hold)
        case .flap:
            for _ in 0..<5 {
                try lab.setLink(holder, up: false)
                try await Task.sleep(for: .milliseconds(150))
                try lab.setLink(holder, up: true)
                try await Task.sleep(for: .milliseconds(150))
            }
            try lab.setLink(holder, up: false)
            try await Task.sleep(for: hold)
        }
    }

    /// The holder's daemon and its recorder: the whole server stops, as in a VM pause.
    func frozenProcesses(of server: String) -> [Int32] {
        var pids: [Int32] = []
        if let daemon = lab.pid(of: server), daemon.isAlive { pids.append(daemon.pid) }
        for file in [recorderPidFile(server), spec.folder + "/writer-\(server).pid"] {
            if let text = try? String(contentsOfFile: file, encoding: .utf8),
                let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1,
                let process = LabProcess(pid: pid), process.isAlive
            {
                pids.append(pid)
            }
        }
        return pids
    }

    /// Heals the network, brings killed daemons back and lets a restarted server take part
    /// again (`clpcl -r` clears the abnormal-stop suspension, as an operator would).
    func restoreEverything() async throws {
        try lab.heal()
        for server in spec.serverNames {
            try? lab.clearNetem(server)
            try? lab.setLink(server, up: true)
        }
        for server in spec.serverNames where !(lab.pid(of: server)?.isAlive ?? false) {
            try lab.startDaemon(server)
            try await lab.waitForSocket(server)
            _ = try? lab.exec(in: server, [binary, "clpcl", "-r", "--state-dir", spec.stateDirectory(of: server)], timeout: .seconds(30))
        }
        // Every server sees every other again.
        _ = await labPoll(upTo: .seconds(20), every: .milliseconds(200)) {
            for server in spec.serverNames {
                guard let status = await lab.status(on: server), status.service == "running",
                    status.servers.allSatisfy({ $0.status == .online })
                else { return false }
            }
            return true
        }
    }

    /// The server where the group is online, as the servers report it.
    func currentHolder() async -> String? {
        for server in spec.serverNames {
            if let group = await lab.status(on: server)?.groups.first(where: { $0.name == "safe" }), group.status == .online,
                let current = group.current
            {
                return current
            }
        }
        return nil
    }

    func waitForHolder(upTo limit: Duration) async throws {
        let found = await labPoll(upTo: limit, every: .milliseconds(100)) { await currentHolder() != nil }
        guard found else { throw LabError("group safe is not online anywhere after \(limit)") }
    }
}
