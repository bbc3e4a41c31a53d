import Foundation
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

// Outside clients of `cluster.rexec-clients` (`clprexec --client NAME --key-file FILE -h
// SERVER` on a host that is not a server): their keys, the control servers' access table, their
// requests and the alerts about refused ones. Members' requests do not pass here.
extension ClusterDaemon {
    /// At most this many distinct refusals are alerted (`trnsv 1`); all are counted.
    static let rexecRefusalAlertLimit = 256

    /// Loads each client's key file. A file that cannot be used is said (`trnsv 2`) and its
    /// client refused; so is one holding the cluster key, which must not leave the servers.
    func loadRexecClientKeys() {
        var keys: [String: ClusterKey] = [:]
        for client in config.cluster.rexecClients {
            do {
                let clientKey = try ClusterKey.load(from: client.keyFile)
                guard clientKey.fingerprint != key.fingerprint else {
                    record(
                        LogEntry(
                            .rexecClientKeyUnusable,
                            "Rexec client \(client.name) is refused: its key file \(client.keyFile) holds the cluster key; give the client a key of its own (`understudy keygen FILE`)."
                        ))
                    continue
                }
                keys[client.name] = clientKey
            } catch {
                let why = String(describing: error).replacingOccurrences(of: "cluster key file", with: "key file")
                record(LogEntry(.rexecClientKeyUnusable, "Rexec client \(client.name) is refused: \(why)."))
            }
        }
        rexecClientKeys = keys
        rexecKeyFileStamps = Self.keyFileStamps(config.cluster.rexecClients)
    }

    /// Every 2 s: a client key file that was replaced, changed or removed since it was read is
    /// read again, so replacing (or deleting) a client's key file on a server revokes the old
    /// key there within seconds, without a configuration change.
    func checkRexecKeyFiles() {
        guard !config.cluster.rexecClients.isEmpty, ContinuousClock.now - lastRexecKeyCheck >= .seconds(2) else { return }
        lastRexecKeyCheck = .now
        guard Self.keyFileStamps(config.cluster.rexecClients) != rexecKeyFileStamps else { return }
        logger.info("a key file of cluster.rexec-clients changed: reading the client keys again")
        rexecConfigurationChanged()
    }

    /// What identifies each key file's current content without reading it: device, inode,
    /// size, mode and change times ("absent" when it cannot be examined).
    static func keyFileStamps(_ clients: [RexecClient]) -> [String: String] {
        var stamps: [String: String] = [:]
        for client in clients {
            var info = stat()
            guard stat(client.keyFile, &info) == 0 else {
                stamps[client.keyFile] = "absent"
                continue
            }
            stamps[client.keyFile] =
                "\(info.st_dev):\(info.st_ino):\(info.st_size):\(info.st_mode):\(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec):\(info.st_ctim.tv_sec).\(info.st_ctim.tv_nsec)"
        }
        return stamps
    }

    /// What the control servers accept besides members, for the running configuration.
    func controlAccess() -> ControlAccess {
        ControlAccess(
            clients: rexecClientKeys, members: Set(config.serverNames),
            clientHandler: { [weak self] request in
                guard let self else { return ControlClientAnswer(payload: [], denied: true) }
                return await self.handleRexecClient(request)
            },
            onRefusal: { [weak self] refusal in
                Task { await self?.rexecRefused(refusal) }
            })
    }

    /// A new configuration: reload the client keys and give every control server the new table.
    func rexecConfigurationChanged() {
        loadRexecClientKeys()
        let access = controlAccess()
        for entry in controlServers { entry.server?.setAccess(access) }
    }

    /// A verified client's request: carried out as a member's clprexec would be, if allowed.
    func handleRexecClient(_ request: ControlRequest) async -> ControlClientAnswer {
        let client = request.peerName
        switch RexecAuthorization.decide(client: client, payload: request.payload, clients: config.cluster.rexecClients, server: me) {
        case .denied(let result):
            return ControlClientAnswer(payload: WireJSON.encode(result), denied: true)
        case .allowed(let decoded):
            let result: CommandResult
            switch decoded {
            case .failover(let group):
                result = await execute(.moveGroup(group, to: nil), origin: me, forwarded: false)
            case .script(let name, let seconds):
                result = await runRemoteScript(name, timeout: .seconds(seconds), origin: client)
            case .notice(let monitor, let category, let keyword, let clear):
                result = await execute(
                    .externalNotice(monitor: monitor, category: category, keyword: keyword, clear: clear, server: nil), origin: me,
                    forwarded: false)
            }
            logger.info(
                "rexec client \(client) from \(request.remoteAddress?.ipAddress ?? "?"): \(decoded.permission.rawValue) -> \(result.code.rawValue)"
            )
            return ControlClientAnswer(payload: WireJSON.encode(result), denied: false)
        }
    }

    /// Alerts a refused outside request once per client (or unknown sender) and reason.
    func rexecRefused(_ refusal: ControlRefusal) {
        let known = rexecClientKeys[refusal.sender] != nil || config.cluster.rexecClients.contains { $0.name == refusal.sender }
        // Unknown names are chosen by the sender: one alert for all of them.
        let subject = known ? refusal.sender : "(unknown)"
        let reportKey = "\(refusal.reason.rawValue)|\(subject)"
        guard !rexecRefusalsReported.contains(reportKey), rexecRefusalsReported.count < Self.rexecRefusalAlertLimit else { return }
        rexecRefusalsReported.insert(reportKey)
        let name = refusal.sender.isEmpty ? "without a valid name" : "named \(refusal.sender)"
        let why: String
        switch refusal.reason {
        case .clientBadMAC:
            why =
                "Rexec client \(refusal.sender) from \(refusal.sourceAddress) was refused: its request did not verify under the client's key (a wrong key file, or a replayed request)."
        case .clientDenied:
            why =
                "Rexec client \(refusal.sender) from \(refusal.sourceAddress) was refused a request its allow list does not name (or an unreadable one)."
        default:
            why =
                "A control request from \(refusal.sourceAddress) \(name) was refused: it is neither a server nor a client of cluster.rexec-clients, or its key is wrong."
        }
        record(LogEntry(.rexecRefused, why + " Said once per client and reason; the control counters in clpstat count every one."))
    }
}
