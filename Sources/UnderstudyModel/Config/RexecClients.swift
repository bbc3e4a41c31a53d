// `cluster.rexec-clients`: hosts outside the cluster (a vSphere host, a monitoring server)
// that may send `clprexec` requests to a server. Each has its own key (made with `understudy
// keygen`), so the cluster key never leaves the servers and one client can be revoked alone,
// and may ask only for what its `allow` list names.

import Yams

/// One client of `cluster.rexec-clients`.
public struct RexecClient: Sendable, Equatable {
    /// What a client may ask for.
    public enum Request: String, Sendable, Codable, CaseIterable, Comparable {
        /// `clprexec --failover GROUP`.
        case failover
        /// `clprexec --script FILE` (from `cluster.rexec-directory` only).
        case script
        /// `clprexec --notice` and `--clear` (mrw monitors).
        case notice

        public static func < (left: Request, right: Request) -> Bool {
            allCases.firstIndex(of: left) ?? 0 < allCases.firstIndex(of: right) ?? 0
        }
    }

    /// The name the client sends (`clprexec --client NAME`); not a server's name.
    public var name: String
    /// The client's key on each server (mode 0600, like the cluster key); the same file
    /// content is given to the client.
    public var keyFile: String
    public var allow: Set<Request>

    public init(name: String, keyFile: String, allow: Set<Request>) {
        self.name = name
        self.keyFile = keyFile
        self.allow = allow
    }

    /// The longest name the control channel carries.
    public static let maximumNameLength = 63

    /// Letters, digits, '-', '_' and '.', starting with a letter or digit, at most 63
    /// characters: what the control channel accepts as a sender name.
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= maximumNameLength, isAlphanumeric(first) else { return false }
        return bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}

extension ConfigReader {
    static let rexecClientKeys = ["name", "key-file", "allow", "comment"]

    /// The list as written; entries without a usable name or key file are reported and left out.
    mutating func readRexecClients(_ field: Field) -> [RexecClient] {
        var clients: [RexecClient] = []
        var seen: [String: String] = [:]
        for (node, itemPath) in items(field, of: "rexec clients (name, key-file, allow)") {
            guard let fields = mapping(node, path: itemPath, allowed: Self.rexecClientKeys) else { continue }
            let nameField = required(fields, "name", hint: " (the name the client sends with --client)")
            let name = string(nameField)
            let keyFile = path(required(fields, "key-file", hint: " (the client's own key, made with `understudy keygen`)"))
            let allowField = required(fields, "allow", hint: " (a list of: \(RexecClient.Request.allCases.map(\.rawValue).listed))")
            var allow: Set<RexecClient.Request> = []
            var allowRead = false
            if let words = stringList(allowField, element: "a request word") {
                allowRead = true
                for (index, word) in words.enumerated() {
                    if let request = RexecClient.Request(rawValue: word) {
                        allow.insert(request)
                    } else {
                        let known = RexecClient.Request.allCases.map(\.rawValue)
                        error(
                            "unknown request \"\(Self.clip(word))\"; expected one of \(known.listed)\(Suggestion.didYouMean(word, in: known))",
                            at: allowField.flatMap { sequenceItem($0.value, index) }, path: "\(allowField?.path ?? itemPath)[\(index)]")
                        allowRead = false
                    }
                }
                if words.isEmpty, let allowField {
                    error(
                        "needs at least one request (\(RexecClient.Request.allCases.map(\.rawValue).listed)); remove the client to revoke it",
                        at: allowField.value, path: allowField.path)
                    allowRead = false
                }
            }
            guard let name, let keyFile, let nameField else { continue }
            guard RexecClient.isValidName(name) else {
                error(
                    "client name \"\(Self.clip(name))\" must be 1–\(RexecClient.maximumNameLength) letters, digits, '-', '_' or '.', starting with a letter or digit",
                    at: nameField.value, path: nameField.path)
                continue
            }
            if let first = seen[name] {
                error("client \"\(name)\" is listed twice (first at \(first))", at: nameField.value, path: nameField.path)
                continue
            }
            seen[name] = itemPath
            guard allowRead else { continue }
            clients.append(RexecClient(name: name, keyFile: keyFile, allow: allow))
        }
        return clients
    }
}

extension Validator {
    /// A client may not take a server's name (its requests would be taken for the server's)
    /// nor use the cluster key's file (the point of a client key is that the cluster key
    /// never leaves the servers).
    mutating func checkRexecClients() {
        for (index, client) in config.cluster.rexecClients.enumerated() {
            let path = "cluster.rexec-clients[\(index)]"
            if serverNames.contains(client.name) {
                error(
                    "rexec client \"\(client.name)\" has the name of a server; give the client a name of its own", at: path + ".name")
            }
            if client.keyFile == config.cluster.secretFile {
                error(
                    "rexec client \"\(client.name)\" uses the cluster key file; make it a key of its own with `understudy keygen FILE`",
                    at: path + ".key-file")
            }
        }
    }
}
