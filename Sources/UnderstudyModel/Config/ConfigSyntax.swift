// Small syntax checks shared by the loader and the validator: IP addresses, CIDR, host and
// object names, "did you mean" suggestions. Written by hand so they behave the same on every
// platform and never touch the network.

/// An IPv4 or IPv6 address, parsed without the resolver.
public enum IPAddressSyntax {
    /// Four dotted decimal parts 0–255, no leading zeros (they mean octal to some tools).
    public static func isIPv4(_ text: String) -> Bool {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return false }
        return parts.allSatisfy { part in
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let value = Int(part), value <= 255
            else { return false }
            return part.count == 1 || part.first != "0"
        }
    }

    /// Eight hex groups, `::` for one run of zero groups, an IPv4 tail allowed.
    /// Zone ids (`%eth0`) are refused: cluster addresses must not be link-local.
    public static func isIPv6(_ text: String) -> Bool {
        guard text.contains(":"), text.count <= 45 else { return false }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return false }
        func groups(_ part: String, allowIPv4Tail: Bool) -> Int? {
            if part.isEmpty { return 0 }
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            var count = 0
            for (index, piece) in pieces.enumerated() {
                if allowIPv4Tail, index == pieces.count - 1, piece.contains(".") {
                    guard isIPv4(String(piece)) else { return nil }
                    count += 2
                } else {
                    guard (1...4).contains(piece.count), piece.allSatisfy(\.isHexDigit) else { return nil }
                    count += 1
                }
            }
            return count
        }
        if halves.count == 1 {
            return groups(text, allowIPv4Tail: true) == 8
        }
        guard let head = groups(halves[0], allowIPv4Tail: false),
            let tail = groups(halves[1], allowIPv4Tail: true)
        else { return false }
        return head + tail <= 7
    }

    public static func isIPAddress(_ text: String) -> Bool { isIPv4(text) || isIPv6(text) }

    /// An address with an optional prefix length (`192.168.0.12/24`, `fd00::12/64`).
    /// Returns a reason when it is not valid.
    public static func problemWithAddress(_ text: String, prefixRequired: Bool) -> String? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2 else { return "\"\(text)\" is not an IP address with a prefix length" }
        let address = String(parts[0])
        let isV4 = isIPv4(address)
        guard isV4 || isIPv6(address) else {
            return "\"\(address)\" is not a valid IPv4 or IPv6 address"
        }
        if !isV4,
            address.lowercased().hasPrefix("fe8") || address.lowercased().hasPrefix("fe9")
                || address.lowercased().hasPrefix("fea") || address.lowercased().hasPrefix("feb")
        {
            return "link-local address \"\(address)\" cannot float between servers"
        }
        guard parts.count == 2 else {
            return prefixRequired ? "\"\(text)\" needs a prefix length, e.g. \(address)/24" : nil
        }
        let maximum = isV4 ? 32 : 128
        guard let prefix = Int(parts[1]), parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
            (1...maximum).contains(prefix)
        else {
            return "prefix length \"\(parts[1])\" must be a number from 1 to \(maximum)"
        }
        return nil
    }
}

enum NameSyntax {
    /// Lowercase RFC 1123 host name: labels of a–z, 0–9 and `-`, not starting or ending with
    /// `-`, joined by dots. CLUSTERPRO requires server names to be lowercase host names.
    static func isLowercaseHostname(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 253 else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            guard (1...63).contains(label.count), label.first != "-", label.last != "-" else { return false }
            return label.allSatisfy { ($0 >= "a" && $0 <= "z") || ($0 >= "0" && $0 <= "9") || $0 == "-" }
        }
    }

    /// A host for witnesshb, httpnp and database monitors: an IP address or a host name
    /// (any case).
    static func isHost(_ text: String) -> Bool {
        IPAddressSyntax.isIPAddress(text) || isLowercaseHostname(text.lowercased())
    }

    /// Group, resource, monitor, heartbeat and cluster names become directory names, log file
    /// names and script variables: letters, digits, `_`, `-`, `.`, at most 63 characters, not
    /// starting with `-` or `.`.
    static func problemWithObjectName(_ text: String) -> String? {
        guard !text.isEmpty else { return "a name must not be empty" }
        guard text.utf8.count <= 63 else { return "name \"\(text)\" is longer than 63 characters" }
        let allowed = text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }
        guard allowed, text.first != "-", text.first != "." else {
            return "name \"\(text)\" may hold only letters, digits, '_', '-' and '.', and must not start with '-' or '.'"
        }
        return nil
    }
}

enum Suggestion {
    /// The candidate closest to `word`, when it is close enough to be a likely typo.
    static func closest(to word: String, in candidates: [String]) -> String? {
        let limit = max(1, min(3, word.count / 3))
        var best: (candidate: String, distance: Int)?
        for candidate in candidates {
            let distance = editDistance(word.lowercased(), candidate.lowercased())
            if distance <= limit, distance < (best?.distance ?? Int.max) {
                best = (candidate, distance)
            }
        }
        return best?.candidate
    }

    /// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
    /// two neighbours each cost 1.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a.prefix(200)), b = Array(b.prefix(200))
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previousPrevious = [Int](repeating: 0, count: b.count + 1)
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
                if i > 1, j > 1, a[i - 1] == b[j - 2], a[i - 2] == b[j - 1] {
                    current[j] = min(current[j], previousPrevious[j - 2] + 1)
                }
            }
            previousPrevious = previous
            previous = current
        }
        return previous[b.count]
    }

    /// ` (did you mean "x"?)` or "".
    static func didYouMean(_ word: String, in candidates: [String]) -> String {
        guard let match = closest(to: word, in: candidates), match != word else { return "" }
        return " (did you mean \"\(match)\"?)"
    }
}

extension Array where Element == String {
    /// `a, b, c` for messages.
    var listed: String { joined(separator: ", ") }
}
