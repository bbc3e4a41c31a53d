// `fencing:` — forced stop agents (FencingConfig.swift). The loader checks shape (keys, types,
// durations, the agent type and IPMI action); meaning (names, servers, addresses, ports,
// ranges, which servers no agent covers, files on this machine) is checked by the validator
// (ConfigValidator+Fencing.swift), so a config built in code gets the same checks.
//
// Passwords are never in the YAML: a BMC names the file holding its password, and nothing
// here opens that file (ipmitool reads it with `-f`).

import Yams

extension ConfigReader {
    static let fencingKeys = ["timeout", "on-failure", "check-interval", "delay", "retry-interval", "agents"]
    static let fencingAgentTypes = ["ipmi", "script"]
    static let fencingAgentKeys: [String: [String]] = [
        "ipmi": ["action", "interface", "cipher-suite", "bmc"],
        "script": ["command"],
    ]
    static let bmcKeys = ["address", "port", "user", "password-file"]

    /// The section as written; agents that could not be read are left out (their problems are
    /// reported), so the model holds only complete agents.
    mutating func readFencing(_ field: Field) -> FencingConfig? {
        guard let fields = mapping(field.value, path: field.path, allowed: Self.fencingKeys) else { return nil }
        var fencing = FencingConfig(agents: [])
        if let value = duration(present(fields, "timeout")) { fencing.timeout = value }
        if let value = choice(present(fields, "on-failure"), FencingConfig.OnFailure.self) { fencing.onFailure = value }
        if let value = duration(present(fields, "check-interval")) { fencing.checkInterval = value }
        if let value = duration(present(fields, "delay")) { fencing.delay = value }
        if let value = duration(present(fields, "retry-interval")) { fencing.retryInterval = value }
        if let agents = required(fields, "agents", hint: " (the forced stop agents, tried in order)") {
            if case .sequence(let sequence) = agents.value, sequence.isEmpty {
                error("needs at least one agent (type ipmi or script)", at: agents.value, path: agents.path)
            }
            for (node, itemPath) in items(agents, of: "fencing agents") {
                guard let agent = readFencingAgent(node, path: itemPath) else { continue }
                fencing.agents.append(agent)
                sourceMap.fencingAgentPaths.append(itemPath)
            }
        }
        return fencing
    }

    private mutating func readFencingAgent(_ node: Node, path: String) -> FencingAgentConfig? {
        guard
            let (fields, name, type) = typedElement(
                node, path: path, kind: "fencing agent", types: Self.fencingAgentTypes, typeKeys: Self.fencingAgentKeys)
        else { return nil }
        let comment = string(present(fields, "comment")) ?? ""
        let kind: FencingAgentConfig.Kind?
        switch type {
        case "ipmi":
            kind = readIPMIAgent(fields).map { .ipmi($0) }
        default:
            kind = scriptCommand(required(fields, "command", hint: " (a script path, or a list: program and arguments)"))
                .map { .script(command: $0) }
        }
        guard let kind else { return nil }
        return FencingAgentConfig(name: name, comment: comment, kind: kind)
    }

    /// A wrong action, interface or BMC entry is reported and left out (default action,
    /// entry skipped) rather than dropping the agent, so the validator still checks the rest
    /// of it and every problem is reported at once; the file is refused either way.
    private mutating func readIPMIAgent(_ fields: FieldSet) -> IPMIAgent? {
        var agent = IPMIAgent(bmcs: [:])
        if let action = choice(present(fields, "action"), IPMIAgent.Action.self) { agent.action = action }
        if let interface = string(present(fields, "interface")) { agent.interface = interface }
        if let suite = present(fields, "cipher-suite").flatMap({ int($0) }) { agent.cipherSuite = suite }
        guard let bmc = required(fields, "bmc", hint: " (each server's BMC: address, user, password-file)") else { return nil }
        guard case .mapping(let mapping) = bmc.value else {
            error("expected a mapping of server names to BMCs, got \(describe(bmc.value))", at: bmc.value, path: bmc.path)
            return nil
        }
        for (keyNode, value) in mapping {
            guard case .scalar(let keyScalar) = keyNode, !isNull(keyNode) else {
                error("keys must be server names, got \(describe(keyNode))", at: keyNode, path: bmc.path)
                continue
            }
            let server = keyScalar.string
            let entryPath = Self.join(bmc.path, server)
            if let mark = keyNode.mark { sourceMap.keys[entryPath] = .init(line: mark.line, column: mark.column) }
            record(value, at: entryPath)
            if let endpoint = readBMC(value, path: entryPath) { agent.bmcs[server] = endpoint }
        }
        return agent
    }

    private mutating func readBMC(_ node: Node, path: String) -> BMCEndpoint? {
        guard let fields = mapping(node, path: path, allowed: Self.bmcKeys, context: " for a BMC") else { return nil }
        let address = string(required(fields, "address", hint: " (the BMC's IP address or host name)"))
        var port: Int? = Defaults.ipmiPort
        if let field = present(fields, "port") { port = int(field) }
        let user = string(required(fields, "user", hint: " (the BMC account that may control the chassis)"))
        let passwordFile = self.path(required(fields, "password-file", hint: " (the file holding the BMC password)"))
        guard let address, let port, let user, let passwordFile else { return nil }
        return BMCEndpoint(address: address, port: port, user: user, passwordFile: passwordFile)
    }

    /// `command: scripts/fence/vm-stop.sh` (a path, resolved against the config's folder like
    /// an exec script) or `command: [prog, args...]` (like `os-commands`: a program with a
    /// slash is resolved, a bare name is looked up in PATH when it runs).
    private mutating func scriptCommand(_ field: Field?) -> [String]? {
        guard let field else { return nil }
        if case .sequence = field.value { return command(field) }
        return path(field).map { [$0] }
    }
}
