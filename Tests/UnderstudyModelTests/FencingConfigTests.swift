import Foundation
import Testing

@testable import UnderstudyModel

/// `fencing:`: a full section into exact values, the defaults, each mistake with its key path
/// and line, files on this machine, redaction, reflection, and random mutations.
@Suite("Config: fencing")
struct FencingConfigTests {
    /// `baseCluster` + the fencing text; the text starts on line 12.
    func withFencing(_ text: String) -> String { baseCluster + text }

    static let full = """
        fencing:
          timeout: 45s
          on-failure: failover
          check-interval: 0s
          delay: 7s
          retry-interval: 20s
          agents:
            - name: bmc
              type: ipmi
              comment: rack BMCs
              action: power-cycle
              interface: lan
              bmc:
                node1: {address: 10.1.0.1, port: 6230, user: admin, password-file: /etc/understudy/bmc-node1.pass}
                node2: {address: bmc2.example.com, user: operator, password-file: bmc-node2.pass}
            - name: vm
              type: script
              command: scripts/fence/vm-stop.sh
            - {name: virsh, type: script, command: [fence_virsh, --quiet, scripts/x]}
            - {name: local, type: script, command: [bin/fence, -n]}

        """

    /// Valid; each error case below edits one thing. Line 12 is `fencing:`.
    static let minimal = """
        fencing:
          agents:
            - name: bmc
              type: ipmi
              bmc:
                node1: {address: 10.1.0.1, user: admin, password-file: /etc/understudy/n1.pass}
                node2: {address: 10.1.0.2, user: admin, password-file: /etc/understudy/n2.pass}

        """

    @Test func fullSectionLoadsIntoExactValues() throws {
        let loaded = try load(withFencing(Self.full), sourcePath: "/etc/understudy/cluster.yaml")
        let expected = FencingConfig(
            agents: [
                FencingAgentConfig(
                    name: "bmc", comment: "rack BMCs",
                    kind: .ipmi(
                        IPMIAgent(
                            action: .powerCycle, interface: "lan",
                            bmcs: [
                                "node1": BMCEndpoint(
                                    address: "10.1.0.1", port: 6230, user: "admin", passwordFile: "/etc/understudy/bmc-node1.pass"),
                                "node2": BMCEndpoint(
                                    address: "bmc2.example.com", port: 623, user: "operator",
                                    passwordFile: "/etc/understudy/bmc-node2.pass"),
                            ]))),
                // A path alone is resolved against the file's folder, like an exec script.
                FencingAgentConfig(name: "vm", kind: .script(command: ["/etc/understudy/scripts/fence/vm-stop.sh"])),
                // A list is a command: a bare program is left for PATH, arguments as written.
                FencingAgentConfig(name: "virsh", kind: .script(command: ["fence_virsh", "--quiet", "scripts/x"])),
                // A program with a slash is resolved.
                FencingAgentConfig(name: "local", kind: .script(command: ["/etc/understudy/bin/fence", "-n"])),
            ],
            timeout: .seconds(45), onFailure: .failover, checkInterval: .zero, delay: .seconds(7), retryInterval: .seconds(20))
        #expect(loaded.config.fencing == expected)
        #expect(!loaded.warnings.contains { $0.keyPath.hasPrefix("fencing") }, "\(loaded.warnings)")
        let fencing = try #require(loaded.config.fencing)
        #expect(fencing.agents(for: "node1").map(\.name) == ["bmc", "vm", "virsh", "local"])
        #expect(fencing.agents(for: "node3").map(\.name) == ["vm", "virsh", "local"])
    }

    @Test func cipherSuite() throws {
        let yaml = withFencing(Self.minimal.replacingOccurrences(of: "      bmc:", with: "      cipher-suite: 3\n      bmc:"))
        guard case .ipmi(let agent)? = try load(yaml).config.fencing?.agents.first?.kind else {
            Issue.record("no ipmi agent")
            return
        }
        #expect(agent.cipherSuite == 3)
        guard case .ipmi(let plain)? = try load(withFencing(Self.minimal)).config.fencing?.agents.first?.kind else { return }
        #expect(plain.cipherSuite == nil, "ipmitool's own choice unless set")
    }

    @Test func defaults() throws {
        let config = try load(withFencing(Self.minimal)).config
        let fencing = try #require(config.fencing)
        #expect(fencing.timeout == Defaults.fencingTimeout && Defaults.fencingTimeout == .seconds(30))
        #expect(fencing.onFailure == .cancel)
        #expect(fencing.checkInterval == Defaults.fencingCheckInterval && Defaults.fencingCheckInterval == .seconds(60))
        #expect(fencing.delay == Defaults.fencingDelay && Defaults.fencingDelay == .seconds(5))
        #expect(fencing.retryInterval == Defaults.fencingRetryInterval && Defaults.fencingRetryInterval == .seconds(30))
        guard case .ipmi(let ipmi) = try #require(fencing.agents.first).kind else {
            Issue.record("not an ipmi agent: \(fencing.agents)")
            return
        }
        #expect(ipmi.action == .powerOff)
        #expect(ipmi.interface == "lanplus")
        #expect(ipmi.bmcs["node1"] == BMCEndpoint(address: "10.1.0.1", port: 623, user: "admin", passwordFile: "/etc/understudy/n1.pass"))
        #expect(fencing.agents.first?.comment == "")
    }

    @Test func absentOrEmptyMeansNoFencing() throws {
        #expect(try load(baseCluster).config.fencing == nil)
        #expect(try load(withFencing("fencing:\n")).config.fencing == nil)
    }

    @Test(arguments: [
        // (find, replace with, key path, line, fragment)
        ("  agents:", "  timout: 30s\n  agents:", "fencing.timout", 13, "did you mean \"timeout\""),
        ("  agents:", "  on-failure: stop\n  agents:", "fencing.on-failure", 13, "cancel, failover"),
        ("  agents:", "  timeout: 30\n  agents:", "fencing.timeout", 13, "with a unit"),
        ("  agents:", "  timeout: 0s\n  agents:", "fencing.timeout", 13, "greater than zero"),
        ("  agents:", "  retry-interval: 0s\n  agents:", "fencing.retry-interval", 13, "greater than zero"),
        ("  agents:", "  check-interval: 500ms\n  agents:", "fencing.check-interval", 13, "at least 1s"),
        ("  agents:", "  delay: 90s\n  agents:", "fencing.delay", 13, "heartbeat-timeout (90s)"),
        ("type: ipmi", "type: ipmo", "fencing.agents[0].type", 15, "unknown fencing agent type \"ipmo\" (did you mean \"ipmi\"?)"),
        ("      type: ipmi\n", "", "fencing.agents[0].type", 14, "missing required key"),
        ("name: bmc", "name: bad name", "fencing.agents[0].name", 14, "may hold only"),
        ("      bmc:", "      action: poweroff\n      bmc:", "fencing.agents[0].action", 16, "did you mean \"power-off\""),
        ("      bmc:", "      interface: lanplu\n      bmc:", "fencing.agents[0].interface", 16, "did you mean \"lanplus\""),
        ("      bmc:", "      command: [x]\n      bmc:", "fencing.agents[0].command", 16, "it is a key of script fencing agents"),
        ("      bmc:", "      cipher-suite: 18\n      bmc:", "fencing.agents[0].cipher-suite", 16, "0 to 17"),
        ("      bmc:", "      interface: lan\n      cipher-suite: 3\n      bmc:", "fencing.agents[0].cipher-suite", 17, "lanplus only"),
        ("      bmc:", "      bmc: {}\n      x:", "fencing.agents[0].x", 17, "unknown key"),
        ("address: 10.1.0.1,", "address: 10.1.0.1, port: abc,", "fencing.agents[0].bmc.node1.port", 17, "expected an integer"),
        ("address: 10.1.0.1,", "address: 10.1.0.1, port: 70000,", "fencing.agents[0].bmc.node1.port", 17, "from 1 to 65535"),
        ("address: 10.1.0.1,", "address: 10.1.0.300,", "fencing.agents[0].bmc.node1.address", 17, "not a valid IPv4 address"),
        ("address: 10.1.0.1,", "address: \"bmc one\",", "fencing.agents[0].bmc.node1.address", 17, "not a valid host name or IP address"),
        ("address: 10.1.0.1,", "adress: 10.1.0.1,", "fencing.agents[0].bmc.node1.adress", 17, "did you mean \"address\""),
        ("address: 10.1.0.1,", "address: [10.1.0.1],", "fencing.agents[0].bmc.node1.address", 17, "expected a string"),
        ("        node2:", "        node3:", "fencing.agents[0].bmc.node3", 18, "unknown server \"node3\""),
        (
            "user: admin, password-file: /etc/understudy/n1.pass", "user: admin", "fencing.agents[0].bmc.node1.password-file", 17,
            "missing required key"
        ),
        (
            "user: admin, password-file: /etc/understudy/n1.pass", "user: '', password-file: /etc/understudy/n1.pass",
            "fencing.agents[0].bmc.node1.user", 17, "must not be empty"
        ),
        (
            "user: admin, password-file: /etc/understudy/n1.pass", "user: administrator-of-bmc, password-file: /etc/understudy/n1.pass",
            "fencing.agents[0].bmc.node1.user", 17, "at most 16 bytes"
        ),
        (
            "        node2: {address: 10.1.0.2, user: admin, password-file: /etc/understudy/n2.pass}\n", "", "fencing.agents", 13,
            "no agent can stop server node2"
        ),
        (
            "n2.pass}\n", "n2.pass}\n    - {name: bmc, type: script, command: /bin/true}\n", "fencing.agents[1].name", 19,
            "duplicate fencing agent name \"bmc\""
        ),
        ("n2.pass}\n", "n2.pass}\n    - {name: vm, type: script, command: []}\n", "fencing.agents[1].command", 19, "empty list"),
        ("n2.pass}\n", "n2.pass}\n    - {name: vm, type: script, command: ''}\n", "fencing.agents[1].command", 19, "empty string"),
        ("n2.pass}\n", "n2.pass}\n    - {name: vm, type: script}\n", "fencing.agents[1].command", 19, "missing required key"),
        ("n2.pass}\n", "n2.pass}\n    - {name: vm, type: script, command: {a: b}}\n", "fencing.agents[1].command", 19, "a file path"),
        (
            "n2.pass}\n", "n2.pass}\n    - {name: vm, type: script, command: /bin/true, bmc: {}}\n", "fencing.agents[1].bmc", 19,
            "it is a key of ipmi fencing agents"
        ),
    ])
    func mistake(find: String, replace: String, keyPath: String, line: Int, fragment: String) {
        let yaml = withFencing(Self.minimal)
        #expect(yaml.contains(find), "the test's text has no \(find)")
        expectError(yaml.replacingOccurrences(of: find, with: replace), line: line, keyPath: keyPath, fragment)
    }

    @Test func shapeMistakes() {
        expectError(withFencing("fencing: [a]\n"), line: 12, keyPath: "fencing", "expected a mapping")
        expectError(withFencing("fencing:\n  agents: []\n"), line: 13, keyPath: "fencing.agents", "at least one agent")
        expectError(withFencing("fencing:\n  timeout: 5s\n"), line: 13, keyPath: "fencing.agents", "missing required key")
        expectError(withFencing("fencing:\n  agents: bmc\n"), line: 13, keyPath: "fencing.agents", "expected a list")
        expectError(
            withFencing("fencing:\n  agents:\n    - {name: b, type: ipmi, bmc: [node1]}\n"), line: 14, keyPath: "fencing.agents[0].bmc",
            "mapping of server names")
        expectError(
            withFencing("fencing:\n  agents:\n    - {name: b, type: ipmi, bmc: {node1: 10.1.0.1}}\n"), line: 14,
            keyPath: "fencing.agents[0].bmc.node1", "expected a mapping")
        // An empty `bmc:` covers nobody: named, and each uncovered server too.
        let problems = errors(withFencing("fencing:\n  agents:\n    - {name: b, type: ipmi, bmc: {}}\n"))
        #expect(problems.contains { $0.keyPath == "fencing.agents[0].bmc" && $0.message.contains("can stop no server") })
        #expect(problems.contains { $0.keyPath == "fencing.agents" && $0.message.contains("server node1") })
        #expect(problems.contains { $0.keyPath == "fencing.agents" && $0.message.contains("server node2") })
    }

    @Test func aProblemIsReportedOnce() {
        // A dropped agent does not also count as a missing one or an uncovered server.
        let problems = errors(withFencing(Self.minimal.replacingOccurrences(of: "type: ipmi", with: "type: ipmo")))
        #expect(problems.count == 1, "\(problems)")
    }

    @Test func everyProblemOfAnAgentIsReportedAtOnce() {
        let yaml = withFencing(
            Self.minimal.replacingOccurrences(of: "      bmc:", with: "      action: poweroff\n      bmc:")
                .replacingOccurrences(of: "10.1.0.1,", with: "10.1.0.300,").replacingOccurrences(of: "node2:", with: "node3:"))
        let problems = errors(yaml)
        #expect(
            problems.map(\.keyPath) == [
                "fencing.agents[0].action", "fencing.agents[0].bmc.node1.address", "fencing.agents[0].bmc.node3",
            ], "\(problems)")
        // node2, uncovered, is named once the shape problem inside fencing.agents is fixed
        // (the loader keeps a meaning problem next to a shape problem of the same place out).
        let fixed = errors(yaml.replacingOccurrences(of: "poweroff", with: "power-off"))
        #expect(
            fixed.map(\.keyPath) == ["fencing.agents", "fencing.agents[0].bmc.node1.address", "fencing.agents[0].bmc.node3"],
            "\(fixed)")
        #expect(fixed.first?.message.contains("server node2") == true)
    }

    @Test func uncoveredServerWithFailoverIsAWarning() throws {
        let yaml = withFencing(
            Self.minimal.replacingOccurrences(
                of: "        node2: {address: 10.1.0.2, user: admin, password-file: /etc/understudy/n2.pass}\n", with: ""
            ).replacingOccurrences(of: "  agents:", with: "  on-failure: failover\n  agents:"))
        let loaded = try load(yaml)
        let warning = try #require(loaded.warnings.first { $0.keyPath == "fencing.agents" })
        #expect(warning.message.contains("server node2") && warning.message.contains("without a forced stop"))
        #expect(warning.line == 14)
        #expect(loaded.config.fencing?.covers("node1") == true && loaded.config.fencing?.covers("node2") == false)
    }

    /// The same checks for a configuration built in code (the simulator, tests).
    @Test func validatorChecksAConfigBuiltInCode() {
        var config = ClusterConfig(
            cluster: ClusterSettings(name: "c1", secretFile: "/k"), servers: [ServerConfig(name: "node1"), ServerConfig(name: "node2")])
        config.fencing = FencingConfig(agents: [])
        var problems = ConfigValidator.validate(config, checkFiles: false).filter { $0.keyPath.hasPrefix("fencing") }
        #expect(problems.map(\.keyPath) == ["fencing.agents"])
        #expect(problems.first?.message.contains("at least one agent") == true)

        let bmc = BMCEndpoint(address: "::1", port: 0, user: "admin", passwordFile: "relative.pass")
        config.fencing = FencingConfig(
            agents: [
                FencingAgentConfig(name: "b", kind: .ipmi(IPMIAgent(interface: "serial", bmcs: ["node1": bmc, "nodex": bmc]))),
                FencingAgentConfig(name: "s", kind: .script(command: [""])),
            ], delay: .seconds(-1))
        problems = ConfigValidator.validate(config, checkFiles: false).filter { $0.keyPath.hasPrefix("fencing") }
        let paths = Set(problems.map(\.keyPath))
        #expect(
            paths == [
                "fencing.delay", "fencing.agents[0].interface", "fencing.agents[0].bmc.node1.port", "fencing.agents[0].bmc.nodex.port",
                "fencing.agents[0].bmc.node1.password-file", "fencing.agents[0].bmc.nodex.password-file", "fencing.agents[0].bmc.nodex",
                "fencing.agents[1].command",
            ], "\(problems)")
        #expect(problems.allSatisfy { $0.severity == .error })
    }

    // MARK: Files on this machine

    @Test func filesAreCheckedLikeExecScriptsAndTheSecretFile() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("fencing-config-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder + "/scripts", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let marker = "bmc-password-\(UUID().uuidString)"
        func write(_ name: String, mode: Int) throws {
            let path = folder + "/" + name
            #expect(FileManager.default.createFile(atPath: path, contents: Data((marker + "\n").utf8)))
            try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: path)
        }
        try write("private.pass", mode: 0o600)
        try write("shared.pass", mode: 0o644)
        try write("scripts/stop.sh", mode: 0o755)
        try write("scripts/plain.sh", mode: 0o644)
        let yaml = withFencing(
            """
            fencing:
              agents:
                - name: bmc
                  type: ipmi
                  bmc:
                    node1: {address: 10.1.0.1, user: admin, password-file: private.pass}
                    node2: {address: 10.1.0.2, user: admin, password-file: missing.pass}
                - name: bmc2
                  type: ipmi
                  bmc:
                    node1: {address: 10.1.0.1, user: admin, password-file: shared.pass}
                - {name: good, type: script, command: scripts/stop.sh}
                - {name: plain, type: script, command: scripts/plain.sh}
                - {name: gone, type: script, command: [scripts/gone.sh, --now]}
                - {name: onpath, type: script, command: [fence_virsh]}

            """)
        try yaml.write(toFile: folder + "/cluster.yaml", atomically: true, encoding: .utf8)
        let loaded = try ConfigLoader.loadWithWarnings(path: folder + "/cluster.yaml")
        let warnings = loaded.warnings.filter { $0.keyPath.hasPrefix("fencing") }
        func warning(_ keyPath: String, _ fragment: String) -> Bool {
            warnings.contains { $0.keyPath == keyPath && $0.message.contains(fragment) && $0.line > 0 }
        }
        #expect(warning("fencing.agents[0].bmc.node2.password-file", "\(folder)/missing.pass does not exist"), "\(warnings)")
        #expect(warning("fencing.agents[1].bmc.node1.password-file", "readable by other users (mode 644)"), "\(warnings)")
        #expect(warning("fencing.agents[3].command", "\(folder)/scripts/plain.sh is not executable"), "\(warnings)")
        #expect(warning("fencing.agents[4].command", "\(folder)/scripts/gone.sh does not exist"), "\(warnings)")
        #expect(warnings.count == 4, "\(warnings)")
        // Only the path of a password file is kept; its content is never read into the model.
        #expect(!CanonicalForm.text(of: loaded.config).contains(marker))
        #expect(!loaded.warnings.contains { $0.description.contains(marker) })

        let unchecked = try ConfigLoader.loadWithWarnings(path: folder + "/cluster.yaml", checkFiles: false)
        #expect(!unchecked.warnings.contains { $0.keyPath.hasPrefix("fencing") })
    }

    // MARK: Rendering back

    @Test func redactionKeepsPasswordFilePathsAndNamesThem() throws {
        let result = try ConfigRedaction.redact(yaml: withFencing(Self.full))
        #expect(result.secretFiles.contains("/etc/understudy/bmc-node1.pass"))
        #expect(result.secretFiles.contains("bmc-node2.pass"))
        #expect(result.yaml.contains("user: admin") && result.yaml.contains("10.1.0.1"))
        #expect(!result.yaml.contains(ConfigRedaction.placeholder), "\(result.yaml)")
        #expect(result.inlineSecrets.isEmpty)
    }

    @Test func canonicalFormAndReflection() throws {
        let running = try load(withFencing(Self.minimal)).config
        let without = try load(baseCluster).config
        #expect(CanonicalForm.text(of: running) != CanonicalForm.text(of: without))
        #expect(CanonicalForm.text(of: running).contains("10.1.0.2"))

        var report = ConfigReflection.compare(running: without, new: running)
        #expect(report.changes.map(\.path) == ["fencing"] && report.method == .uploadOnly, "\(report.lines)")
        #expect(report.changes.first?.text == "fencing added (agents: bmc)")
        report = ConfigReflection.compare(running: running, new: without)
        #expect(report.changes.map(\.text) == ["fencing removed"])

        let edited = try load(
            withFencing(
                Self.minimal.replacingOccurrences(of: "  agents:", with: "  timeout: 10s\n  agents:")
                    .replacingOccurrences(of: "10.1.0.2", with: "10.1.0.22")
                    + "    - {name: vm, type: script, command: /bin/true}\n")
        ).config
        report = ConfigReflection.compare(running: running, new: edited)
        #expect(report.method == .uploadOnly)
        #expect(report.changes.contains { $0.path == "fencing.timeout" && $0.text == "fencing timeout: 30s → 10s" }, "\(report.lines)")
        #expect(
            report.changes.contains {
                $0.path == "fencing.agents.bmc.bmc.node2.address"
                    && $0.text == "fencing agent bmc: BMC of node2 address: \"10.1.0.2\" → \"10.1.0.22\""
            }, "\(report.lines)")
        #expect(report.changes.contains { $0.text == "fencing agent vm added" }, "\(report.lines)")
        #expect(report.changes.count == 3, "\(report.lines)")

        // The order of agents is the order they are tried in.
        let twoAgents = withFencing(Self.minimal + "    - {name: vm, type: script, command: /bin/true}\n")
        let swapped = withFencing(
            Self.minimal.replacingOccurrences(of: "  agents:\n", with: "  agents:\n    - {name: vm, type: script, command: /bin/true}\n"))
        report = ConfigReflection.compare(running: try load(twoAgents).config, new: try load(swapped).config)
        #expect(report.changes.map(\.text) == ["fencing agents reordered"], "\(report.lines)")
    }

    // MARK: The example and garbage

    @Test func exampleStillLoadsAndTakesTheSection() throws {
        let example = try String(contentsOfFile: examplePath, encoding: .utf8)
        #expect(try ConfigLoader.load(yaml: example, sourcePath: examplePath).fencing == nil)
        let config = try ConfigLoader.load(yaml: example + "\n" + Self.full, sourcePath: examplePath)
        #expect(config.fencing?.agents.map(\.name) == ["bmc", "vm", "virsh", "local"])
    }

    /// Random edits of the section: never a crash; a refusal always holds errors, and every
    /// problem inside the section names a line.
    @Test func mutatedSectionNeverCrashes() {
        var generator = SeededGenerator(seed: 0xFE_2C_E0)
        let lines = Self.full.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let values = [
            "", "~", "[]", "{}", "-1", "0s", "0", "1ms", "99999999999999999999h", "node9", "ipmi", "script", "lan", "nmi", "reset",
            "&a x", "*a", "\"\"", "[a, [b]]", "{x: y}", "10.1.0.256", "::1", "65536", "true", "cancel", "failover", "/", ".",
            String(repeating: "x", count: 300),
        ]
        let alphabet: [Character] = Array(" \n:-[]{},#&*!|'\"0123456789abcxyz./")
        var loadedCount = 0
        for _ in 0..<400 {
            var mutated = lines
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                let index = Int.random(in: 0..<mutated.count, using: &generator)
                switch Int.random(in: 0..<5, using: &generator) {
                case 0:
                    mutated.remove(at: index)
                case 1:
                    mutated.insert(mutated[index], at: index)
                case 2:
                    // Replace the value after the first colon.
                    if let colon = mutated[index].firstIndex(of: ":") {
                        let value = values[Int.random(in: 0..<values.count, using: &generator)]
                        mutated[index] = String(mutated[index][...colon]) + " " + value
                    }
                case 3:
                    mutated[index] = (Bool.random(using: &generator) ? "  " : "") + mutated[index].dropFirst(2)
                default:
                    var characters = Array(mutated[index])
                    if !characters.isEmpty {
                        let at = Int.random(in: 0..<characters.count, using: &generator)
                        characters[at] = alphabet[Int.random(in: 0..<alphabet.count, using: &generator)]
                    }
                    mutated[index] = String(characters)
                }
                if mutated.isEmpty { mutated = [""] }
            }
            do {
                _ = try load(withFencing(mutated.joined(separator: "\n")))
                loadedCount += 1
            } catch {
                #expect(!error.errors.isEmpty)
                for problem in error.diagnostics where problem.keyPath.hasPrefix("fencing") {
                    #expect(problem.line > 0, "\(problem)")
                }
            }
        }
        // Some mutations are harmless (a comment, a duplicated agent line with the same
        // value): the run covered both outcomes.
        #expect(loadedCount > 0 && loadedCount < 400)
    }
}
