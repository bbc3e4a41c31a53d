// `fencing:` meaning: agent names, the servers each BMC belongs to, addresses, ports, IPMI
// user names and interfaces, the section's durations, and that every server can be stopped
// by some agent. Files on this machine (password files, scripts) are warnings, as everywhere:
// a configuration may be checked far from its servers. The shape is checked while loading
// (ConfigLoader+Fencing.swift).

import Foundation

extension Validator {
    /// ipmitool's `-I` values for IPMI over LAN.
    static let ipmiInterfaces = ["lanplus", "lan"]
    /// IPMI 2.0 user names are at most 16 bytes (ipmitool refuses longer ones).
    static let ipmiUserMaximumBytes = 16

    mutating func checkFencing() {
        guard let fencing = config.fencing else { return }
        checkFencingTiming(fencing)
        if fencing.agents.isEmpty {
            error("needs at least one agent (type ipmi or script)", at: "fencing.agents", atKey: true)
        }
        var names: [(String, String)] = []
        for (index, agent) in fencing.agents.enumerated() {
            let path = sourceMap.fencingAgentPath(index)
            names.append((agent.name, path + ".name"))
            checkObjectName(agent.name, at: path + ".name")
            switch agent.kind {
            case .ipmi(let ipmi):
                checkIPMIAgent(ipmi, name: agent.name, at: path)
            case .script(let command):
                checkFencingScript(command, at: path + ".command")
            }
        }
        checkDuplicates(names, what: "fencing agent")
        guard !fencing.agents.isEmpty else { return }
        for server in serverNames where !fencing.covers(server) {
            if fencing.onFailure == .cancel {
                error(
                    "no agent can stop server \(server) (no ipmi agent lists its BMC and there is no script agent): with on-failure: cancel its groups could never fail over when it is lost; add its BMC, add a script agent, or set on-failure: failover",
                    at: "fencing.agents", atKey: true)
            } else {
                warning(
                    "no agent can stop server \(server) (no ipmi agent lists its BMC and there is no script agent): when it is lost its groups start elsewhere without a forced stop",
                    at: "fencing.agents", atKey: true)
            }
        }
    }

    private mutating func checkFencingTiming(_ fencing: FencingConfig) {
        checkPositive(fencing.timeout, at: "fencing.timeout")
        checkPositive(fencing.retryInterval, at: "fencing.retry-interval")
        if fencing.checkInterval < .zero {
            error("must not be negative, got \(fencing.checkInterval.configText)", at: "fencing.check-interval")
        } else if fencing.checkInterval > .zero, fencing.checkInterval < .seconds(1) {
            error(
                "must be 0s (no periodic check) or at least 1s, got \(fencing.checkInterval.configText)", at: "fencing.check-interval")
        }
        if fencing.delay < .zero {
            error("must not be negative, got \(fencing.delay.configText)", at: "fencing.delay")
        } else if !sourceMap.clusterSettingsMissing, fencing.delay >= config.cluster.timing.heartbeatTimeout {
            let timeout = config.cluster.timing.heartbeatTimeout.configText
            error(
                "must be shorter than cluster.timing.heartbeat-timeout (\(timeout)), got \(fencing.delay.configText): a lower-ranked server waits this long before stopping a lost master, after already waiting the heartbeat timeout to declare it lost, so the master's groups would stay down more than twice the timeout after a real failure; a few seconds are enough for the master to win a split",
                at: "fencing.delay")
        }
    }

    private mutating func checkIPMIAgent(_ ipmi: IPMIAgent, name: String, at path: String) {
        if !Self.ipmiInterfaces.contains(ipmi.interface) {
            error(
                "expected one of \(Self.ipmiInterfaces.listed); got \"\(ConfigReader.clip(ipmi.interface))\"\(Suggestion.didYouMean(ipmi.interface, in: Self.ipmiInterfaces))",
                at: path + ".interface")
        }
        if let suite = ipmi.cipherSuite, !(0...17).contains(suite) {
            error("must be an IPMI 2.0 cipher suite, 0 to 17 (usually 3 or 17), got \(suite)", at: path + ".cipher-suite")
        }
        if ipmi.cipherSuite != nil && ipmi.interface == "lan" {
            error("applies to interface lanplus only (IPMI 1.5 has no cipher suites)", at: path + ".cipher-suite")
        }
        if ipmi.bmcs.isEmpty {
            error("lists no server's BMC, so this agent can stop no server", at: path + ".bmc")
        }
        for server in ipmi.bmcs.keys.sorted() {
            guard let endpoint = ipmi.bmcs[server] else { continue }
            let base = path + ".bmc." + server
            checkServerReference(server, at: base, atKey: true, context: "the bmc of fencing agent \(name)")
            checkBMCAddress(endpoint.address, at: base + ".address")
            checkPort(endpoint.port, at: base + ".port")
            if endpoint.user.trimmingWhitespace().isEmpty {
                error("must not be empty (the BMC account that may control the chassis)", at: base + ".user")
            } else if endpoint.user.utf8.count > Self.ipmiUserMaximumBytes {
                error(
                    "an IPMI user name is at most \(Self.ipmiUserMaximumBytes) bytes, got \(endpoint.user.utf8.count)", at: base + ".user")
            } else if endpoint.user.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 }) {
                error("must not contain control characters", at: base + ".user")
            }
            checkPasswordFile(endpoint.passwordFile, at: base + ".password-file")
        }
    }

    /// An IP address or a host name; all-numeric dotted text must be a valid IPv4 address
    /// (`10.1.0.300` is a typo, not a host name).
    private mutating func checkBMCAddress(_ address: String, at path: String) {
        let labels = address.split(separator: ".", omittingEmptySubsequences: false)
        let numeric = !address.isEmpty && labels.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0.isASCII && $0.isNumber } }
        if numeric, !IPAddressSyntax.isIPv4(address) {
            error("\"\(ConfigReader.clip(address))\" is not a valid IPv4 address", at: path)
        } else {
            checkHost(address, at: path)
        }
    }

    /// Like the cluster's secret file: absolute (the loader resolves relative ones), and on
    /// this machine present, a file, and readable by its owner only. Only its metadata is
    /// looked at, never its content.
    private mutating func checkPasswordFile(_ file: String, at path: String) {
        guard !file.isEmpty else {
            error("missing required key (the file holding the BMC password)", at: path)
            return
        }
        guard file.hasPrefix("/") else {
            error("must be an absolute path, got \(ConfigReader.clip(file))", at: path)
            return
        }
        guard checkFiles else { return }
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) {
            warning("BMC password file \(file) does not exist on this machine; forced stops through it will fail", at: path)
        } else if isDirectory.boolValue {
            warning("BMC password file \(file) is a directory", at: path)
        } else if let attributes = try? FileManager.default.attributesOfItem(atPath: file),
            let permissions = (attributes[.posixPermissions] as? NSNumber)?.intValue, permissions & 0o077 != 0
        {
            warning(
                "BMC password file \(file) is readable by other users (mode \(String(permissions, radix: 8))); use chmod 600", at: path)
        }
    }

    /// Like exec scripts: a program given by path must exist and be executable on this
    /// machine (a warning); a bare name is looked up in PATH when it runs.
    private mutating func checkFencingScript(_ command: [String], at path: String) {
        guard let program = command.first, !program.trimmingWhitespace().isEmpty else {
            error("expected a script path or a command and its arguments, got nothing", at: path)
            return
        }
        if program.hasPrefix("/") {
            checkFileExists(program, at: path, what: "fencing script", executable: true)
        }
    }
}
