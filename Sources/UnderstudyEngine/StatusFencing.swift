import UnderstudyModel

extension ClusterStatusSnapshot {
    /// Forced stop for `clpstat -f`: the agents, this server's forced stops (a master's) and
    /// its periodic checks of the agents (filled in by the daemon).
    public struct FencingLine: Sendable, Codable, Equatable {
        public struct Agent: Sendable, Codable, Equatable {
            public var name: String
            public var type: String
            /// ipmi: its action; script: nil.
            public var action: String?
            /// The servers it can stop.
            public var servers: [ServerName]
        }
        /// One forced stop of one loss of a server.
        public struct Stop: Sendable, Codable, Equatable {
            public var server: ServerName
            /// `waiting` (the delay), `running`, `stopped`, `failed`.
            public var state: String
            public var attempts: Int
            /// What the last attempt did or why it failed.
            public var detail: String
            /// Seconds since the loss was confirmed, and until the next attempt (waiting, or
            /// failed with a retry).
            public var confirmedSecondsAgo: Double
            public var nextAttemptInSeconds: Double?
        }
        /// The last periodic check of one agent against one server.
        public struct Check: Sendable, Codable, Equatable {
            public var server: ServerName
            public var agent: String
            public var normal: Bool
            public var detail: String
            public var secondsAgo: Double

            public init(server: ServerName, agent: String, normal: Bool, detail: String, secondsAgo: Double) {
                self.server = server
                self.agent = agent
                self.normal = normal
                self.detail = detail
                self.secondsAgo = secondsAgo
            }
        }
        public var agents: [Agent]
        public var timeoutSeconds: Double
        public var onFailure: String
        public var delaySeconds: Double
        public var checkIntervalSeconds: Double
        public var stops: [Stop]
        /// This server's checks (nil: none yet, or checks are off).
        public var checks: [Check]?
    }
}

extension ServerEngine {
    func fencingLine(now: EngineTime) -> ClusterStatusSnapshot.FencingLine? {
        guard let fencing = config.fencing else { return nil }
        let agents = fencing.agents.map { agent -> ClusterStatusSnapshot.FencingLine.Agent in
            var action: String? = nil
            if case .ipmi(let ipmi) = agent.kind { action = ipmi.action.rawValue }
            return .init(name: agent.name, type: agent.typeName, action: action, servers: serverNames.filter { agent.covers($0) })
        }
        let stops = forcedStopRecords.map { record -> ClusterStatusSnapshot.FencingLine.Stop in
            let state: String
            var next: EngineTime? = nil
            switch record.phase {
            case .delayed(let until):
                state = "waiting"
                next = until
            case .running: state = "running"
            case .stopped: state = "stopped"
            case .failed(_, let retryAt):
                state = "failed"
                next = retryAt
            }
            return .init(
                server: record.server, state: state, attempts: record.attempts, detail: record.detail,
                confirmedSecondsAgo: (now - record.confirmedAt).inSeconds, nextAttemptInSeconds: next.map { max(.zero, $0 - now).inSeconds }
            )
        }
        return .init(
            agents: agents, timeoutSeconds: fencing.timeout.inSeconds, onFailure: fencing.onFailure.rawValue,
            delaySeconds: fencing.delay.inSeconds, checkIntervalSeconds: fencing.checkInterval.inSeconds, stops: stops, checks: nil)
    }

    func unauthenticatedLine(now: EngineTime) -> [ServerName]? {
        let present = serverNames.filter { isPresentUnauthenticated($0, now: now) }
        return present.isEmpty ? nil : present
    }

    func withoutStateLine(now: EngineTime) -> [ServerName]? {
        let present = serverNames.filter { isPresentWithoutState($0, now: now) }
        return present.isEmpty ? nil : present
    }
}
