// Forced stop of a lost server before its groups start elsewhere (CLUSTERPRO "forced stop",
// EXPRESSCLUSTER "fencing", Pacemaker's STONITH). The master runs the agents in order until one
// succeeds; the groups of a server no agent stopped are not failed over (`on-failure: cancel`).

/// The `fencing:` section.
public struct FencingConfig: Sendable, Equatable {
    /// What the master does when no agent stopped the lost server within `timeout`.
    public enum OnFailure: String, Sendable, Equatable, CaseIterable {
        /// Failover is cancelled (CLUSTERPRO rc 433): the groups wait, and the forced stop is
        /// tried again every `retry-interval` until one succeeds or the server is heard again.
        case cancel
        /// Failover goes on once the timeout has passed (the lease margin still applies).
        case failover
    }

    /// Tried in order until one succeeds.
    public var agents: [FencingAgentConfig]
    /// How long one forced stop may take, all agents together.
    public var timeout: Duration
    public var onFailure: OnFailure
    /// How often each server checks that its agents could stop each peer (mode 0); 0: never.
    public var checkInterval: Duration
    /// How long a server waits before stopping a server ranked above it (earlier in `servers:`,
    /// normally the master): in a two-server split both sides want to stop the other, and the
    /// lower-ranked one waits so that only one of them is stopped.
    public var delay: Duration
    /// After a failed forced stop (with `on-failure: cancel`): when to try again.
    public var retryInterval: Duration

    public init(
        agents: [FencingAgentConfig], timeout: Duration = Defaults.fencingTimeout, onFailure: OnFailure = .cancel,
        checkInterval: Duration = Defaults.fencingCheckInterval, delay: Duration = Defaults.fencingDelay,
        retryInterval: Duration = Defaults.fencingRetryInterval
    ) {
        self.agents = agents
        self.timeout = timeout
        self.onFailure = onFailure
        self.checkInterval = checkInterval
        self.delay = delay
        self.retryInterval = retryInterval
    }

    /// Some agent can stop this server (an `ipmi` agent only the servers it lists a BMC for).
    public func covers(_ server: String) -> Bool { agents.contains { $0.covers(server) } }

    /// The agents that can stop this server, in order.
    public func agents(for server: String) -> [FencingAgentConfig] { agents.filter { $0.covers(server) } }
}

public struct FencingAgentConfig: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// IPMI over LAN through each server's BMC, with `ipmitool`.
        case ipmi(IPMIAgent)
        /// A user command, run with `CLP_SERVER_DOWN`, `CLP_SERVER_LOCAL` and
        /// `CLP_FORCESTOP_MODE` (0: check, 1: stop); exit 0 is success.
        case script(command: [String])
    }
    public var name: String
    public var comment: String
    public var kind: Kind

    public init(name: String, comment: String = "", kind: Kind) {
        self.name = name
        self.comment = comment
        self.kind = kind
    }

    public var typeName: String {
        switch kind {
        case .ipmi: "ipmi"
        case .script: "script"
        }
    }

    public func covers(_ server: String) -> Bool {
        switch kind {
        case .ipmi(let agent): agent.bmcs[server] != nil
        case .script: true
        }
    }
}

public struct IPMIAgent: Sendable, Equatable {
    /// What the BMC is told to do to the lost server.
    public enum Action: String, Sendable, Equatable, CaseIterable {
        /// `chassis power off`, then the power state is read back until it says off.
        case powerOff = "power-off"
        /// `chassis power cycle`: off, then on again (the server boots and rejoins).
        case powerCycle = "power-cycle"
        /// `chassis power reset`: a hard reset.
        case reset
        /// `chassis power diag`: an NMI; stops the server only when its kernel panics on an
        /// NMI (`kernel.unknown_nmi_panic` / `kernel.panic_on_unrecovered_nmi`), for a dump.
        case nmi
    }
    public var action: Action
    /// ipmitool's interface: `lanplus` (IPMI 2.0, the default) or `lan` (1.5).
    public var interface: String
    /// `lanplus`: the cipher suite ipmitool asks for (`-C`); nil: ipmitool's own choice. Set
    /// it for a BMC that does not answer the cipher-suite query (ipmitool then waits 10 s
    /// before falling back) or that needs a particular suite (3 or 17).
    public var cipherSuite: Int?
    /// Each server's BMC.
    public var bmcs: [String: BMCEndpoint]

    public init(action: Action = .powerOff, interface: String = "lanplus", cipherSuite: Int? = nil, bmcs: [String: BMCEndpoint]) {
        self.action = action
        self.interface = interface
        self.cipherSuite = cipherSuite
        self.bmcs = bmcs
    }
}

/// One server's BMC: where it answers and the account that may control the chassis.
public struct BMCEndpoint: Sendable, Equatable {
    public var address: String
    public var port: Int
    public var user: String
    /// A file holding the password (read by ipmitool with `-f`, never on a command line).
    public var passwordFile: String

    public init(address: String, port: Int = Defaults.ipmiPort, user: String, passwordFile: String) {
        self.address = address
        self.port = port
        self.user = user
        self.passwordFile = passwordFile
    }
}
