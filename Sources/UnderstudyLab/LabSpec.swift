import Foundation

/// What a lab is made of: how many servers, whether a second interconnect link exists, the
/// subnets and the cluster timings. Every name the lab creates starts with `prefix`, so labs
/// with different prefixes never clash.
///
/// Addresses (only ever inside the lab's own namespaces):
/// - public LAN `10.200.<subnet>.0/24`: server *i* (node*i*) at `.10+i`, the client at `.100`;
/// - interconnect (when `secondLink`) `10.201.<subnet>.0/24`: server *i* at `.10+i`.
public struct LabSpec: Codable, Sendable, Equatable {
    public var prefix: String
    public var servers: Int
    public var secondLink: Bool
    public var subnet: Int
    public var heartbeatInterval: String
    public var heartbeatTimeoutMilliseconds: Int
    public var syncWait: String
    /// One group `grp1` (all servers, node1 first) with an exec resource whose scripts record.
    public var withGroup: Bool
    /// `none`, `stop-service`, `shutdown` or `reboot` (the OS commands only record).
    public var partitionAction: String
    /// `majority`; `ping`: pingnp with the client as target (it stands for the gateway);
    /// `http`: httpnp with the witness on the client (`Lab.startWitness`);
    /// `auto`: ping for two servers (a majority of two cannot survive a split), else majority.
    public var resolution: String
    var effectiveResolution: String { resolution == "auto" ? (servers <= 2 ? "ping" : "majority") : resolution }
    /// `timeout` of the pingnp entry.
    public var pingTimeout: String
    /// The lab's folder (config, key, state dirs, logs, lab.json).
    public var folder: String
    /// More `heartbeats:` entries (YAML list items, indented by two spaces), after the LAN
    /// paths: a `diskhb` on a loop device, a `comhb` on a pty pair.
    public var extraHeartbeats: String?
    /// A shared disk: an image in the lab's folder that every server sees through a loop device
    /// of its own (as two hosts see one LUN), bind-mounted on `sharedDiskPath` inside that
    /// server's mount namespace; ext4 with `mmp`. One kernel shares one block device's
    /// superblock between mount namespaces, so only a device per server makes a second mount
    /// a second host's, which MMP refuses.
    public var sharedDisk: Bool?

    /// Where every server sees its device of the shared disk.
    public var sharedDiskPath: String { folder + "/shared-disk" }
    public var sharedDiskImage: String { folder + "/shared-disk.img" }
    public var sharedMountPoint: String { folder + "/shared" }

    public init(
        prefix: String = "uslab", servers: Int = 2, secondLink: Bool = false, subnet: Int = 0,
        heartbeatInterval: String = "200ms", heartbeatTimeoutMilliseconds: Int = 1500, syncWait: String = "2s",
        withGroup: Bool = true, partitionAction: String = "none", resolution: String = "auto", pingTimeout: String = "1s",
        folder: String? = nil
    ) {
        self.resolution = resolution
        self.pingTimeout = pingTimeout
        self.prefix = prefix
        self.servers = servers
        self.secondLink = secondLink
        self.subnet = subnet
        self.heartbeatInterval = heartbeatInterval
        self.heartbeatTimeoutMilliseconds = heartbeatTimeoutMilliseconds
        self.syncWait = syncWait
        self.withGroup = withGroup
        self.partitionAction = partitionAction
        self.folder = folder ?? LabSpec.defaultFolder(prefix: prefix)
    }

    public static func defaultFolder(prefix: String) -> String { "/tmp/understudy-lab-" + prefix }

    /// A prefix unique enough for parallel labs: `ul` and 6 hex digits.
    public static func uniquePrefix() -> String {
        "ul" + String(UInt32.random(in: 0...0xFF_FFFF), radix: 16).leftPadded(to: 6)
    }

    public func validate() throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyz0123456789")
        guard !prefix.isEmpty, prefix.count <= 24, prefix.allSatisfy({ allowed.contains($0) }) else {
            throw LabError("the prefix must be 1 to 24 lowercase letters or digits, not '\(prefix)'")
        }
        guard (1...LabSpec.maxServers).contains(servers) else {
            throw LabError("a lab has 1 to \(LabSpec.maxServers) servers, not \(servers)")
        }
        guard (0...255).contains(subnet) else { throw LabError("the subnet index is 0 to 255, not \(subnet)") }
        guard ["auto", "majority", "ping", "http"].contains(resolution) else {
            throw LabError("unknown partition resolution '\(resolution)' (auto, majority, ping or http)")
        }
        guard ["none", "stop-service", "shutdown", "reboot"].contains(partitionAction) else {
            throw LabError("unknown network-partition action '\(partitionAction)'")
        }
    }

    // MARK: - Names

    public var serverNames: [String] { (1...max(servers, 1)).map { "node\($0)" } }
    /// The pseudo-member name of the client in link, partition and netem calls.
    public static let client = "client"

    public var bridgeNamespace: String { prefix + "-net" }
    public var clientNamespace: String { prefix + "-client" }
    public func namespace(of member: String) -> String { prefix + "-" + member }
    /// Every namespace of the lab, the bridge's last.
    public var namespaces: [String] { serverNames.map(namespace(of:)) + [clientNamespace, bridgeNamespace] }

    /// True when `name` is a namespace this spec's prefix could have created (any server count).
    public static func isLabNamespace(_ name: String, prefix: String) -> Bool {
        guard name.hasPrefix(prefix + "-") else { return false }
        let rest = name.dropFirst(prefix.count + 1)
        if rest == "net" || rest == "client" { return true }
        guard rest.hasPrefix("node"), let number = Int(rest.dropFirst(4)) else { return false }
        return number >= 1 && number <= maxServers
    }

    /// The most servers a lab holds: their addresses (.11 to .42) stay below the floating
    /// addresses of the benchmarks (.50 and up) and the client (.100).
    public static let maxServers = 32

    func index(of member: String) throws -> Int {
        if member == LabSpec.client { return 0 }
        guard let index = serverNames.firstIndex(of: member) else {
            throw LabError("no member '\(member)' in this lab (servers \(serverNames.joined(separator: ", ")), or client)")
        }
        return index + 1
    }

    // MARK: - Addresses and interfaces

    public func publicAddress(of member: String) -> String {
        member == LabSpec.client ? "10.200.\(subnet).100" : "10.200.\(subnet).\(10 + ((try? index(of: member)) ?? 0))"
    }

    public func interconnectAddress(of server: String) -> String? {
        guard secondLink, server != LabSpec.client else { return nil }
        return "10.201.\(subnet).\(10 + ((try? index(of: server)) ?? 0))"
    }

    /// The addresses of `member` on every link it has.
    public func addresses(of member: String) -> [String] {
        [publicAddress(of: member)] + (interconnectAddress(of: member).map { [$0] } ?? [])
    }

    /// The interface inside the member's namespace, and its peer (the bridge port) in the
    /// bridge namespace.
    func interfaces(of member: String, link: LabLink) throws -> (inside: String, bridgePort: String) {
        let index = try index(of: member)
        switch link {
        case .publicLAN: return ("eth0", member == LabSpec.client ? "pc" : "p\(index)")
        case .interconnect:
            guard secondLink, member != LabSpec.client else { throw LabError("\(member) has no interconnect link in this lab") }
            return ("eth1", "i\(index)")
        }
    }

    // MARK: - Files

    public var configPath: String { folder + "/cluster.yaml" }
    public var keyPath: String { folder + "/cluster.key" }
    public var recordsPath: String { folder + "/records.log" }
    public var osActionsPath: String { folder + "/os-actions.log" }
    public var statePath: String { folder + "/lab.json" }
    public func stateDirectory(of server: String) -> String { folder + "/" + server }
    public func logPath(of server: String) -> String { folder + "/" + server + ".log" }
    public func socketPath(of server: String) -> String { stateDirectory(of: server) + "/understudy.sock" }

    /// The `cluster.yaml`: lanhb on the interconnect (when present, first: the control channel
    /// prefers the first LAN path and falls back to the public LAN) and on the public LAN; majority partition resolution; OS
    /// commands that append to `os-actions.log`.
    public func yaml() -> String {
        func map(_ address: (String) -> String?) -> String {
            serverNames.compactMap { server in address(server).map { "\(server): \($0)" } }.joined(separator: ", ")
        }
        var heartbeats = ""
        if secondLink {
            heartbeats += """
                  - name: lanhb1
                    type: lanhb
                    addresses: {\(map(interconnectAddress(of:)))}

                """
        }
        heartbeats += """
              - name: lanhb\(secondLink ? 2 : 1)
                type: lanhb
                addresses: {\(map(publicAddress(of:)))}

            """
        if let extraHeartbeats { heartbeats += extraHeartbeats.hasSuffix("\n") ? extraHeartbeats : extraHeartbeats + "\n" }
        var text = """
            # Written by the Understudy lab (prefix \(prefix)).
            cluster:
              name: lab\(prefix)
              comment: network namespace lab
              secret-file: cluster.key
              timing:
                heartbeat-interval: \(heartbeatInterval)
                heartbeat-timeout: \(heartbeatTimeoutMilliseconds)ms
                sync-wait: \(syncWait)
              network-partition:
                action: \(partitionAction)
              ports: {control: 29001, heartbeat: 29002, http: 29003}
              os-commands:
                shutdown: [/bin/sh, -c, "echo shutdown >> '\(osActionsPath)'"]
                reboot: [/bin/sh, -c, "echo reboot >> '\(osActionsPath)'"]

            servers:
            \(serverNames.map { "  - name: \($0)" }.joined(separator: "\n"))

            heartbeats:
            \(heartbeats)
            network-partition:
            \(partitionEntry)

            """
        if withGroup {
            text += """
                groups:
                  - name: grp1
                    resources:
                      - name: grp1-app
                        type: exec
                        start: scripts/start.sh
                        stop: scripts/stop.sh
                        start-mode: sync
                        timeout: 30s
                        stop-timeout: 30s

                """
        }
        return text
    }

    var partitionEntry: String {
        switch effectiveResolution {
        case "ping":
            return "  - name: pingnp1\n    type: pingnp\n    targets: [\(publicAddress(of: LabSpec.client))]\n    timeout: \(pingTimeout)"
        case "http":
            return "  - name: httpnp1\n    type: httpnp\n    host: \(publicAddress(of: LabSpec.client))\n    port: \(LabSpec.witnessPort)"
        default:
            return "  - name: majority1\n    type: majority"
        }
    }

    /// The port of the witness server on the client (`Lab.startWitness`).
    public static let witnessPort = 8780

    /// A `witnesshb` entry through the witness on the client, for `extraHeartbeats`.
    public func witnessHeartbeatEntry(name: String = "witnesshb1") -> String {
        "  - name: \(name)\n    type: witnesshb\n    host: \(publicAddress(of: LabSpec.client))\n    port: \(LabSpec.witnessPort)\n"
    }

    /// The witness server's log.
    public var witnessLogPath: String { folder + "/witness.log" }

    /// Writes an executable script at `relativePath` in the lab's folder (for resources a test
    /// or a run adds).
    public func writeScript(_ relativePath: String, _ body: String) throws {
        let path = folder + "/" + relativePath
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try body.write(toFile: path, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: path)
    }

    /// Appends YAML (a `groups:` section) to the lab's `cluster.yaml`.
    public func appendToConfig(_ yaml: String) throws {
        let config = try String(contentsOfFile: configPath, encoding: .utf8)
        try (config + "\n" + yaml).write(toFile: configPath, atomically: true, encoding: .utf8)
    }

    /// The exec resource's script: one line per run in `records.log` — action, server,
    /// time in nanoseconds.
    func script(action: String) -> String {
        """
        #!/bin/sh
        printf '%s\\t%s\\t%s\\n' '\(action)' "$CLP_SERVER_LOCAL" "$(date +%s%N)" >> '\(recordsPath)'
        exit 0

        """
    }
}

/// A link of a lab member.
public enum LabLink: String, Codable, Sendable, CaseIterable {
    case publicLAN = "public"
    case interconnect
}

/// Which way `tc netem` impairs a link: what the member sends, what it receives, or both.
public enum LabDirection: String, Codable, Sendable, CaseIterable {
    case outgoing, incoming, both
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
