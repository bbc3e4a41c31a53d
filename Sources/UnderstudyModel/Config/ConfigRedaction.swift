import Foundation
import Yams

/// A copy of a configuration file that can leave the cluster (`clplogcc`): every secret value
/// replaced with `<redacted>`, and the files that hold secrets named so that the caller
/// never copies them and can check that their contents appear nowhere else.
///
/// The copy is the YAML parsed and written again, not the text: comments (which may hold
/// anything) are dropped, aliases are expanded, and nothing the parser did not understand
/// can slip through. What counts as secret is decided by key names and value shapes, not by
/// the schema, so keys added later are covered as long as their names say what they hold:
///
/// - a key whose name contains `password`, `passwd`, `secret`, `token`, `community`,
///   `passphrase`, `credential`, `private-key` or `api-key`, or is `auth`, `authorization`,
///   `psk`, or ends in `-key` or `key-file`, or is `users-file` (the web users' password
///   hashes): its value (a scalar, or every scalar inside a list or mapping) is replaced —
///   unless the name ends in `-file`, where the value is the path of a secret file: the path
///   stays (it helps support) and is reported in `secretFiles`;
/// - `key`: a path (`web.key`, the TLS private key) stays and is reported in `secretFiles`;
///   anything else there is replaced;
/// - a URL anywhere: the password of `user:password@` and the query are replaced; the URL of
///   a `type: webhook` entry keeps only scheme, host and port (webhook paths are often the
///   credential themselves);
/// - `user/password@service` (an Oracle connect string) and `name=value` pairs whose name is
///   secret-like (`password=…` in a DSN or an argument): the secret part is replaced;
/// - in a list (a command and its arguments), the element after `-p`, `-P`, `--password`,
///   `--pass`, `--passwd`, `--secret`, `--token`, `--community`, `--key`.
public enum ConfigRedaction {
    public static let placeholder = "<redacted>"

    public struct Result: Sendable, Equatable {
        /// The YAML with every secret value replaced.
        public var yaml: String
        /// The secret values found inline (SNMP communities, …), so that the caller can make
        /// sure they appear nowhere else either.
        public var inlineSecrets: [String]
        /// Paths (as written, relative to the configuration's folder or absolute) of files
        /// that hold secrets: never to be copied.
        public var secretFiles: [String]
    }

    public struct RedactionError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Redacts `yaml` (the text of a configuration file). Throws when it is not YAML: then no
    /// copy must be made at all, since nothing tells secrets from the rest.
    public static func redact(yaml: String, source: String = "the configuration") throws(RedactionError) -> Result {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw RedactionError(description: "\(source) is not valid YAML, no redacted copy can be made: \(error)")
        }
        var walker = Walker()
        guard let root else { return Result(yaml: "", inlineSecrets: [], secretFiles: []) }
        var redacted = walker.visit(root, key: nil, parentIsWebhook: false)
        // A secret value repeated elsewhere (an alias of it, a copy under an ordinary key).
        let found = Set(walker.inlineSecrets.filter { !$0.isEmpty })
        if !found.isEmpty { redacted = Walker.scrub(redacted, found) }
        let text: String
        do {
            text = try Yams.serialize(node: redacted, sortKeys: false)
        } catch {
            throw RedactionError(description: "cannot write the redacted copy of \(source): \(error)")
        }
        var unique: [String] = []
        for secret in walker.inlineSecrets where !secret.isEmpty && !unique.contains(secret) { unique.append(secret) }
        var files: [String] = []
        for file in walker.secretFiles where !file.isEmpty && !files.contains(file) { files.append(file) }
        return Result(yaml: text, inlineSecrets: unique, secretFiles: files)
    }

    // MARK: - Rules

    static let secretWords = [
        "password", "passwd", "secret", "token", "community", "passphrase", "credential", "private-key", "api-key", "apikey",
    ]
    static let secretNames: Set<String> = ["auth", "authorization", "psk", "pwd", "pass"]
    static let argumentFlags: Set<String> = [
        "-p", "-P", "--password", "--pass", "--passwd", "--secret", "--token", "--community", "--key", "--api-key",
    ]

    /// Whether a key's value is a secret (or, ending in `-file`, the path of one).
    public static func isSecretKey(_ name: String) -> Bool {
        let lower = name.lowercased()
        if lower == "key" || secretNames.contains(lower) || lower == "users-file" { return true }
        if lower.hasSuffix("key-file") || lower.hasSuffix("-key") || lower.hasSuffix("_key") { return true }
        return secretWords.contains { lower.contains($0) }
    }

    static func isFileKey(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower.hasSuffix("-file") || lower.hasSuffix("-files") || lower.hasSuffix("_file")
    }

    /// `key: tls/web.key`: a path, not a key.
    static func looksLikePath(_ value: String) -> Bool {
        !value.contains(where: \.isWhitespace) && (value.contains("/") || value.hasSuffix(".key") || value.hasSuffix(".pem"))
    }

    /// The secret parts of one scalar value found anywhere: URL passwords and queries,
    /// `user/password@service`, `password=value`.
    static func redactValue(_ value: String, webhook: Bool, secrets: inout [String]) -> String {
        var text = value
        if text.contains("://") { text = redactURL(text, keepPath: !webhook, secrets: &secrets) }
        text = redactAssignments(text, secrets: &secrets)
        text = redactConnectString(text, secrets: &secrets)
        return text
    }

    static func redactURL(_ value: String, keepPath: Bool, secrets: inout [String]) -> String {
        guard let schemeEnd = value.range(of: "://") else { return value }
        let scheme = value[..<schemeEnd.lowerBound]
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) else { return value }
        let rest = value[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(where: { "/?#".contains($0) }) ?? rest.endIndex
        var authority = String(rest[..<authorityEnd])
        var tail = String(rest[authorityEnd...])
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            let host = authority[authority.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let password = String(userInfo[userInfo.index(after: colon)...])
                if !password.isEmpty { secrets.append(password) }
                authority = "\(userInfo[..<colon]):\(placeholder)@\(host)"
            }
        }
        if !keepPath {
            if tail.isEmpty || tail == "/" { return "\(scheme)://\(authority)\(tail)" }
            // A long path is likely a credential (Slack-style); a short one ("/hook") would
            // blank out ordinary text where the archive is searched for it.
            if tail.utf8.count >= 12 { secrets.append(tail) }
            return "\(scheme)://\(authority)/\(placeholder)"
        }
        if let question = tail.firstIndex(of: "?") {
            let afterQuery = tail[tail.index(after: question)...]
            let fragment = afterQuery.firstIndex(of: "#").map { String(afterQuery[$0...]) } ?? ""
            let query = afterQuery.firstIndex(of: "#").map { String(afterQuery[..<$0]) } ?? String(afterQuery)
            if !query.isEmpty {
                secrets.append(
                    contentsOf: query.split(separator: "&").compactMap { pair in
                        pair.split(separator: "=", maxSplits: 1).dropFirst().first.map(String.init)
                    }.filter { $0.count >= 4 })
                tail = String(tail[..<question]) + "?" + placeholder + fragment
            }
        }
        return "\(scheme)://\(authority)\(tail)"
    }

    /// `password=value` (also `password: value` inside a string, `pwd=…`), case-insensitive.
    static func redactAssignments(_ value: String, secrets: inout [String]) -> String {
        var output = ""
        var rest = Substring(value)
        while !rest.isEmpty {
            guard let equals = rest.firstIndex(of: "=") else { break }
            let before = rest[..<equals]
            let nameStart =
                before.lastIndex(where: { !($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }).map(before.index(after:))
                ?? before.startIndex
            let name = String(before[nameStart...])
            let valueStart = rest.index(after: equals)
            var valueEnd = valueStart
            var quote: Character?
            if valueStart < rest.endIndex, rest[valueStart] == "'" || rest[valueStart] == "\"" {
                quote = rest[valueStart]
            }
            if let quote {
                let inner = rest.index(after: valueStart)
                valueEnd = rest[inner...].firstIndex(of: quote).map { rest.index(after: $0) } ?? rest.endIndex
            } else {
                valueEnd =
                    rest[valueStart...].firstIndex(where: { $0.isWhitespace || $0 == "&" || $0 == ";" || $0 == "," }) ?? rest.endIndex
            }
            output += rest[..<valueStart]
            if !name.isEmpty, isSecretKey(name.replacingOccurrences(of: "_", with: "-")) || name.lowercased() == "pwd",
                valueEnd > valueStart
            {
                var secret = String(rest[valueStart..<valueEnd])
                if let quote { secret = secret.trimmingCharacters(in: CharacterSet(charactersIn: String(quote))) }
                if !secret.isEmpty { secrets.append(secret) }
                output += placeholder
            } else {
                output += rest[valueStart..<valueEnd]
            }
            rest = rest[valueEnd...]
        }
        return output + rest
    }

    /// `user/password@service` (no spaces, no scheme): Oracle's connect strings.
    static func redactConnectString(_ value: String, secrets: inout [String]) -> String {
        guard !value.contains("://"), !value.contains(where: \.isWhitespace), let slash = value.firstIndex(of: "/"),
            let at = value[slash...].firstIndex(of: "@"), slash > value.startIndex
        else { return value }
        let user = value[..<slash]
        guard user.allSatisfy({ $0.isLetter || $0.isNumber || "_-.$#".contains($0) }) else { return value }
        let password = String(value[value.index(after: slash)..<at])
        guard !password.isEmpty, password != placeholder else { return value }
        secrets.append(password)
        return "\(user)/\(placeholder)\(value[at...])"
    }

    // MARK: - Walking the tree

    struct Walker {
        var inlineSecrets: [String] = []
        var secretFiles: [String] = []

        mutating func visit(_ node: Node, key: String?, parentIsWebhook: Bool) -> Node {
            switch node {
            case .scalar(let scalar):
                let value = scalar.string
                if let key, isSecretKey(key) {
                    if isFileKey(key) || (key.lowercased() == "key" && looksLikePath(value)) {
                        secretFiles.append(value)
                        return fresh(value, style: scalar.style)
                    }
                    if !value.isEmpty { inlineSecrets.append(value) }
                    return fresh(placeholder, style: .doubleQuoted)
                }
                let webhookURL = parentIsWebhook && key?.lowercased() == "url"
                let redacted = redactValue(value, webhook: webhookURL, secrets: &inlineSecrets)
                return fresh(redacted, style: redacted == value ? scalar.style : .doubleQuoted)
            case .mapping(let mapping):
                let isWebhook = mapping.contains { pair in pair.key.string == "type" && pair.value.string == "webhook" }
                var pairs: [(Node, Node)] = []
                for (name, value) in mapping {
                    let keyName = name.string
                    let inherited = keyName.map { isSecretKey($0) && !isFileKey($0) && $0.lowercased() != "key" } ?? false
                    let newValue: Node
                    if inherited, value.scalar == nil {
                        newValue = redactAll(value)
                    } else {
                        newValue = visit(value, key: keyName, parentIsWebhook: isWebhook)
                    }
                    pairs.append((visit(name, key: nil, parentIsWebhook: false), newValue))
                }
                return .mapping(Node.Mapping(pairs, .implicit, mapping.style))
            case .sequence(let sequence):
                var items: [Node] = []
                var redactNext = false
                for item in sequence {
                    if redactNext, let value = item.string {
                        if !value.isEmpty { inlineSecrets.append(value) }
                        items.append(fresh(placeholder, style: .doubleQuoted))
                        redactNext = false
                        continue
                    }
                    redactNext = false
                    if let value = item.string, argumentFlags.contains(value) { redactNext = true }
                    // `--password=x` in an argument list.
                    if let value = item.string, value.hasPrefix("--"), let equals = value.firstIndex(of: "="),
                        argumentFlags.contains(String(value[..<equals]))
                    {
                        let secret = String(value[value.index(after: equals)...])
                        if !secret.isEmpty { inlineSecrets.append(secret) }
                        items.append(fresh(String(value[...equals]) + placeholder, style: .doubleQuoted))
                        continue
                    }
                    items.append(visit(item, key: key, parentIsWebhook: parentIsWebhook))
                }
                return .sequence(Node.Sequence(items, .implicit, sequence.style))
            case .alias:
                // compose() expands aliases into copies; an alias node left over is dropped.
                return fresh(placeholder, style: .doubleQuoted)
            }
        }

        /// Every scalar equal to one of `secrets`, replaced.
        static func scrub(_ node: Node, _ secrets: Set<String>) -> Node {
            switch node {
            case .scalar(let scalar):
                return secrets.contains(scalar.string) ? .scalar(Node.Scalar(placeholder, .implicit, .doubleQuoted)) : node
            case .mapping(let mapping):
                return .mapping(Node.Mapping(mapping.map { ($0.key, scrub($0.value, secrets)) }, .implicit, mapping.style))
            case .sequence(let sequence):
                return .sequence(Node.Sequence(sequence.map { scrub($0, secrets) }, .implicit, sequence.style))
            case .alias:
                return node
            }
        }

        /// Every scalar under a secret key (a list of communities, a mapping of tokens).
        mutating func redactAll(_ node: Node) -> Node {
            switch node {
            case .scalar(let scalar):
                if !scalar.string.isEmpty { inlineSecrets.append(scalar.string) }
                return fresh(placeholder, style: .doubleQuoted)
            case .mapping(let mapping):
                return .mapping(
                    Node.Mapping(
                        mapping.map { (visit($0.key, key: nil, parentIsWebhook: false), redactAll($0.value)) }, .implicit, mapping.style))
            case .sequence(let sequence):
                return .sequence(Node.Sequence(sequence.map { redactAll($0) }, .implicit, sequence.style))
            case .alias:
                return fresh(placeholder, style: .doubleQuoted)
            }
        }

        func fresh(_ value: String, style: Node.Scalar.Style) -> Node {
            .scalar(Node.Scalar(value, .implicit, style))
        }
    }
}
