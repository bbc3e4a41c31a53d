import Foundation
import Logging
import UnderstudyEngine
import UnderstudyModel

/// The `nas` resource: an NFS share mounted as a client on the server that runs the group
/// (reference §5.3). Start: the NFS server must answer an ICMP echo (`ping-server`), the
/// mount point must be free; then the mount with the timeout and retries of `disk`. Stop and
/// fence: as `disk` (unmount with retries and the users stopped; SIGKILL and a lazy unmount).
public final class NASDriver: Sendable {
    let mounter: Mounter
    let logger: Logger?

    public init(options: StorageDriverOptions = StorageDriverOptions(), logger: Logger? = nil) {
        self.mounter = Mounter(options: options, logger: logger)
        self.logger = logger
    }

    public func perform(_ run: ResourceRun, settings: NASSettings) async -> ResourceOutcome {
        do {
            switch run.operation {
            case .start: try await activate(settings, resource: run.resource)
            case .stop: try await mounter.unmount(settings: settings.mount, resource: run.resource)
            }
            return .success(asyncPID: nil)
        } catch {
            logger?.error("nas \(run.resource) \(run.operation.rawValue) failed: \(error.reason)")
            return .failure(reason: error.reason)
        }
    }

    /// `server:/share`, with brackets around an IPv6 address.
    static func source(_ settings: NASSettings) -> String {
        let host = settings.server.contains(":") ? "[\(settings.server)]" : settings.server
        return host + ":" + settings.share
    }

    func activate(_ settings: NASSettings, resource: String) async throws(StorageFailure) {
        let source = Self.source(settings)
        if let existing = MountTable.entry(at: settings.mountPoint, in: MountTable.current()) {
            if existing.source == source { return }
            throw StorageFailure("mount point \(settings.mountPoint) is in use: \(existing.source) is mounted there")
        }
        if settings.pingServer {
            // ICMP echo from the daemon's own socket (no `ping` process).
            if !(await PingProbe().anyReachable([settings.server], timeout: .seconds(2))) {
                throw StorageFailure("NFS server \(settings.server) does not answer ICMP echo")
            }
        }
        try mounter.prepareMountPoint(settings.mountPoint)
        _ = try await mounter.mount(source: source, filesystem: settings.filesystem, settings: settings.mount, resource: resource) {
            _ in
        }
    }
}

extension NASDriver: ResourceDriver {
    public convenience init(context: ResourceDriverContext) {
        self.init(logger: context.logger)
    }

    public func perform(_ run: ResourceRun, resource: ResourceConfig) async -> ResourceOutcome {
        guard case .nas(let settings) = resource.settings else { return .failure(reason: "\(resource.name) is not a nas resource") }
        return await perform(run, settings: settings)
    }

    public func fence(group: GroupConfig, resources: [ResourceConfig], server: ServerName) -> Task<Bool, Never>? {
        for resource in resources {
            if case .nas(let settings) = resource.settings { mounter.detach(settings: settings.mount, resource: resource.name) }
        }
        return nil
    }
}
