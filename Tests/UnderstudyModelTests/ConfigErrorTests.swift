import Testing

@testable import UnderstudyModel

/// One test per kind of problem: each asserts the line and key path of the error.
@Suite("Config errors")
struct ConfigErrorTests {
    // MARK: Syntax and shape

    @Test func badYAMLNamesTheLine() {
        let problems = errors("cluster:\n  name: c1\n  secret-file: [oops\nservers: []\n")
        #expect(problems.count == 1)
        #expect(problems.first?.message.hasPrefix("YAML syntax error") == true)
        #expect(problems.first?.line == 4)
    }

    @Test func tabIndentationIsASyntaxError() {
        let problems = errors("cluster:\n\tname: c1\n")
        #expect(problems.first?.line == 2)
        #expect(problems.first?.message.contains("YAML syntax error") == true)
    }

    @Test func duplicateYAMLKey() {
        let problems = errors(baseCluster + "groups: []\ngroups: []\n")
        #expect(problems.first?.message.contains("duplicate key \"groups\"") == true)
    }

    @Test func unknownKeySuggestsTheClosest() {
        let yaml = baseCluster.replacingOccurrences(of: "  name: c1\n", with: "  name: c1\n  timing: {heartbeat-intervall: 3s}\n")
        expectError(yaml, line: 3, keyPath: "cluster.timing.heartbeat-intervall", "unknown key", "did you mean \"heartbeat-interval\"?")
    }

    @Test func unknownKeyWithoutCloseMatchListsTheKnownOnes() {
        expectError(baseCluster + "colour: blue\n", line: baseLines + 1, keyPath: "colour", "known keys: cluster, servers")
    }

    @Test func keyOfAnotherResourceTypeSaysWhere() {
        let yaml =
            baseCluster + """
                groups:
                  - name: g1
                    resources:
                      - {name: fip1, type: fip, address: 10.0.0.9/24, mount-point: /mnt}

                """
        expectError(
            yaml, line: baseLines + 4, keyPath: "groups[0].resources[0].mount-point",
            "for fip resources", "it is a key of disk, nas resources")
    }

    @Test func wrongTypeList() {
        let yaml = baseCluster.replacingOccurrences(of: "servers:\n  - name: node1\n  - name: node2\n", with: "servers: node1\n")
        expectError(yaml + baseGroup, line: 4, keyPath: "servers", "expected a list of servers, got \"node1\"")
    }

    @Test func wrongTypeInteger() {
        let yaml = baseCluster.replacingOccurrences(of: "  name: c1\n", with: "  name: c1\n  ports: {control: abc}\n")
        expectError(yaml + baseGroup, line: 3, keyPath: "cluster.ports.control", "expected an integer, got \"abc\"")
    }

    @Test func wrongTypeMapping() {
        expectError(baseCluster + "groups:\n  - just-a-name\n", line: baseLines + 2, keyPath: "groups[0]", "expected a mapping")
    }

    @Test func durationWithoutAUnit() {
        let yaml = baseCluster.replacingOccurrences(of: "  name: c1\n", with: "  name: c1\n  timing:\n    heartbeat-interval: 3\n")
        expectError(
            yaml + baseGroup, line: 4, keyPath: "cluster.timing.heartbeat-interval",
            "expected a duration with a unit (ms, s, m, h), got \"3\"", "\"3s\"")
    }

    @Test func durationGarbageInTheBriefsExactFormat() throws {
        let yaml =
            baseCluster + """
                groups:
                  - name: g1
                    resources:
                      - {name: fip1, type: fip, address: 10.0.0.9/24}
                      - {name: disk1, type: disk, device: /dev/sdb1, filesystem: ext4, mount-point: /mnt}
                      - name: exec1
                        type: exec
                        timeout: abc

                """
        let problem = try #require(expectError(yaml, keyPath: "groups[0].resources[2].timeout"))
        #expect(
            problem.description
                == "cluster.yaml:\(baseLines + 8):18: groups[0].resources[2].timeout: expected a duration with a unit (ms, s, m, h), got \"abc\""
        )
    }

    @Test func shutdownMonitorTimeoutNamesBothForms() {
        let yaml = baseCluster.replacingOccurrences(of: "  name: c1\n", with: "  name: c1\n  shutdown-monitor: {timeout: heartbeats}\n")
        expectError(yaml + baseGroup, line: 3, keyPath: "cluster.shutdown-monitor.timeout", "expected heartbeat or a duration")
    }

    // MARK: Required keys

    @Test func missingClusterName() {
        let yaml = baseCluster.replacingOccurrences(of: "  name: c1\n", with: "")
        expectError(yaml + baseGroup, line: 2, keyPath: "cluster.name", "missing required key")
    }

    @Test func missingSecretFile() {
        let yaml = baseCluster.replacingOccurrences(of: "  secret-file: /etc/understudy/test.key\n", with: "")
        expectError(yaml + baseGroup, line: 2, keyPath: "cluster.secret-file", "missing required key", "cluster key")
    }

    @Test func missingServers() {
        let yaml = "cluster: {name: c1, secret-file: /k}\n" + baseGroup
        let problem = expectError(yaml, line: 1, keyPath: "servers", "missing required key")
        #expect(errors(yaml).count == 1, "no cascade of unknown-server errors")
        _ = problem
    }

    @Test func missingGroupNameAndResources() {
        let yaml = baseCluster + "groups:\n  - comment: nameless\n  - name: g2\n"
        expectError(yaml, line: baseLines + 2, keyPath: "groups[0].name", "missing required key")
        expectError(yaml, line: baseLines + 3, keyPath: "groups[1].resources", "missing required key", "at least one resource")
    }

    @Test func emptyResourceList() {
        expectError(
            baseCluster + "groups:\n  - {name: g1, resources: []}\n", line: baseLines + 2, keyPath: "groups[0].resources",
            "at least one resource")
    }

    @Test func missingResourceNameAndType() {
        let yaml =
            baseCluster + """
                groups:
                  - name: g1
                    resources:
                      - {type: exec, stop: /bin/true}
                      - {name: exec2, stop: /bin/true}

                """
        expectError(yaml, line: baseLines + 4, keyPath: "groups[0].resources[0].name", "missing required key")
        expectError(yaml, line: baseLines + 5, keyPath: "groups[0].resources[1].type", "missing required key", "fip, vip")
    }

    @Test func missingFloatingIPAddress() {
        let yaml = baseCluster + "groups:\n  - name: g1\n    resources:\n      - {name: fip1, type: fip}\n"
        expectError(yaml, line: baseLines + 4, keyPath: "groups[0].resources[0].address", "missing required key")
    }

    @Test func missingMonitorParameter() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: d1, type: diskw, recovery: {target: g1}}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].device", "missing required key")
    }

    @Test func missingRecoveryTarget() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: ip1, type: ipw, targets: [10.0.0.254]}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].recovery.target", "missing required key", "local-server")
    }

    // MARK: Unknown names

    @Test func unknownServerInGroup() {
        let yaml =
            baseCluster + "groups:\n  - name: g1\n    servers: [node1, node3]\n    resources: [{name: e, type: exec, stop: /bin/true}]\n"
        expectError(yaml, line: baseLines + 3, keyPath: "groups[0].servers[1]", "unknown server \"node3\"", "node1, node2")
    }

    @Test func unknownServerInHeartbeatAddresses() {
        let yaml = baseCluster.replacingOccurrences(of: "node2: 10.0.1.2}", with: "node2: 10.0.1.2, node9: 10.0.1.9}") + baseGroup
        expectError(yaml, line: 9, keyPath: "heartbeats[1].addresses.node9", "unknown server \"node9\"")
    }

    @Test func unknownServerInComhbDevices() {
        let yaml = baseCluster.replacingOccurrences(
            of: "network-partition:",
            with: "  - {name: com1, type: comhb, devices: {node1: /dev/ttyS0, nodeX: /dev/ttyS0}}\nnetwork-partition:")
        expectError(yaml + baseGroup, line: 10, keyPath: "heartbeats[2].devices.nodeX", "unknown server \"nodeX\"")
    }

    @Test func diskhbDeviceMustBeAbsolute() {
        let yaml = baseCluster.replacingOccurrences(
            of: "network-partition:", with: "  - {name: disk1, type: diskhb, device: sdc1}\nnetwork-partition:")
        expectError(yaml + baseGroup, line: 10, keyPath: "heartbeats[2].device", "expected an absolute path, got \"sdc1\"")
    }

    @Test func comhbSpeedMustBeAStandardRate() {
        let yaml = baseCluster.replacingOccurrences(
            of: "network-partition:",
            with: "  - {name: com1, type: comhb, devices: {node1: /dev/ttyS0, node2: /dev/ttyS1}, speed: 12345}\nnetwork-partition:")
        expectError(yaml + baseGroup, line: 10, keyPath: "heartbeats[2].speed", "unsupported line speed 12345", "19200")
    }

    @Test func comhbJoinsExactlyTwoServersWithAbsoluteDevices() {
        let one = baseCluster.replacingOccurrences(
            of: "network-partition:", with: "  - {name: com1, type: comhb, devices: {node1: /dev/ttyS0}}\nnetwork-partition:")
        expectError(one + baseGroup, line: 10, keyPath: "heartbeats[2].devices", "joins exactly two servers", "got 1")
        let relative = baseCluster.replacingOccurrences(
            of: "network-partition:",
            with: "  - {name: com1, type: comhb, devices: {node1: /dev/ttyS0, node2: ttyS1}}\nnetwork-partition:")
        expectError(relative + baseGroup, line: 10, keyPath: "heartbeats[2].devices.node2", "expected an absolute path")
    }

    @Test func unknownServerInMonitor() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: u, type: userw, servers: [node1, nod2]}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].servers[1]", "unknown server \"nod2\"", "did you mean \"node2\"?")
    }

    @Test func unknownDependency() {
        let yaml =
            baseCluster + """
                groups:
                  - name: g1
                    resources:
                      - {name: exec1, type: exec, stop: /bin/true, depends: [fip9]}

                """
        expectError(yaml, line: baseLines + 4, keyPath: "groups[0].resources[0].depends[0]", "unknown resource \"fip9\"")
    }

    @Test func dependencyInAnotherGroup() {
        let yaml =
            baseCluster + """
                groups:
                  - name: g1
                    resources: [{name: exec1, type: exec, stop: /bin/true, depends: [exec2]}]
                  - name: g2
                    resources: [{name: exec2, type: exec, stop: /bin/true}]

                """
        expectError(yaml, line: baseLines + 3, keyPath: "groups[0].resources[0].depends[0]", "is in group g2")
    }

    @Test func unknownMonitorTarget() {
        let yaml =
            baseCluster + baseGroup + "monitors:\n  - {name: p, type: genw, script: /bin/true, target: exec9, recovery: {target: g1}}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].target", "unknown resource \"exec9\"", "did you mean \"exec1\"?")
    }

    @Test func unknownRecoveryTarget() {
        let yaml =
            baseCluster + baseGroup + "monitors:\n  - name: ip1\n    type: ipw\n    targets: [10.0.0.254]\n    recovery: {target: web}\n"
        expectError(yaml, line: baseLines + 9, keyPath: "monitors[0].recovery.target", "unknown group or resource \"web\"")
    }

    @Test func ambiguousRecoveryTarget() {
        let yaml =
            baseCluster + """
                groups:
                  - name: same
                    resources: [{name: same, type: exec, stop: /bin/true}]
                monitors:
                  - {name: ip1, type: ipw, targets: [10.0.0.254], recovery: {target: same}}

                """
        expectError(yaml, line: baseLines + 5, keyPath: "monitors[0].recovery.target", "both a group and a resource")
    }

    @Test func unknownStopAfterGroup() {
        let yaml = baseCluster + "groups:\n  - name: g1\n    stop-after: [db]\n    resources: [{name: e, type: exec, stop: /bin/true}]\n"
        expectError(yaml, line: baseLines + 3, keyPath: "groups[0].stop-after[0]", "unknown group \"db\"")
        let long =
            baseCluster
            + "groups:\n  - name: g1\n    stop-after: {groups: [db], when: [power-off]}\n    resources: [{name: e, type: exec, stop: /bin/true}]\n"
        expectError(
            long, line: baseLines + 3, keyPath: "groups[0].stop-after.when[0]", "expected one of cluster-stop, server-stop, group-stop")
        expectError(long, line: baseLines + 3, keyPath: "groups[0].stop-after.groups[0]", "unknown group \"db\"")
        let noGroups =
            baseCluster + "groups:\n  - name: g1\n    stop-after: {timeout: 0s}\n    resources: [{name: e, type: exec, stop: /bin/true}]\n"
        expectError(noGroups, line: baseLines + 3, keyPath: "groups[0].stop-after.groups", "missing required key")
    }

    @Test func upsMonitorNamesAndCredentials() throws {
        let bad =
            baseCluster + baseGroup
            + "monitors:\n  - {name: u, type: upsw, ups: 'ups 1', user: admin, password-file: /etc/pw, recovery: {target: g1}}\n"
        expectError(bad, line: baseLines + 6, keyPath: "monitors[0].ups", "is not a NUT name")
        let noUser = baseCluster + baseGroup + "monitors:\n  - {name: u, type: upsw, ups: ups1, recovery: {target: g1}}\n"
        expectError(noUser, line: baseLines + 6, keyPath: "monitors[0].power-off-command", "needs user and password-file")
        let none =
            baseCluster + baseGroup + "monitors:\n  - {name: u, type: upsw, ups: ups1, power-off-command: none, recovery: {target: g1}}\n"
        _ = try load(none)
    }

    @Test func unknownMtwMember() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: m, type: mtw, monitors: [ghost], recovery: {target: g1}}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].monitors[0]", "unknown monitor \"ghost\"")
    }

    // MARK: Duplicates

    @Test func duplicateServers() {
        let yaml = baseCluster.replacingOccurrences(of: "  - name: node2\n", with: "  - name: node2\n  - name: node1\n") + baseGroup
        expectError(yaml, line: 7, keyPath: "servers[2].name", "duplicate server name \"node1\"", "line 5")
    }

    @Test func duplicateGroups() {
        let yaml = baseCluster + baseGroup + "  - name: g1\n    resources: [{name: exec2, type: exec, stop: /bin/true}]\n"
        expectError(yaml, line: baseLines + 5, keyPath: "groups[1].name", "duplicate group name \"g1\"")
    }

    @Test func duplicateResourcesAcrossGroups() {
        let yaml = baseCluster + baseGroup + "  - name: g2\n    resources: [{name: exec1, type: exec, stop: /bin/true}]\n"
        expectError(
            yaml, line: baseLines + 6, keyPath: "groups[1].resources[0].name", "duplicate resource name \"exec1\"", "line \(baseLines + 4)")
    }

    @Test func duplicateMonitors() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: u, type: userw}\n  - {name: u, type: userw}\n"
        expectError(yaml, line: baseLines + 7, keyPath: "monitors[1].name", "duplicate monitor name \"u\"")
    }

    @Test func duplicateHeartbeats() {
        let yaml = baseCluster.replacingOccurrences(of: "{name: lan2,", with: "{name: lan1,") + baseGroup
        expectError(yaml, line: 9, keyPath: "heartbeats[1].name", "duplicate heartbeat name \"lan1\"")
    }

    @Test func duplicateNetworkPartitions() {
        let yaml = baseCluster + "  - {name: np1, type: majority}\n" + baseGroup
        expectError(yaml, line: 12, keyPath: "network-partition[1].name", "duplicate network-partition name \"np1\"")
    }

    // MARK: Cycles

    @Test func dependencyCycle() {
        let yaml =
            baseCluster + """
                groups:
                  - name: g1
                    resources:
                      - {name: a, type: exec, stop: /bin/true, depends: [c]}
                      - {name: b, type: exec, stop: /bin/true, depends: [a]}
                      - {name: c, type: exec, stop: /bin/true, depends: [b]}

                """
        expectError(yaml, line: baseLines + 4, keyPath: "groups[0].resources[0].depends", "dependency cycle: a → c → b → a")
    }

    @Test func cycleThroughTheDefaultTypeOrder() {
        let yaml =
            baseCluster + """
                groups:
                  - name: g1
                    resources:
                      - {name: fip1, type: fip, address: 10.0.0.9/24, depends: [exec1]}
                      - {name: exec1, type: exec, stop: /bin/true}

                """
        expectError(yaml, line: baseLines + 4, keyPath: "groups[0].resources[0].depends", "dependency cycle: fip1 → exec1 → fip1")
    }

    @Test func selfDependency() {
        let yaml = baseCluster + "groups:\n  - name: g1\n    resources: [{name: e, type: exec, stop: /bin/true, depends: [e]}]\n"
        expectError(yaml, line: baseLines + 3, keyPath: "groups[0].resources[0].depends[0]", "cannot depend on itself")
    }

    @Test func stopAfterCycle() {
        let yaml =
            baseCluster + """
                groups:
                  - {name: g1, stop-after: [g2], resources: [{name: e1, type: exec, stop: /bin/true}]}
                  - {name: g2, stop-after: [g1], resources: [{name: e2, type: exec, stop: /bin/true}]}

                """
        expectError(yaml, line: baseLines + 2, keyPath: "groups[0].stop-after", "stop-after cycle: g1 → g2 → g1")
    }

    // MARK: Heartbeats and partitions

    @Test func lanhbWithoutAnAddressForAServer() {
        let yaml = baseCluster.replacingOccurrences(of: ", node2: 10.0.1.2}", with: "}") + baseGroup
        expectError(yaml, line: 9, keyPath: "heartbeats[1].addresses", "no address for server node2")
    }

    @Test func heartbeatIntervalMustBePositive() {
        let yaml = baseCluster.replacingOccurrences(of: "  name: c1\n", with: "  name: c1\n  timing: {heartbeat-interval: 0s}\n")
        expectError(yaml + baseGroup, line: 3, keyPath: "cluster.timing.heartbeat-interval", "greater than zero")
    }

    @Test func heartbeatTimeoutMustExceedTheInterval() {
        let yaml = baseCluster.replacingOccurrences(
            of: "  name: c1\n", with: "  name: c1\n  timing:\n    heartbeat-interval: 10s\n    heartbeat-timeout: 10s\n")
        expectError(yaml + baseGroup, line: 5, keyPath: "cluster.timing.heartbeat-timeout", "greater than heartbeat-interval (10s)")
    }

    @Test func twoServersNeedALanHeartbeat() {
        let yaml = baseCluster.replacingOccurrences(
            of:
                "  - {name: lan1, type: lanhb, addresses: {node1: 10.0.0.1, node2: 10.0.0.2}}\n  - {name: lan2, type: lanhb, addresses: {node1: 10.0.1.1, node2: 10.0.1.2}}\n",
            with: "  - {name: disk1, type: diskhb, device: /dev/sdz}\n")
        expectError(yaml + baseGroup, line: 8, keyPath: "heartbeats", "at least one lanhb")
    }

    // MARK: Types and enums

    @Test func unknownResourceType() {
        let yaml = baseCluster + "groups:\n  - name: g1\n    resources: [{name: f, type: fipp, address: 10.0.0.9}]\n"
        expectError(
            yaml, line: baseLines + 3, keyPath: "groups[0].resources[0].type", "unknown resource type \"fipp\"",
            "did you mean \"fip\"?", "fip, vip, ddns, volmgr, disk, nas, exec, vm")
        #expect(errors(yaml).count == 1, "no extra errors for the keys of the unknown type")
    }

    @Test func unknownMonitorType() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: m, type: pingw}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].type", "unknown monitor type \"pingw\"", "userw, pidw")
    }

    @Test func unknownHeartbeatType() {
        let yaml =
            baseCluster.replacingOccurrences(
                of: "type: lanhb, addresses: {node1: 10.0.1.1", with: "type: lankhb, addresses: {node1: 10.0.1.1") + baseGroup
        expectError(yaml, line: 9, keyPath: "heartbeats[1].type", "unknown heartbeat type \"lankhb\"", "did you mean \"lanhb\"?")
    }

    @Test func unknownPartitionType() {
        let yaml = baseCluster.replacingOccurrences(of: "type: pingnp", with: "type: disknp") + baseGroup
        expectError(
            yaml, line: 11, keyPath: "network-partition[0].type", "unknown network-partition type \"disknp\"", "pingnp, majority, httpnp")
    }

    @Test func enumValueListsTheAllowedOnes() {
        let yaml = baseCluster + "groups:\n  - name: g1\n    startup: sometimes\n    resources: [{name: e, type: exec, stop: /bin/true}]\n"
        expectError(yaml, line: baseLines + 3, keyPath: "groups[0].startup", "expected one of auto, manual; got \"sometimes\"")
    }

    @Test func enumValueTypo() {
        let yaml = baseCluster + "groups:\n  - name: g1\n    resources: [{name: e, type: exec, stop: /bin/true, start-mode: asnyc}]\n"
        expectError(yaml, line: baseLines + 3, keyPath: "groups[0].resources[0].start-mode", "sync, async", "did you mean \"async\"?")
    }

    @Test func monitorParameterChoice() {
        let yaml =
            baseCluster + baseGroup + "monitors:\n  - {name: d, type: diskw, device: /dev/sdb, method: o_direct, recovery: {target: g1}}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].method", "read-direct, read, write-file, tur")
    }

    @Test func monitorParameterTypo() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: g, type: genw, scirpt: /bin/true, recovery: {target: g1}}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].scirpt", "did you mean \"script\"?")
    }

    // MARK: Ranges

    @Test func negativeActivationRetry() {
        let yaml =
            baseCluster + "groups:\n  - name: g1\n    resources:\n      - {name: e, type: exec, stop: /bin/true, activation: {retry: -1}}\n"
        expectError(yaml, line: baseLines + 4, keyPath: "groups[0].resources[0].activation.retry", "must not be negative")
    }

    @Test func negativeMonitorRetries() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: u, type: userw, retries: -2}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].retries", "must not be negative, got -2")
    }

    @Test func negativeMaxReboots() {
        let yaml = baseCluster.replacingOccurrences(of: "  name: c1\n", with: "  name: c1\n  recovery: {max-reboots: -1}\n")
        expectError(yaml + baseGroup, line: 3, keyPath: "cluster.recovery.max-reboots", "must not be negative")
    }

    @Test func zeroScriptTimeout() {
        let yaml = baseCluster + "groups:\n  - name: g1\n    resources:\n      - {name: e, type: exec, stop: /bin/true, timeout: 0s}\n"
        expectError(yaml, line: baseLines + 4, keyPath: "groups[0].resources[0].timeout", "greater than zero")
    }

    @Test func negativeMonitorInterval() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: u, type: userw, interval: -5s}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].interval", "greater than zero, got -5s")
    }

    @Test func portOutOfRange() {
        let yaml = baseCluster.replacingOccurrences(of: "  name: c1\n", with: "  name: c1\n  ports: {http: 70000}\n")
        expectError(yaml + baseGroup, line: 3, keyPath: "cluster.ports.http", "from 1 to 65535, got 70000")
    }

    @Test func databasePortOutOfRange() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: db, type: psqlw, database: app, port: 0, recovery: {target: g1}}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].port", "from 1 to 65535, got 0")
    }

    @Test func witnessPortOutOfRange() {
        let yaml = baseCluster + "  - {name: w, type: httpnp, host: witness.example.com, port: 65536}\n" + baseGroup
        expectError(yaml, line: 12, keyPath: "network-partition[1].port", "from 1 to 65535")
    }

    @Test func witnessCAFileWithoutTLS() {
        let yaml = baseCluster + "  - {name: w, type: httpnp, host: 192.0.2.9, ca-file: /etc/ssl/witness.pem}\n" + baseGroup
        expectError(yaml, line: 12, keyPath: "network-partition[1].ca-file", "applies to HTTPS only", "tls: true")
    }

    @Test func witnessCAFileMissingIsAWarning() throws {
        let yaml =
            baseCluster
            + "  - {name: w, type: httpnp, host: 192.0.2.9, tls: true, ca-file: /nonexistent/witness.pem, server-name: w.example}\n"
            + baseGroup
        let loaded = try load(yaml, checkFiles: true)
        let warning = try #require(loaded.warnings.first { $0.keyPath == "network-partition[1].ca-file" })
        #expect(warning.line == 12 && warning.message.contains("cannot read the certificate file /nonexistent/witness.pem"))
        guard case .http(let endpoint)? = loaded.config.networkPartition.last?.kind else {
            Issue.record("no httpnp entry")
            return
        }
        #expect(
            endpoint
                == WitnessEndpoint(
                    host: "192.0.2.9", port: 80, tls: WitnessTLS(caFile: "/nonexistent/witness.pem", serverName: "w.example")))
    }

    @Test func witnessTLSNotABool() {
        let yaml = baseCluster + "  - {name: w, type: httpnp, host: 192.0.2.9, tls: yes-please}\n" + baseGroup
        expectError(yaml, line: 12, keyPath: "network-partition[1].tls", "expected true or false")
    }

    // MARK: Names and addresses

    @Test func serverNameMustBeALowercaseHostname() {
        let yaml = baseCluster.replacingOccurrences(of: "- name: node2", with: "- name: Node2").replacingOccurrences(
            of: "node2:", with: "Node2:")
        expectError(yaml + baseGroup, line: 6, keyPath: "servers[1].name", "not a lowercase host name", "write \"node2\"")
    }

    @Test func serverNameWithUnderscore() {
        let yaml = baseCluster.replacingOccurrences(of: "node2", with: "node_2")
        expectError(yaml + baseGroup, line: 6, keyPath: "servers[1].name", "not a lowercase host name")
    }

    @Test func invalidFloatingIP() {
        let yaml = baseCluster + "groups:\n  - name: g1\n    resources: [{name: f, type: fip, address: 192.168.0.300/24}]\n"
        expectError(
            yaml, line: baseLines + 3, keyPath: "groups[0].resources[0].address", "\"192.168.0.300\" is not a valid IPv4 or IPv6 address")
    }

    @Test func invalidFloatingIPPrefix() {
        let yaml = baseCluster + "groups:\n  - name: g1\n    resources: [{name: f, type: fip, address: 192.168.0.30/33}]\n"
        expectError(
            yaml, line: baseLines + 3, keyPath: "groups[0].resources[0].address", "prefix length \"33\" must be a number from 1 to 32")
    }

    @Test func invalidVirtualIP() {
        let yaml = baseCluster + "groups:\n  - name: g1\n    resources: [{name: v, type: vip, address: 'fd00::1::2'}]\n"
        expectError(yaml, line: baseLines + 3, keyPath: "groups[0].resources[0].address", "not a valid IPv4 or IPv6 address")
    }

    @Test func invalidLanHeartbeatAddress() {
        let yaml = baseCluster.replacingOccurrences(of: "node2: 10.0.0.2", with: "node2: 10.0.0") + baseGroup
        expectError(yaml, line: 8, keyPath: "heartbeats[0].addresses.node2", "\"10.0.0\" is not a valid")
    }

    @Test func invalidPingTarget() {
        let yaml = baseCluster.replacingOccurrences(of: "targets: [10.0.0.254]", with: "targets: [10.0.0.254, gateway]") + baseGroup
        expectError(yaml, line: 11, keyPath: "network-partition[0].targets[1]", "\"gateway\" is not a valid IPv4 or IPv6 address")
    }

    @Test func invalidIpwTarget() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: i, type: ipw, targets: [1.2.3.4.5], recovery: {target: g1}}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].targets[0]", "is not a valid")
    }

    @Test func invalidHttpURL() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: h, type: httpw, url: 'ftp://x/', recovery: {target: g1}}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].url", "http:// or https:// URL")
    }

    // MARK: Final actions and monitor targets

    @Test func deactivationCannotStopTheGroup() {
        let yaml =
            baseCluster
            + "groups:\n  - name: g1\n    resources:\n      - {name: e, type: exec, stop: /bin/true, deactivation: {final-action: stop-group}}\n"
        expectError(
            yaml, line: baseLines + 4, keyPath: "groups[0].resources[0].deactivation.final-action",
            "stop-group is not allowed after a deactivation failure", "none, none-continue, shutdown, reboot")
    }

    @Test func deactivationCannotStopTheClusterService() {
        let yaml =
            baseCluster
            + "groups:\n  - name: g1\n    resources:\n      - {name: e, type: exec, stop: /bin/true, deactivation: {final-action: stop-cluster-service}}\n"
        expectError(
            yaml, line: baseLines + 4, keyPath: "groups[0].resources[0].deactivation.final-action", "stop-cluster-service is not allowed")
    }

    @Test func unknownFinalAction() {
        let yaml =
            baseCluster
            + "groups:\n  - name: g1\n    resources:\n      - {name: e, type: exec, stop: /bin/true, activation: {final-action: keepalive-panic}}\n"
        // (CLUSTERPRO's keepalive panic has no equivalent; `panic` is sysrq's.)
        expectError(yaml, line: baseLines + 4, keyPath: "groups[0].resources[0].activation.final-action", "none, none-continue, stop-group")
    }

    @Test func pidwNeedsAnAsyncExec() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: p, type: pidw, target: exec1}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].target", "start-mode sync", "start-mode: async")
    }

    @Test func fipwNeedsAFloatingIP() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: f, type: fipw, target: exec1}\n"
        expectError(
            yaml, line: baseLines + 6, keyPath: "monitors[0].target", "fipw monitor watches a fip resource, but exec1 has type exec")
    }

    @Test func activeTimingNeedsATarget() {
        let yaml =
            baseCluster + baseGroup + "monitors:\n  - {name: g, type: genw, script: /bin/true, timing: active, recovery: {target: g1}}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].timing", "needs target")
    }

    @Test func stopResourceNeedsAResourceTarget() {
        let yaml = baseCluster + baseGroup + "monitors:\n  - {name: u, type: userw, recovery: {final-action: stop-resource}}\n"
        expectError(yaml, line: baseLines + 6, keyPath: "monitors[0].recovery.final-action", "needs a resource")
    }

    @Test func reservedGroupName() {
        let yaml = baseCluster + "groups:\n  - {name: all-groups, resources: [{name: e, type: exec, stop: /bin/true}]}\n"
        expectError(yaml, line: baseLines + 2, keyPath: "groups[0].name", "reserved")
    }

    // MARK: Several problems at once

    @Test func everyProblemIsReported() {
        let yaml = """
            cluster:
              name: c1
              timing: {heartbeat-interval: 5, sync-wait: forever}
            servers:
              - name: Node1
              - name: node2
              - name: node2
            groups:
              - name: g1
                servers: [node1, node3]
                failback: sometimes
                resources:
                  - {name: f, type: fip, address: 1.2.3}
                  - {name: e, type: exec, stop: /bin/true, depends: [nothing]}
            monitors:
              - {name: m, type: nosuchw}

            """
        let problems = errors(yaml)
        let places = problems.map { "\($0.line) \($0.keyPath)" }
        let expected = [
            "2 cluster.secret-file", "3 cluster.timing.heartbeat-interval", "3 cluster.timing.sync-wait",
            "5 servers[0].name", "7 servers[2].name", "10 groups[0].servers[1]", "11 groups[0].failback",
            "13 groups[0].resources[0].address", "14 groups[0].resources[1].depends[0]", "16 monitors[0].type",
        ]
        for place in expected {
            #expect(places.contains(place), "missing \(place) in:\n\(problems.map(\.description).joined(separator: "\n"))")
        }
        #expect(problems == problems.sorted { ($0.line, $0.column) < ($1.line, $1.column) }, "errors come in file order")
        let lines = ConfigErrors(problems).description.split(separator: "\n")
        #expect(lines.count == problems.count)
        #expect(lines.allSatisfy { $0.hasPrefix("cluster.yaml:") })
    }
}
