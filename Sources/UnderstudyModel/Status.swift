// Status vocabulary shown by clpstat and the API (reference §7.1).

public enum ServerStatus: String, Sendable, Codable, Equatable {
    case online = "Online"
    case offline = "Offline"
    case caution = "Caution"
    case suspend = "Suspend"
    case unknown = "Unknown"
}

public enum HeartbeatStatus: String, Sendable, Codable, Equatable {
    case normal = "Normal"
    case caution = "Caution"
    case error = "Error"
    case unused = "Unused"
    case unknown = "Unknown"
    case offline = "Offline"
}

/// Group and resource status.
public enum ActivationStatus: String, Sendable, Codable, Equatable, CaseIterable {
    case online = "Online"
    case offline = "Offline"
    case onlinePending = "Online Pending"
    case offlinePending = "Offline Pending"
    case onlineFailure = "Online Failure"
    case offlineFailure = "Offline Failure"
    case unknown = "Unknown"

    /// Starting, online, stopping or failed in place: the group holds (or may hold) resources
    /// on this server. Invariant I1 allows at most one such server per group.
    public var holdsResources: Bool {
        switch self {
        case .online, .onlinePending, .offlinePending, .onlineFailure, .offlineFailure: return true
        case .offline, .unknown: return false
        }
    }
}

public enum MonitorStatus: String, Sendable, Codable, Equatable, CaseIterable {
    case normal = "Normal"
    case caution = "Caution"
    case error = "Error"
    case unknown = "Unknown"
    case offline = "Offline"
    case suspend = "Suspend"
    case unused = "Unused"
}
