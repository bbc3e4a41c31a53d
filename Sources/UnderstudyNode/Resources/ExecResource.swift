import Foundation
import Logging
import Synchronization
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// The `exec` resource: start and stop scripts, synchronous or asynchronous, each run in its
/// own process group with its output in the resource's rotating log.
public final class ExecResourceDriver: Sendable {
    struct Tracked: Sendable {
        var group: GroupName
        var script: RunningScript
        /// Read from /proc once, when tracked (the record is written at every start and stop).
        var startTime: UInt64?
    }

    let runner: ScriptRunner
    let host: HostFacts
    let baseEnvironment: [String: String]
    let logDirectory: String
    let logger: Logger
    /// Every script process this driver started and that may still run, by resource.
    /// Asynchronous start processes stay here until their resource stops.
    private let running = Mutex<[ResourceName: [Tracked]]>([:])
    /// Under which resources each group's processes were ever tracked (kept until the group
    /// is fenced; a name whose processes have ended costs a lookup): a fence looks only there.
    private let trackedUnder = Mutex<[GroupName: Set<ResourceName>]>([:])
    private let logs = Mutex<[String: RotatingLog]>([:])
    /// What the process record file holds since this driver last wrote it (nil: not yet).
    private let recorded = Mutex<[ProcessRecord]?>(nil)
    /// The record file as a previous run left it, once read (`recordedProcesses`).
    private let leftoverRecords = Mutex<[ProcessRecord]?>(nil)
    /// Where the pids of asynchronous processes are recorded, so that a restarted daemon can
    /// kill what its crashed predecessor left behind.
    let processFile: String

    /// This server's name, given to scripts as `CLP_SERVER_LOCAL`.
    let localServer: ServerName
    /// Given to scripts as `UNDERSTUDY_LEASE_FILE`.
    let leaseFile: String?

    public init(
        localServer: ServerName, runner: ScriptRunner, host: HostFacts, logDirectory: String, stateDirectory: String,
        leaseFile: String? = nil, logger: Logger
    ) {
        self.localServer = localServer
        self.leaseFile = leaseFile
        self.runner = runner
        self.host = host
        self.baseEnvironment = ScriptEnvironment.base()
        self.logDirectory = logDirectory
        self.logger = logger
        self.processFile = stateDirectory + "/processes.json"
    }

    public func perform(_ run: ResourceRun, settings: ExecSettings) async -> ResourceOutcome {
        switch run.operation {
        case .start: return await start(run, settings: settings)
        case .stop: return await stop(run, settings: settings)
        }
    }

    func start(_ run: ResourceRun, settings: ExecSettings) async -> ResourceOutcome {
        guard let path = settings.start else { return .success(asyncPID: nil) }
        let invocation = makeInvocation(
            path: path, run: run, settings: settings, action: "start", asyncPID: nil,
            timeout: settings.startMode == .async ? nil : settings.timeout)
        switch settings.startMode {
        case .sync:
            let script: RunningScript
            do { script = try await runner.start(invocation) } catch { return .failure(reason: error.reason) }
            track(run, script)
            let outcome = await script.wait()
            untrack(run.resource, script)
            return outcome.isSuccess ? .success(asyncPID: nil) : .failure(reason: "start script \(path): \(outcome)")
        case .async:
            let script: RunningScript
            do { script = try await runner.start(invocation) } catch { return .failure(reason: error.reason) }
            track(run, script)
            recordProcesses()
            return .success(asyncPID: script.pid)
        }
    }

    func stop(_ run: ResourceRun, settings: ExecSettings) async -> ResourceOutcome {
        let leftovers = running.withLock { $0[run.resource] ?? [] }
        var result: ResourceOutcome = .success(asyncPID: nil)
        if let path = settings.stop {
            let invocation = makeInvocation(
                path: path, run: run, settings: settings, action: "stop", asyncPID: run.asyncPID,
                timeout: settings.stopTimeout)
            let outcome = await runner.run(invocation)
            if !outcome.isSuccess { result = .failure(reason: "stop script \(path): \(outcome)") }
        }
        // Whatever the start left running goes with the resource (SIGTERM, then SIGKILL).
        for tracked in leftovers where tracked.script.isRunning {
            await tracked.script.terminate()
        }
        running.withLock { $0[run.resource] = nil }
        recordProcesses()
        return result
    }

    /// Kills every process of a group at once (SIGKILL to each process group): the Engine
    /// fences the group because this server may no longer hold it.
    public func fence(group: GroupName) {
        // Only the entries the group ever had (`trackedUnder`): fencing every group at once
        // (500 after a stall) went through the whole table once per group, groups² work on
        // the daemon actor.
        // The index is read and emptied under the table's lock (always taken first), so a
        // start tracked meanwhile is either found here or indexed for the next fence.
        let victims = running.withLock { table -> [Tracked] in
            let names = trackedUnder.withLock { $0.removeValue(forKey: group) ?? [] }
            var found: [Tracked] = []
            for resource in names {
                guard let list = table[resource], list.contains(where: { $0.group == group }) else { continue }
                found += list.filter { $0.group == group }
                let kept = list.filter { $0.group != group }
                table[resource] = kept.isEmpty ? nil : kept
            }
            return found
        }
        for victim in victims {
            kill(-victim.script.pid, SIGKILL)
            logger.warning("fenced group \(group): killed process group \(victim.script.pid)")
        }
        // Processes a previous run of the daemon left (recorded pids, checked by start time).
        for record in recordedProcesses() where record.group == group {
            if ProcessIdentity.startTime(of: record.pid) == record.startTime {
                kill(-record.pid, SIGKILL)
                logger.warning("fenced group \(group): killed leftover process group \(record.pid) of a previous run")
            }
        }
        recordProcesses()
    }

    // MARK: - Invocation

    func makeInvocation(
        path: String, run: ResourceRun, settings: ExecSettings, action: String, asyncPID: Int32?, timeout: Duration?
    ) -> ScriptInvocation {
        var environment = ScriptEnvironment.compose(base: baseEnvironment, host: host, context: run.context, asyncStartPID: asyncPID)
        environment["CLP_SERVER_LOCAL"] = localServer
        if let leaseFile { environment["UNDERSTUDY_LEASE_FILE"] = leaseFile }
        let folder = (path as NSString).deletingLastPathComponent
        let logPath = settings.log ?? "\(logDirectory)/\(run.resource).log"
        let log = logs.withLock { table -> RotatingLog in
            if let existing = table[logPath] { return existing }
            let created = RotatingLog(path: logPath, rotateSize: settings.logRotateSize, logger: logger)
            table[logPath] = created
            return created
        }
        return ScriptInvocation(
            executable: path, environment: environment, workingDirectory: folder.isEmpty ? nil : folder,
            timeout: timeout, log: ScriptLog(file: log, action: action))
    }

    func track(_ run: ResourceRun, _ script: RunningScript) {
        let startTime = ProcessIdentity.startTime(of: script.pid)
        running.withLock { table in
            trackedUnder.withLock { _ = $0[run.group, default: []].insert(run.resource) }
            table[run.resource, default: []].append(Tracked(group: run.group, script: script, startTime: startTime))
        }
    }

    func untrack(_ resource: ResourceName, _ script: RunningScript) {
        running.withLock { table in table[resource] = table[resource]?.filter { $0.script.pid != script.pid } }
    }

    // MARK: - Leftover processes

    struct ProcessRecord: Codable, Equatable {
        var group: GroupName
        var resource: ResourceName
        var pid: Int32
        var startTime: UInt64
    }

    func recordProcesses() {
        let records = running.withLock { table in
            table.flatMap { resource, list in
                list.filter { $0.script.isRunning }.compactMap { tracked -> ProcessRecord? in
                    guard let start = tracked.startTime else { return nil }
                    return ProcessRecord(group: tracked.group, resource: resource, pid: tracked.script.pid, startTime: start)
                }
            }
        }.sorted { ($0.group, $0.resource, $0.pid) < ($1.group, $1.resource, $1.pid) }
        // Unchanged (a fence or stop of a group with no process left running, as with
        // synchronous start scripts): no rewrite. Fencing 500 groups at once rewrote and
        // fsynced the same file 500 times on the daemon actor, seconds of stall.
        if recorded.withLock({ $0 == records }) { return }
        do {
            try AtomicFile.write(WireJSON.encode(records), to: processFile)
            recorded.withLock { $0 = records }
        } catch {
            logger.error("cannot record script processes in \(processFile): \(error)")
        }
    }

    func loadRecordedProcesses() -> [ProcessRecord] {
        guard let data = try? AtomicFile.read(processFile) else { return [] }
        return (try? WireJSON.decode([ProcessRecord].self, from: Array(data))) ?? []
    }

    /// What the record file holds: what this driver wrote last, or, until it first writes,
    /// what a previous run left there, read once (a fence of every group read and decoded
    /// the file once per group).
    func recordedProcesses() -> [ProcessRecord] {
        if let written = recorded.withLock({ $0 }) { return written }
        if let read = leftoverRecords.withLock({ $0 }) { return read }
        let read = loadRecordedProcesses()
        leftoverRecords.withLock { $0 = read }
        return read
    }
}

/// Tells a process from a later one that reuses its pid.
enum ProcessIdentity {
    /// Field 22 of /proc/PID/stat: start time in clock ticks since boot.
    static func startTime(of pid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // After the command name: field 3 is at index 0, so field 22 is at index 19.
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }
}

extension ExecResourceDriver: ResourceDriver {
    convenience init(context: ResourceDriverContext) {
        self.init(
            localServer: context.server, runner: context.runner, host: context.host, logDirectory: context.logDirectory,
            stateDirectory: context.stateDirectory, leaseFile: context.leaseFile, logger: context.logger)
    }

    public func perform(_ run: ResourceRun, resource: ResourceConfig) async -> ResourceOutcome {
        guard case .exec(let settings) = resource.settings else { return .failure(reason: "\(resource.name) is not an exec resource") }
        return await perform(run, settings: settings)
    }

    /// Kills the process groups of the group's scripts (this run's and a previous run's) at once.
    public func fence(group: GroupConfig, resources: [ResourceConfig], server: ServerName) -> Task<Bool, Never>? {
        fence(group: group.name)
        return nil
    }
}
