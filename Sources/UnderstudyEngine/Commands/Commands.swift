import UnderstudyModel

/// An operator request (clpgrp, clprsc, clpcl …) as the Engine understands it.
public enum ClusterCommand: Sendable, Codable, Equatable {
    /// Start a group; on the given server or, if nil, the first allowed server of its policy.
    case startGroup(GroupName, on: ServerName?)
    case stopGroup(GroupName)
    /// Move a group; to the given server or, if nil, the next allowed server of its policy.
    case moveGroup(GroupName, to: ServerName?)
    /// Start or stop one resource on the server that runs its group.
    case startResource(ResourceName)
    case stopResource(ResourceName)
    /// `clprsc -s -f`: start the resource and, first, every resource it depends on
    /// (transitively) that is not online, in activation order.
    case startResourceWithDependencies(ResourceName)
    /// `clprsc -t -f`: stop the resource and, first, every resource that depends on it
    /// (transitively) and is not offline, in reverse activation order.
    case stopResourceWithDependents(ResourceName)
    /// `clprsc --reset`: the master sets the activation-failover counter of the resource's
    /// group to 0 (the counter is kept per group; ResourceCommands.swift).
    case resetFailoverCount(ResourceName)
    case suspendCluster
    case resumeCluster
    /// Stop the cluster service on this server (`clpcl -t`, `clpdown`, SIGTERM).
    case stopService(factor: StopFactor, lastAction: LastAction, then: AfterServiceStop)
    /// Start the cluster service on this server (`clpcl -s`).
    case startService
    /// Mark the whole cluster as stopping (`clpcl -t -a`, `clpstdn`) so that no group fails
    /// over while servers stop one by one.
    case beginClusterStop
    /// `clpmonctrl`: one monitor (or all, when nil) on the given server (or the receiving one).
    case monitor(MonitorControl, monitor: String?, server: ServerName?)
    /// `clprexec --script`: run a script of the rexec folder on the receiving server (the
    /// daemon runs it; the Engine only routes).
    case runScript(name: String, timeoutSeconds: Int)
    /// `clprexec --notice / --clear`: an external error for mrw monitors on a server.
    case externalNotice(monitor: String?, category: String, keyword: String?, clear: Bool, server: ServerName?)
    /// `clpcl --forget SERVER`: the receiving server no longer waits for SERVER, which it left
    /// running when it stopped, before founding the cluster (Survivors.swift).
    case forgetLeftBehind(ServerName)
    /// `clptoratio`: the receiving server takes the setting (if it is newer than its own)
    /// and its heartbeats carry it to the others.
    case setTimeoutRatio(TimeoutRatio)
    /// `clpregctrl`: the receiving server's count of reboots by final actions (its message
    /// says `count : N`), cleared first when `clear`.
    case rebootCount(clear: Bool)
    /// `clpcl --confirm-stopped SERVER`: the operator's word that a lost server whose forced
    /// stop failed is off (ForcedStop.swift); its groups fail over.
    case confirmStopped(ServerName)

    /// Group operations are decided by the master; resource operations by the server
    /// running the group; the others by the server that receives them.
    var isMasterOperation: Bool {
        switch self {
        case .startGroup, .stopGroup, .moveGroup, .suspendCluster, .resumeCluster, .beginClusterStop, .resetFailoverCount,
            .confirmStopped:
            return true
        case .startResource, .stopResource, .startResourceWithDependencies, .stopResourceWithDependents, .stopService, .startService,
            .monitor, .externalNotice, .runScript, .forgetLeftBehind,
            .setTimeoutRatio, .rebootCount:
            return false
        }
    }
}

/// Exit codes of the commands (ARCHITECTURE.md §7).
public enum CommandCode: Int32, Sendable, Codable, Equatable {
    case success = 0
    case failed = 1
    case badUsage = 2
    case unreachable = 3
    case inTransition = 4
}

public struct CommandResult: Sendable, Codable, Equatable {
    public var code: CommandCode
    public var message: String
    /// For an accepted group start, stop or move: what to follow until it has happened.
    public var ticket: OperationTicket?

    public init(_ code: CommandCode, _ message: String, ticket: OperationTicket? = nil) {
        self.code = code
        self.message = message
        self.ticket = ticket
    }

    public static func ok(_ message: String = "Command succeeded.") -> CommandResult {
        CommandResult(.success, message)
    }
}

/// How the Engine handles a command: answered here, or to be forwarded to another server
/// (the master, or the server running a resource's group).
public enum CommandDisposition: Sendable, Equatable {
    case done(CommandResult)
    case forward(to: ServerName)
}

extension ClusterCommand {
    /// Starting or stopping the cluster service is always allowed, even while a server
    /// holds still after a stall.
    var isServiceStartOrStop: Bool {
        switch self {
        case .startService, .stopService: return true
        default: return false
        }
    }
}
