// Groups with their resources, and monitors.

import Yams

extension ConfigReader {
    static let groupKeys = [
        "name", "comment", "servers", "startup", "failover", "failback", "exclusive", "stop-after", "resources",
    ]
    static let resourceCommonKeys = ["name", "type", "comment", "depends", "activation", "deactivation"]
    static let resourceTypeKeys: [String: [String]] = [
        "exec": ["start", "stop", "start-mode", "stop-mode", "timeout", "stop-timeout", "log", "log-rotate-size"],
        "fip": ["address", "interface", "fail-on-link-down", "force", "announce-count", "announce-interval", "probe-wait"],
        "vip": ["address", "interface", "rip-version", "rip-interval", "rip-metric", "rip-destination", "force"],
        "disk": [
            "device", "filesystem", "fsck", "fsck-interval", "fsck-options", "fsck-timeout", "fsck-on-mount-failure",
            "xfs-repair-on-mount-failure", "xfs-repair-options",
        ] + mountKeys,
        "nas": ["server", "share", "filesystem", "ping-server"] + mountKeys,
        "volmgr": ["manager", "volume", "activation-retries", "deactivation-retries", "force-import"],
        "vm": ["hypervisor", "vm-name"],
        "ddns": ["hostname", "server", "ttl", "key-file"],
    ]

    /// What `disk` and `nas` share (`MountSettings`).
    static let mountKeys = [
        "mount-point", "mount-options", "mount-timeout", "mount-retries", "unmount-timeout", "unmount-retries",
        "unmount-interval", "unmount-busy-action",
    ]

    // MARK: groups

    mutating func readGroups(_ field: Field?, allServers: [String]) -> [GroupConfig] {
        var groups: [GroupConfig] = []
        for (node, itemPath) in items(field, of: "groups") {
            guard let fields = mapping(node, path: itemPath, allowed: Self.groupKeys) else { continue }
            let name = string(required(fields, "name"))
            var group = GroupConfig(name: name ?? "", servers: allServers)
            group.comment = string(present(fields, "comment")) ?? ""
            if let servers = stringList(present(fields, "servers"), element: "a server name") {
                group.servers = servers
            }
            if let value = choice(present(fields, "startup"), GroupConfig.Startup.self) { group.startup = value }
            if let value = choice(present(fields, "failover"), GroupConfig.Failover.self) { group.failover = value }
            if let value = choice(present(fields, "failback"), GroupConfig.Failback.self) { group.failback = value }
            if let value = choice(present(fields, "exclusive"), GroupConfig.Exclusive.self) { group.exclusive = value }
            if let field = present(fields, "stop-after") { readStopAfter(field, into: &group) }

            var resourcePaths: [String] = []
            let resourcesField = required(fields, "resources", hint: " (a group needs at least one resource)")
            for (resourceNode, resourcePath) in items(resourcesField, of: "resources") {
                if let resource = readResource(resourceNode, path: resourcePath) {
                    group.resources.append(resource)
                    resourcePaths.append(resourcePath)
                }
            }
            guard name != nil else {
                for resource in group.resources { sourceMap.droppedNames.insert(resource.name) }
                continue
            }
            groups.append(group)
            sourceMap.groupPaths.append(itemPath)
            sourceMap.resourcePaths.append(resourcePaths)
        }
        return groups
    }

    /// `stop-after: [groups]`, or `stop-after: {groups: [..], when: [..], timeout: 30m}`.
    mutating func readStopAfter(_ field: Field, into group: inout GroupConfig) {
        guard case .mapping = field.value else {
            if let value = stringList(field, element: "a group name") { group.stopAfter = value }
            return
        }
        guard let wait = mapping(field.value, path: field.path, allowed: ["groups", "when", "timeout"]) else { return }
        if let value = stringList(required(wait, "groups"), element: "a group name") { group.stopAfter = value }
        if let value = choiceList(present(wait, "when"), GroupConfig.StopWaitOccasion.self) { group.stopAfterWhen = value }
        if let value = duration(present(wait, "timeout")) { group.stopAfterTimeout = value }
    }

    // MARK: resources

    mutating func readResource(_ node: Node, path itemPath: String) -> ResourceConfig? {
        guard
            let (fields, name, type) = typedElement(
                node, path: itemPath, kind: "resource", types: ResourceType.allCases.map(\.rawValue),
                typeKeys: Self.resourceTypeKeys, commonKeys: Self.resourceCommonKeys)
        else { return nil }
        let activation = readActivation(present(fields, "activation"))
        let deactivation = readDeactivation(present(fields, "deactivation"))
        let depends = stringList(present(fields, "depends"), element: "a resource name")
        guard let settings = readResourceSettings(type, fields) else {
            sourceMap.droppedNames.insert(name)
            return nil
        }
        return ResourceConfig(
            name: name, comment: string(present(fields, "comment")) ?? "", depends: depends,
            activation: activation, deactivation: deactivation, settings: settings)
    }

    mutating func readActivation(_ field: Field?) -> ActivationPolicy {
        var policy = ActivationPolicy()
        guard let field, let fields = mapping(field.value, path: field.path, allowed: ["retry", "failover", "final-action"])
        else { return policy }
        if let value = int(present(fields, "retry")) { policy.retry = value }
        if let value = int(present(fields, "failover")) { policy.failover = value }
        if let value = choice(present(fields, "final-action"), FinalAction.self) { policy.finalAction = value }
        return policy
    }

    mutating func readDeactivation(_ field: Field?) -> DeactivationPolicy {
        var policy = DeactivationPolicy()
        guard let field, let fields = mapping(field.value, path: field.path, allowed: ["retry", "final-action"])
        else { return policy }
        if let value = int(present(fields, "retry")) { policy.retry = value }
        if let value = choice(present(fields, "final-action"), FinalAction.self) { policy.finalAction = value }
        return policy
    }

    /// The type-specific part; nil when a required key is missing or unreadable.
    mutating func readResourceSettings(_ type: String, _ fields: FieldSet) -> ResourceSettings? {
        switch type {
        case "exec":
            var exec = ExecSettings()
            exec.start = path(present(fields, "start"))
            exec.stop = path(present(fields, "stop"))
            if let value = choice(present(fields, "start-mode"), ExecSettings.Mode.self) { exec.startMode = value }
            if let value = choice(present(fields, "stop-mode"), ExecSettings.Mode.self) { exec.stopMode = value }
            if let value = duration(present(fields, "timeout")) { exec.timeout = value }
            if let value = duration(present(fields, "stop-timeout")) { exec.stopTimeout = value }
            exec.log = path(present(fields, "log"))
            if let value = int(present(fields, "log-rotate-size")) { exec.logRotateSize = value }
            return .exec(exec)
        case "fip":
            guard let address = string(required(fields, "address", hint: " (e.g. 192.168.0.12/24)")) else {
                return nil
            }
            var fip = FloatingIPSettings(address: address)
            fip.interface = string(present(fields, "interface"))
            if let value = bool(present(fields, "fail-on-link-down")) { fip.failOnLinkDown = value }
            if let value = bool(present(fields, "force")) { fip.force = value }
            fip.announceCount = int(present(fields, "announce-count"))
            fip.announceInterval = duration(present(fields, "announce-interval"))
            fip.probeWait = duration(present(fields, "probe-wait"))
            return .fip(fip)
        case "vip":
            guard let address = string(required(fields, "address", hint: " (e.g. 10.9.0.12/32)")) else { return nil }
            var vip = VirtualIPSettings(address: address, interface: string(present(fields, "interface")))
            vip.ripVersion = choice(present(fields, "rip-version"), VirtualIPSettings.RIPVersion.self)
            if let value = duration(present(fields, "rip-interval")) { vip.ripInterval = value }
            if let value = int(present(fields, "rip-metric")) { vip.ripMetric = value }
            vip.ripDestination = string(present(fields, "rip-destination"))
            if let value = bool(present(fields, "force")) { vip.force = value }
            return .vip(vip)
        case "disk":
            let device = deviceSpec(required(fields, "device", hint: " (a device path, UUID=… or LABEL=…)"))
            let filesystem = string(required(fields, "filesystem", hint: " (ext4, xfs, … or none for a raw device)"))
            let mount = readMount(fields)
            guard let device, let filesystem, let mount else { return nil }
            var disk = DiskSettings(device: device, filesystem: filesystem, mountPoint: mount.mountPoint)
            disk.mount = mount
            if let value = choice(present(fields, "fsck"), DiskSettings.FsckTiming.self) { disk.fsck = value }
            if let value = int(present(fields, "fsck-interval")) { disk.fsckInterval = value }
            if let value = string(present(fields, "fsck-options")) { disk.fsckOptions = value }
            if let value = duration(present(fields, "fsck-timeout")) { disk.fsckTimeout = value }
            if let value = bool(present(fields, "fsck-on-mount-failure")) { disk.fsckOnMountFailure = value }
            if let value = bool(present(fields, "xfs-repair-on-mount-failure")) { disk.xfsRepairOnMountFailure = value }
            if let value = string(present(fields, "xfs-repair-options")) { disk.xfsRepairOptions = value }
            return .disk(disk)
        case "nas":
            let server = string(required(fields, "server"))
            let share = string(required(fields, "share", hint: " (the exported path, e.g. /export/data)"))
            let mount = readMount(fields)
            guard let server, let share, let mount else { return nil }
            var nas = NASSettings(server: server, share: share, mountPoint: mount.mountPoint)
            nas.mount = mount
            if let value = string(present(fields, "filesystem")) { nas.filesystem = value }
            if let value = bool(present(fields, "ping-server")) { nas.pingServer = value }
            return .nas(nas)
        case "volmgr":
            let manager = required(fields, "manager").flatMap { choice($0, VolumeManagerSettings.Manager.self) }
            let volume = string(required(fields, "volume"))
            guard let manager, let volume else { return nil }
            var settings = VolumeManagerSettings(manager: manager, volume: volume)
            if let value = int(present(fields, "activation-retries")) { settings.activationRetries = value }
            if let value = int(present(fields, "deactivation-retries")) { settings.deactivationRetries = value }
            if let value = bool(present(fields, "force-import")) { settings.forceImport = value }
            return .volmgr(settings)
        case "vm":
            var hypervisor = VirtualMachineSettings.Hypervisor.kvm
            if let field = present(fields, "hypervisor") {
                guard let value = choice(field, VirtualMachineSettings.Hypervisor.self) else { return nil }
                hypervisor = value
            }
            guard let vmName = string(required(fields, "vm-name")) else { return nil }
            return .vm(VirtualMachineSettings(hypervisor: hypervisor, vmName: vmName))
        default:
            let hostname = string(required(fields, "hostname"))
            let server = string(required(fields, "server"))
            guard let hostname, let server else { return nil }
            var ddns = DynamicDNSSettings(hostname: hostname, server: server)
            if let value = int(present(fields, "ttl")) { ddns.ttl = value }
            ddns.keyFile = path(present(fields, "key-file"))
            return .ddns(ddns)
        }
    }

    // MARK: monitors

    static let monitorCommonKeys = [
        "name", "type", "comment", "target", "interval", "timeout", "retries", "first-wait", "timing", "servers",
        "nice", "recovery", "retry-on-timeout", "recover-on-timeout",
    ]
    static let recoveryKeys = [
        "target", "script", "script-count", "script-before", "script-timeout", "reactivations", "failovers",
        "final-action", "reset-counters-after",
    ]
    static var monitorTypeKeys: [String: [String]] {
        Dictionary(uniqueKeysWithValues: MonitorType.allCases.map { ($0.rawValue, $0.parameterSpecs.map(\.key)) })
    }

    mutating func readMonitors(_ field: Field?, groups: [GroupConfig], timing: TimingSettings) -> [MonitorConfig] {
        var monitors: [MonitorConfig] = []
        for (node, itemPath) in items(field, of: "monitors") {
            guard
                let (fields, name, typeName) = typedElement(
                    node, path: itemPath, kind: "monitor", types: MonitorType.allCases.map(\.rawValue),
                    typeKeys: Self.monitorTypeKeys, commonKeys: Self.monitorCommonKeys),
                let type = MonitorType(rawValue: typeName)
            else { continue }
            let target = string(present(fields, "target"))
            // userw follows the heartbeat by default (reference §6.1).
            let defaultInterval = type == .userw ? timing.heartbeatInterval : Defaults.monitorInterval
            let defaultTimeout = type == .userw ? timing.heartbeatTimeout : Defaults.monitorTimeout
            var monitor = MonitorConfig(
                name: name, type: type, target: target, interval: duration(present(fields, "interval")) ?? defaultInterval,
                timeout: duration(present(fields, "timeout")) ?? defaultTimeout,
                recovery: MonitorRecovery(target: .localServer))
            monitor.comment = string(present(fields, "comment")) ?? ""
            if let value = int(present(fields, "retries")) { monitor.retries = value }
            if let value = duration(present(fields, "first-wait")) { monitor.firstWait = value }
            if let value = choice(present(fields, "timing"), MonitorConfig.Timing.self) { monitor.timing = value }
            monitor.servers = stringList(present(fields, "servers"), element: "a server name")
            if let value = int(present(fields, "nice")) { monitor.nice = value }
            if let value = bool(present(fields, "retry-on-timeout")) { monitor.retryOnTimeout = value }
            if let value = bool(present(fields, "recover-on-timeout")) { monitor.recoverOnTimeout = value }

            var parameters = type.defaultParameters
            var parameterFailed = false
            for spec in type.parameterSpecs {
                guard let field = present(fields, spec.key) else { continue }
                if let value = parameter(field, spec) {
                    parameters[spec.key] = value
                } else {
                    parameterFailed = true
                }
            }
            monitor.parameters = parameters

            let recovery = readRecovery(
                present(fields, "recovery"), fields: fields, type: type, target: target, groups: groups)
            guard let recovery, !parameterFailed else {
                sourceMap.droppedNames.insert(name)
                continue
            }
            monitor.recovery = recovery
            monitors.append(monitor)
            sourceMap.monitorPaths.append(itemPath)
        }
        return monitors
    }

    mutating func parameter(_ field: Field, _ spec: MonitorParameterSpec) -> ConfigValue? {
        switch spec.kind {
        case .string, .host, .url, .choice: return string(field).map(ConfigValue.string)
        case .path: return path(field).map(ConfigValue.string)
        case .int, .port, .intChoice: return int(field).map(ConfigValue.int)
        case .bool: return bool(field).map(ConfigValue.bool)
        case .duration: return duration(field).map(ConfigValue.duration)
        case .ipList: return stringList(field, element: "an IP address").map(ConfigValue.list)
        case .monitorList: return stringList(field, element: "a monitor name").map(ConfigValue.list)
        }
    }

    /// Reads `recovery:`. Without a `target:` the recovery goes to the monitored resource, or to
    /// the server itself for userw; other monitors must name one.
    mutating func readRecovery(
        _ field: Field?, fields monitorFields: FieldSet, type: MonitorType, target monitoredResource: String?,
        groups: [GroupConfig]
    ) -> MonitorRecovery? {
        var recovery = MonitorRecovery(target: .localServer)
        var targetField: Field?
        var fields: FieldSet?
        if let field {
            guard let recoveryFields = mapping(field.value, path: field.path, allowed: Self.recoveryKeys) else {
                return nil
            }
            fields = recoveryFields
            targetField = present(recoveryFields, "target")
            recovery.script = path(present(recoveryFields, "script"))
            if let value = int(present(recoveryFields, "script-count")) { recovery.scriptCount = value }
            if let steps = choiceList(present(recoveryFields, "script-before"), MonitorRecovery.ScriptStep.self) {
                recovery.runScriptBefore = Set(steps)
            }
            if let value = duration(present(recoveryFields, "script-timeout")) { recovery.scriptTimeout = value }
            if let value = int(present(recoveryFields, "reactivations")) { recovery.reactivations = value }
            if let value = int(present(recoveryFields, "failovers")) { recovery.failovers = value }
            if let value = choice(present(recoveryFields, "final-action"), FinalAction.self) {
                recovery.finalAction = value
            }
            if let value = duration(present(recoveryFields, "reset-counters-after")) {
                recovery.resetCountersAfter = value
            }
        }
        guard let targetField else {
            if let monitoredResource {
                recovery.target = .resource(monitoredResource)
                return recovery
            }
            if type == .userw { return recovery }
            let hint = " (a resource or group name, all-groups or local-server)"
            if let fields {
                _ = required(fields, "target", hint: hint)
            } else {
                error("missing required key\(hint)", at: monitorFields.node, path: monitorFields.path("recovery.target"))
            }
            return nil
        }
        guard let name = string(targetField) else { return nil }
        let groupNames = Set(groups.map(\.name))
        let resourceNames = Set(groups.flatMap { $0.resources.map(\.name) })
        switch name {
        case "all-groups": recovery.target = .allGroups
        case "local-server": recovery.target = .localServer
        default:
            let isGroup = groupNames.contains(name)
            let isResource = resourceNames.contains(name)
            if isGroup, isResource {
                error(
                    "\"\(name)\" names both a group and a resource; rename one so the recovery target is clear",
                    at: targetField.value, path: targetField.path)
                return nil
            }
            if isGroup {
                recovery.target = .group(name)
            } else if isResource {
                recovery.target = .resource(name)
            } else {
                if !sourceMap.droppedNames.contains(name) {
                    let candidates = Array(groupNames) + Array(resourceNames) + ["all-groups", "local-server"]
                    error(
                        "unknown group or resource \"\(Self.clip(name))\"\(Suggestion.didYouMean(name, in: candidates.sorted())); expected a group or resource name, all-groups or local-server",
                        at: targetField.value, path: targetField.path)
                }
                return nil
            }
        }
        return recovery
    }

    /// A device as `disk` names it: `UUID=…` and `LABEL=…` as written, a path resolved.
    mutating func deviceSpec(_ field: Field?) -> String? {
        guard let field, let text = string(field) else { return nil }
        if text.hasPrefix("UUID=") || text.hasPrefix("LABEL=") { return text }
        return path(field)
    }

    /// The mount keys `disk` and `nas` share; nil when `mount-point` is missing.
    mutating func readMount(_ fields: FieldSet) -> MountSettings? {
        guard let mountPoint = string(required(fields, "mount-point")) else { return nil }
        var mount = MountSettings(mountPoint: mountPoint)
        if let value = string(present(fields, "mount-options")) { mount.options = value }
        if let value = duration(present(fields, "mount-timeout")) { mount.mountTimeout = value }
        if let value = int(present(fields, "mount-retries")) { mount.mountRetries = value }
        if let value = duration(present(fields, "unmount-timeout")) { mount.unmountTimeout = value }
        if let value = int(present(fields, "unmount-retries")) { mount.unmountRetries = value }
        if let value = duration(present(fields, "unmount-interval")) { mount.unmountInterval = value }
        if let value = choice(present(fields, "unmount-busy-action"), MountSettings.BusyAction.self) { mount.busyAction = value }
        return mount
    }
}
