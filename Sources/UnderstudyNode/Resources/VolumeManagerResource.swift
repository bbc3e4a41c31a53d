import Foundation
import Logging
import UnderstudyEngine
import UnderstudyModel

/// The `volmgr` resource: an LVM volume group or a ZFS pool taken by the one server that runs
/// the group (reference §5.3).
///
/// LVM, exclusive by host tag (the tagging method of HA-LVM): start imports a VG another
/// host exported (`force-import`), replaces every other cluster server's tag
/// (`understudy_<server>`) with this server's — the Engine starts a group only once its
/// previous holder stopped or was fenced — and activates the logical volumes: `vgchange
/// -aey` (exclusive) where lvmlockd runs, `vgchange -ay` elsewhere. With `activation {
/// volume_list = [ "@understudy_<this server>", … ] }` in lvm.conf a server cannot activate a
/// VG that does not carry its tag, even by hand (docs/configuration.md). Stop deactivates
/// (`vgchange -an`) and removes the tag. ZFS: `zpool import [-f] POOL` / `zpool export`.
/// Both retry `activation-retries` / `deactivation-retries` times, a second apart.
public final class VolumeManagerDriver: Sendable {
    let server: ServerName
    let commands: NetCommandRunner
    let retryInterval: Duration
    let logger: Logger?

    public init(server: ServerName, retryInterval: Duration = .seconds(1), commandTimeout: Duration = .seconds(120), logger: Logger? = nil)
    {
        self.server = server
        self.commands = NetCommandRunner(defaultTimeout: commandTimeout)
        self.retryInterval = retryInterval
        self.logger = logger
    }

    static let tagPrefix = "understudy_"

    /// The LVM tag naming `server` as the holder (LVM tags allow `A-Za-z0-9_+.-`).
    static func tag(of server: ServerName) -> String {
        tagPrefix + String(server.map { ($0.isASCII && ($0.isLetter || $0.isNumber)) || "_+.-".contains($0) ? $0 : "_" })
    }

    public func perform(_ run: ResourceRun, settings: VolumeManagerSettings) async -> ResourceOutcome {
        let attempts = 1 + (run.operation == .start ? settings.activationRetries : settings.deactivationRetries)
        var lastFailure = ""
        for attempt in 1...attempts {
            if attempt > 1 { try? await Task.sleep(for: retryInterval) }
            do {
                switch (run.operation, settings.manager) {
                case (.start, .lvm): try await activateLVM(settings)
                case (.stop, .lvm): try await deactivateLVM(settings)
                case (.start, .zfs): try await importPool(settings)
                case (.stop, .zfs): try await exportPool(settings)
                }
                return .success(asyncPID: nil)
            } catch {
                lastFailure = error.reason
                logger?.warning("volmgr \(run.resource) \(run.operation.rawValue) attempt \(attempt) of \(attempts): \(error.reason)")
            }
        }
        return .failure(reason: lastFailure + (attempts > 1 ? " (\(attempts) attempts)" : ""))
    }

    // MARK: - LVM

    struct VolumeGroupState {
        var exported: Bool
        var tags: [String]
    }

    func lvmState(_ group: String) async throws(StorageFailure) -> VolumeGroupState {
        let result = await commands.run(["vgs", "--noheadings", "--separator", "|", "-o", "vg_attr,vg_tags", group])
        guard result.succeeded else { throw StorageFailure("volume group \(group): \(result.failureDescription)") }
        let fields = result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines).split(
            separator: "|", omittingEmptySubsequences: false)
        guard let attributes = fields.first.map({ Array($0.trimmingCharacters(in: .whitespaces)) }), attributes.count >= 3 else {
            throw StorageFailure("volume group \(group): unreadable vgs output \"\(result.standardOutput.prefix(200))\"")
        }
        let tags = fields.count > 1 ? fields[1].split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } : []
        return VolumeGroupState(exported: attributes[2] == "x", tags: tags.filter { !$0.isEmpty })
    }

    /// lvmlockd makes `-aey` a cluster-wide exclusive activation; without it `e` means
    /// nothing more than `y` on a local VG and LVM rejects it for some configurations.
    var lvmlockdRuns: Bool {
        FileManager.default.fileExists(atPath: "/run/lvmlockd.pid") || FileManager.default.fileExists(atPath: "/run/lvm/lvmlockd.pid")
    }

    func activateLVM(_ settings: VolumeManagerSettings) async throws(StorageFailure) {
        let group = settings.volume
        var state = try await lvmState(group)
        if state.exported {
            guard settings.forceImport else {
                throw StorageFailure("volume group \(group) is exported (vgexport); set force-import: true to import it")
            }
            try await lvm(["vgimport", group])
            state = try await lvmState(group)
        }
        let mine = Self.tag(of: server)
        var change = ["vgchange"]
        for tag in state.tags where tag.hasPrefix(Self.tagPrefix) && tag != mine { change += ["--deltag", tag] }
        if !state.tags.contains(mine) { change += ["--addtag", mine] }
        if change.count > 1 { try await lvm(change + [group]) }
        try await lvm(["vgchange", lvmlockdRuns ? "-aey" : "-ay", group])
    }

    func deactivateLVM(_ settings: VolumeManagerSettings) async throws(StorageFailure) {
        let group = settings.volume
        try await lvm(["vgchange", "-an", group])
        let state = try await lvmState(group)
        if state.tags.contains(Self.tag(of: server)) { try await lvm(["vgchange", "--deltag", Self.tag(of: server), group]) }
    }

    func lvm(_ arguments: [String]) async throws(StorageFailure) {
        let result = await commands.run(arguments)
        if !result.succeeded { throw StorageFailure(result.failureDescription) }
    }

    // MARK: - ZFS

    func importPool(_ settings: VolumeManagerSettings) async throws(StorageFailure) {
        let listed = await commands.run(["zpool", "list", "-H", "-o", "name", settings.volume])
        if listed.succeeded { return }
        try await lvm(["zpool", "import"] + (settings.forceImport ? ["-f"] : []) + [settings.volume])
    }

    func exportPool(_ settings: VolumeManagerSettings) async throws(StorageFailure) {
        let listed = await commands.run(["zpool", "list", "-H", "-o", "name", settings.volume])
        if !listed.succeeded { return }
        try await lvm(["zpool", "export", settings.volume])
    }
}

extension VolumeManagerDriver: ResourceDriver {
    public convenience init(context: ResourceDriverContext) {
        self.init(server: context.server, logger: context.logger)
    }

    public func perform(_ run: ResourceRun, resource: ResourceConfig) async -> ResourceOutcome {
        guard case .volmgr(let settings) = resource.settings else {
            return .failure(reason: "\(resource.name) is not a volmgr resource")
        }
        return await perform(run, settings: settings)
    }

    /// The disk fence detached the file systems; deactivating the volumes may have to wait
    /// until their last user is gone, so it runs in the background, a few times.
    public func fence(group: GroupConfig, resources: [ResourceConfig], server: ServerName) -> Task<Bool, Never>? {
        let runs = resources.compactMap { resource -> (ResourceRun, VolumeManagerSettings)? in
            guard case .volmgr(var settings) = resource.settings else { return nil }
            settings.deactivationRetries = 3
            return (ResourceRun.fenceStop(group: group, resource: resource, server: server), settings)
        }
        guard !runs.isEmpty else { return nil }
        return Task {
            var fenced = true
            for (run, settings) in runs {
                if case .failure(let reason) = await self.perform(run, settings: settings) {
                    self.logger?.error("fencing \(run.resource): \(reason)")
                    fenced = false
                }
            }
            return fenced
        }
    }
}
