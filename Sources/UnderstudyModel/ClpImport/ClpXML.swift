import Foundation

/// One element of a `clp.conf` file: its name, attributes, child elements, text and line.
///
/// A small, tolerant reader of its own rather than FoundationXML: `clp.conf` uses plain
/// elements, attributes, text, comments and the XML declaration (no namespaces, no DTD), real
/// files come in Shift_JIS or EUC-JP, and every error has to name a line.
public struct ClpXMLElement: Sendable, Equatable {
    public var name: String
    public var attributes: [String: String]
    public var children: [ClpXMLElement]
    public var text: String
    public var line: Int

    public init(name: String, attributes: [String: String] = [:], children: [ClpXMLElement] = [], text: String = "", line: Int = 0) {
        self.name = name
        self.attributes = attributes
        self.children = children
        self.text = text
        self.line = line
    }

    /// The key NEC's tools write after `@` in a path: `name="…"`, or `id="…"` for `device`,
    /// `list`, `grp`, … (`element@key` ≡ `<element name="key">`).
    public var key: String? { attributes["name"] ?? attributes["id"] }

    /// `element` or `element@key`, as in the reference's path notation.
    public var pathComponent: String { key.map { "\(name)@\($0)" } ?? name }

    /// The text of the element, trimmed.
    public var value: String { text.trimmingCharacters(in: .whitespacesAndNewlines) }

    public func children(named name: String) -> [ClpXMLElement] { children.filter { $0.name == name } }

    /// The first child `name`, or with `key` the one whose key is `key`.
    public func child(_ name: String, key: String? = nil) -> ClpXMLElement? {
        children.first { $0.name == name && (key == nil || $0.key == key) }
    }

    /// The element at a slash-separated path of names (`act/path`).
    public func element(at path: String) -> ClpXMLElement? {
        var current = self
        for part in path.split(separator: "/") {
            let pieces = part.split(separator: "@", maxSplits: 1).map(String.init)
            guard let next = current.child(pieces[0], key: pieces.count > 1 ? pieces[1] : nil) else { return nil }
            current = next
        }
        return current
    }

    /// The trimmed text at `path`; nil when absent or empty (clp.conf is sparse: absent or
    /// empty means the default).
    public func string(_ path: String) -> String? {
        guard let text = element(at: path)?.value, !text.isEmpty else { return nil }
        return text
    }
}

/// Why a `clp.conf` could not be read, with its line (1-based) when there is one.
public struct ClpImportError: Error, Sendable, CustomStringConvertible, Equatable {
    public var line: Int?
    public var message: String

    public init(line: Int?, _ message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { line.map { "line \($0): \(message)" } ?? message }
}

public enum ClpXML {
    /// The encoding named in the XML declaration (`<?xml … encoding="EUC-JP"?>`), if any.
    public static func declaredEncoding(_ data: Data) -> String? {
        let head = data.prefix(200)
        guard let text = String(bytes: head.map { $0 < 0x80 ? $0 : 0x3F }, encoding: .ascii),
            let declaration = text.range(of: #"<\?xml[^>]*\?>"#, options: .regularExpression)
        else { return nil }
        let part = String(text[declaration])
        guard let match = part.range(of: #"encoding\s*=\s*["'][^"']*["']"#, options: .regularExpression) else { return nil }
        let assignment = part[match]
        return assignment.split(whereSeparator: { $0 == "\"" || $0 == "'" }).dropFirst().first.map(String.init)
    }

    /// The text of a file: decoded as its declaration says (Shift_JIS, EUC-JP, UTF-8, ASCII;
    /// an "ASCII" file that holds other bytes is tried as UTF-8, Shift_JIS and EUC-JP, as
    /// NEC's tools write the GUI's encoding into files declared ASCII), line ends as `\n`.
    public static func decode(_ data: Data) throws(ClpImportError) -> String {
        var bytes = data
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
        let declared = declaredEncoding(bytes)?.uppercased().replacingOccurrences(of: "_", with: "-")
        let candidates: [String.Encoding]
        switch declared {
        case "SHIFT-JIS", "SJIS", "SHIFTJIS", "WINDOWS-31J", "CP932", "MS932", "X-SJIS":
            candidates = [.shiftJIS, .utf8]
        case "EUC-JP", "EUCJP", "X-EUC-JP":
            candidates = [.japaneseEUC, .utf8]
        case nil, "UTF-8", "UTF8", "ASCII", "US-ASCII":
            candidates = [.utf8, .shiftJIS, .japaneseEUC]
        case "ISO-8859-1", "LATIN1":
            candidates = [.utf8, .isoLatin1]
        case let other?:
            // GB2312 and friends: Foundation on Linux cannot decode them; plain ASCII content
            // (the usual case for English settings) still reads.
            candidates = [.utf8]
            if String(data: bytes, encoding: .utf8) == nil {
                throw ClpImportError(
                    line: 1,
                    "the file is declared \(other), which this converter cannot decode; convert it to UTF-8 first (iconv -f \(other) -t UTF-8)"
                )
            }
        }
        for encoding in candidates {
            if let text = text(of: bytes, in: encoding) {
                return text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            }
        }
        throw ClpImportError(
            line: firstUndecodableLine(bytes),
            "the bytes are not valid text in \(candidates.map(name).joined(separator: ", ")) (declared: \(declared ?? "none"))")
    }

    /// Foundation on Linux decodes Shift_JIS but not EUC-JP (`String(data:encoding:
    /// .japaneseEUC)` is always nil there). Both encode JIS X 0208 by arithmetic, so EUC-JP is
    /// turned into Shift_JIS and decoded as that.
    static func text(of bytes: Data, in encoding: String.Encoding) -> String? {
        guard encoding == .japaneseEUC else { return String(data: bytes, encoding: encoding) }
        if let text = String(data: bytes, encoding: .japaneseEUC) { return text }
        guard let shiftJIS = shiftJIS(fromEUCJP: bytes) else { return nil }
        return String(data: shiftJIS, encoding: .shiftJIS)
    }

    /// EUC-JP bytes as Shift_JIS; nil for bytes that are not EUC-JP or characters Shift_JIS
    /// lacks (JIS X 0212, `0x8F` …).
    static func shiftJIS(fromEUCJP bytes: Data) -> Data? {
        var output = Data()
        output.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let first = bytes[index]
            if first < 0x80 {
                output.append(first)
                index += 1
                continue
            }
            guard index + 1 < bytes.endIndex else { return nil }
            let second = bytes[index + 1]
            if first == 0x8E {
                // Half-width katakana: the same byte in Shift_JIS.
                guard (0xA1...0xDF).contains(second) else { return nil }
                output.append(second)
            } else if (0xA1...0xFE).contains(first) && (0xA1...0xFE).contains(second) {
                let row = Int(first) - 0x80
                let cell = Int(second) - 0x80
                var lead = ((row + 1) >> 1) + 0x70
                if lead >= 0xA0 { lead += 0x40 }
                var trail: Int
                if row % 2 == 1 {
                    trail = cell + 0x1F
                    if trail >= 0x7F { trail += 1 }
                } else {
                    trail = cell + 0x7E
                }
                guard lead <= 0xFC else { return nil }
                output.append(UInt8(lead))
                output.append(UInt8(trail))
            } else {
                return nil
            }
            index += 2
        }
        return output
    }

    private static func name(_ encoding: String.Encoding) -> String {
        switch encoding {
        case .shiftJIS: return "Shift_JIS"
        case .japaneseEUC: return "EUC-JP"
        case .isoLatin1: return "ISO-8859-1"
        default: return "UTF-8"
        }
    }

    /// The line of the first byte above 0x7F: where decoding most likely went wrong.
    private static func firstUndecodableLine(_ bytes: Data) -> Int {
        var line = 1
        for byte in bytes {
            if byte == 0x0A { line += 1 }
            if byte >= 0x80 { return line }
        }
        return line
    }

    /// Parses a whole file into its root element.
    public static func parse(_ data: Data) throws(ClpImportError) -> ClpXMLElement {
        var parser = Parser(Array(try decode(data).unicodeScalars))
        return try parser.document()
    }

    /// Parses text (already decoded).
    public static func parse(text: String) throws(ClpImportError) -> ClpXMLElement {
        var parser = Parser(Array(text.replacingOccurrences(of: "\r\n", with: "\n").unicodeScalars))
        return try parser.document()
    }

    private struct Parser {
        let scalars: [Unicode.Scalar]
        var index = 0
        var line = 1

        init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

        var atEnd: Bool { index >= scalars.count }

        func peek(_ text: String) -> Bool {
            var position = index
            for scalar in text.unicodeScalars {
                guard position < scalars.count, scalars[position] == scalar else { return false }
                position += 1
            }
            return true
        }

        mutating func advance(_ count: Int = 1) {
            for _ in 0..<count where index < scalars.count {
                if scalars[index] == "\n" { line += 1 }
                index += 1
            }
        }

        mutating func skip(until terminator: String, what: String) throws(ClpImportError) {
            let start = line
            while !atEnd && !peek(terminator) { advance() }
            guard !atEnd else { throw ClpImportError(line: start, "\(what) is not closed (missing \"\(terminator)\")") }
            advance(terminator.unicodeScalars.count)
        }

        mutating func skipWhitespace() {
            while !atEnd, scalars[index].properties.isWhitespace { advance() }
        }

        /// Skips the declaration, comments, processing instructions and a DOCTYPE.
        mutating func skipMisc() throws(ClpImportError) {
            while true {
                skipWhitespace()
                if peek("<?") {
                    try skip(until: "?>", what: "a processing instruction")
                } else if peek("<!--") {
                    try skip(until: "-->", what: "a comment")
                } else if peek("<!DOCTYPE") || peek("<!doctype") {
                    try skip(until: ">", what: "the DOCTYPE")
                } else {
                    return
                }
            }
        }

        mutating func document() throws(ClpImportError) -> ClpXMLElement {
            try skipMisc()
            guard !atEnd else { throw ClpImportError(line: line, "the file holds no XML element") }
            guard peek("<") else { throw ClpImportError(line: line, "expected \"<\" where the root element should start") }
            let root = try element()
            try skipMisc()
            guard atEnd else { throw ClpImportError(line: line, "text after the end of the root element <\(root.name)>") }
            return root
        }

        mutating func name() throws(ClpImportError) -> String {
            var result = ""
            while !atEnd {
                let scalar = scalars[index]
                if scalar.properties.isWhitespace || "/>=<\"'".unicodeScalars.contains(scalar) { break }
                result.unicodeScalars.append(scalar)
                advance()
            }
            guard !result.isEmpty else { throw ClpImportError(line: line, "expected a name") }
            return result
        }

        mutating func element() throws(ClpImportError) -> ClpXMLElement {
            let startLine = line
            advance()  // <
            var element = ClpXMLElement(name: try name(), line: startLine)
            while true {
                skipWhitespace()
                guard !atEnd else { throw ClpImportError(line: startLine, "element <\(element.name)> is not closed") }
                if peek("/>") {
                    advance(2)
                    return element
                }
                if peek(">") {
                    advance()
                    break
                }
                let attribute = try name()
                skipWhitespace()
                guard peek("=") else { throw ClpImportError(line: line, "attribute \(attribute) of <\(element.name)> has no value") }
                advance()
                skipWhitespace()
                guard !atEnd, scalars[index] == "\"" || scalars[index] == "'" else {
                    throw ClpImportError(line: line, "the value of attribute \(attribute) of <\(element.name)> is not quoted")
                }
                let quote = scalars[index]
                advance()
                var raw = ""
                while !atEnd && scalars[index] != quote {
                    raw.unicodeScalars.append(scalars[index])
                    advance()
                }
                guard !atEnd else { throw ClpImportError(line: line, "the value of attribute \(attribute) is not closed") }
                advance()
                element.attributes[attribute] = try unescape(raw)
            }
            var text = ""
            while true {
                guard !atEnd else {
                    throw ClpImportError(line: startLine, "element <\(element.name)> is not closed (no </\(element.name)>)")
                }
                if peek("</") {
                    let closeLine = line
                    advance(2)
                    let closing = try name()
                    skipWhitespace()
                    guard peek(">") else { throw ClpImportError(line: line, "expected \">\" after </\(closing)") }
                    advance()
                    guard closing == element.name else {
                        throw ClpImportError(
                            line: closeLine, "</\(closing)> closes <\(element.name)> opened at line \(startLine)")
                    }
                    element.text = try unescape(text)
                    return element
                }
                if peek("<!--") {
                    try skip(until: "-->", what: "a comment")
                } else if peek("<![CDATA[") {
                    advance(9)
                    let start = line
                    while !atEnd && !peek("]]>") {
                        text.unicodeScalars.append(scalars[index])
                        advance()
                    }
                    guard !atEnd else { throw ClpImportError(line: start, "a CDATA section is not closed") }
                    advance(3)
                } else if peek("<?") {
                    try skip(until: "?>", what: "a processing instruction")
                } else if peek("<") {
                    element.children.append(try self.element())
                } else {
                    text.unicodeScalars.append(scalars[index])
                    advance()
                }
            }
        }

        func unescape(_ raw: String) throws(ClpImportError) -> String {
            guard raw.contains("&") else { return raw }
            var result = ""
            var rest = Substring(raw)
            while let ampersand = rest.firstIndex(of: "&") {
                result += rest[..<ampersand]
                guard let semicolon = rest[ampersand...].firstIndex(of: ";") else {
                    // A bare & (some hand-edited files): kept as it is.
                    result += rest[ampersand...]
                    return result
                }
                let entity = rest[rest.index(after: ampersand)..<semicolon]
                switch entity {
                case "lt": result += "<"
                case "gt": result += ">"
                case "amp": result += "&"
                case "quot": result += "\""
                case "apos": result += "'"
                default:
                    var number: UInt32?
                    if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                        number = UInt32(entity.dropFirst(2), radix: 16)
                    } else if entity.hasPrefix("#") {
                        number = UInt32(entity.dropFirst())
                    }
                    guard let number, let scalar = Unicode.Scalar(number) else {
                        throw ClpImportError(line: line, "unknown entity &\(entity);")
                    }
                    result.unicodeScalars.append(scalar)
                }
                rest = rest[rest.index(after: semicolon)...]
            }
            return result + rest
        }
    }
}
