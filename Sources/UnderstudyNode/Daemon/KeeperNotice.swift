import Foundation
import Logging
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// What the daemon wrote on its keeper's standard input before it went: `clean` (it exits
/// normally) and the newest `run N DIGEST` (see `Keeper.tell`).
struct DaemonWords: Equatable {
    var clean = false
    var run: UInt64?
    var digest: String?

    /// Parses the lines; unknown or malformed ones are ignored (the daemon is this binary).
    init(text: String) { take(text) }

    /// Takes complete lines into account, later ones over earlier ones.
    mutating func take(_ text: some StringProtocol) {
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ")
            if words.first == "clean" { clean = true }
            if words.count == 3, words[0] == "run", let run = UInt64(words[1]) {
                self.run = run
                digest = String(words[2])
            }
        }
    }

    /// Reads until end of file: the daemon closed its end, by exiting or by dying. Lines are
    /// taken as they complete, so memory stays at one line however long the daemon ran.
    static func read(_ input: FileHandle) -> DaemonWords {
        var words = DaemonWords(text: "")
        var pending = Data()
        while true {
            let chunk = input.availableData
            if chunk.isEmpty { break }
            pending.append(chunk)
            if let end = pending.lastIndex(of: 10) {
                words.take(String(decoding: pending[..<end], as: UTF8.self))
                pending = Data(pending[pending.index(after: end)...])
            }
            // A line longer than any the daemon writes is garbage: dropped.
            if pending.count > 1 << 16 { pending.removeAll() }
        }
        words.take(String(decoding: pending, as: UTF8.self))
        return words
    }
}

/// The keeper's notice to the peers that its daemon's run died and holds nothing
/// (KeeperNotices.swift in the Engine): sent only when everything it rests on holds.
struct KeeperNotice {
    var server: ServerName
    var boot: UInt64?
    var run: UInt64?
    /// The keeper fenced with the configuration the daemon last ran.
    var digestMatches: Bool
    var key: ClusterKey?
    /// Every process of the daemon died within the keeper's limit.
    var allKilled: Bool
    /// Every driver's fence succeeded.
    var fenced: Bool
    /// The daemon's pid (the keeper's parent until the daemon is gone).
    var daemon: pid_t
    /// `disk` resources whose device a file system still holds after the fence.
    var heldDisks: [String] = []

    /// Resource types whose fence the keeper can vouch for: processes killed and waited for,
    /// addresses removed, a disk's file system shut down (its device opens exclusively,
    /// `heldDisks`). A `nas` mount is only detached lazily with nothing to check it by, and a
    /// volume or a VM has no such check here: groups with those keep the usual path, a timeout
    /// and the takeover margin.
    static let vouchedTypes: Set<ResourceType> = [.exec, .fip, .vip, .disk]

    /// Why no notice may go, or nil.
    func refusal(config: ClusterConfig) -> String? {
        guard boot != nil, run != nil else { return "the daemon never said which run it was" }
        guard key != nil else { return "the cluster key could not be read when the keeper started" }
        guard digestMatches else { return "the keeper's configuration is not the one the daemon ran" }
        guard allKilled else { return "processes of the daemon did not die" }
        guard fenced else { return "a resource could not be fenced" }
        if let disk = heldDisks.first { return "the file system of \(disk) still holds its device (or it is a raw device)" }
        let held = config.groups.filter { $0.servers.contains(server) }.flatMap(\.resources)
        if let other = held.first(where: { !Self.vouchedTypes.contains($0.type) }) {
            return "resource \(other.name) is of type \(other.type.rawValue), whose release the keeper cannot confirm"
        }
        guard Self.waitUntilGone(daemon) else { return "the daemon (pid \(daemon)) still runs" }
        return nil
    }

    /// The keeper is reparented when the daemon's exit completes: its end of the pipe closes a
    /// moment earlier, so this waits for it (at most 2 s).
    static func waitUntilGone(_ daemon: pid_t) -> Bool {
        for _ in 0..<1000 {
            if getppid() != daemon { return true }
            usleep(2000)
        }
        return false
    }

    /// Tells every peer on every LAN heartbeat path, three times each, from this server's
    /// address there; or says why not.
    func send(config: ClusterConfig, logger: Logger) async {
        if let reason = refusal(config: config) {
            logger.warning("not telling the peers that the daemon died (they take over after its timeout): \(reason)")
            return
        }
        guard let boot, let run, let key else { return }
        let payload = KeeperNoticeWire.encode(KeeperNoticeWire.Notice(server: server, instance: ServerInstance(boot: boot, run: run)))
        let port = config.cluster.ports.heartbeat
        var told: [String] = []
        for heartbeat in config.heartbeats {
            guard case .lan(let addresses) = heartbeat.kind, let own = addresses[server] else { continue }
            let socket: HeartbeatSocket
            do {
                // Far above any sequence the daemon used: the peers' replay guards take it.
                socket = try await HeartbeatSocket.bind(
                    host: own, port: 0, key: key, localName: server, bootID: boot, firstSequence: 1 << 62)
            } catch {
                logger.error("cannot tell the peers on \(heartbeat.name): \(error)")
                continue
            }
            let peers = addresses.filter { $0.key != server }.map(\.value).sorted()
            for copy in 0..<3 {
                if copy > 0 { try? await Task.sleep(for: .milliseconds(2)) }
                for address in peers { await socket.send(payload, to: address, port: port) }
            }
            await socket.close()
            told.append(heartbeat.name)
        }
        if !told.isEmpty {
            logger.critical(
                "told the peers on \(told.joined(separator: ", ")) that run \(boot).\(run) of this daemon died and holds nothing")
        }
    }
}
