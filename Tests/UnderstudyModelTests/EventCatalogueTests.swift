import Foundation
import Testing
import UnderstudyModel

/// Every logged event comes from the catalogue (EventCatalogue.swift), and the event table of
/// docs/alerts.md is the catalogue.
@Suite("Event catalogue")
struct EventCatalogueTests {
    static func sources() -> [(path: String, text: String)] {
        let root = packageRoot + "/Sources"
        let files = FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        return files.sorted().compactMap { file in
            (try? String(contentsOfFile: root + "/" + file, encoding: .utf8)).map { (file, $0) }
        }
    }

    @Test("module and id are unique; every event has a meaning")
    func unique() {
        var seen: Set<String> = []
        for event in EventKind.all {
            #expect(seen.insert(event.description).inserted, "\(event) twice")
            #expect(!event.meaning.isEmpty && !event.meaning.contains("|"), "\(event)")
        }
    }

    @Test("no log call names a module and id of its own: they come from the catalogue")
    func noLiteralIDs() throws {
        let literal = try Regex(#"(\blog|LogEntry)\(\s*[^)]*?"[a-z]+",\s*[0-9]+"#)
        for (file, text) in Self.sources() where !file.hasSuffix("EventCatalogue.swift") {
            for match in text.matches(of: literal) {
                Issue.record("\(file): \(text[match.range].prefix(80)) — use an EventKind of EventCatalogue.swift")
            }
        }
    }

    @Test("every catalogued event is logged somewhere")
    func everyEventUsed() {
        let code = Self.sources().filter { !$0.path.hasSuffix("EventCatalogue.swift") }.map(\.text).joined()
        let names = Self.catalogueNames()
        #expect(names.count == EventKind.all.count)
        for name in names where !code.contains(".\(name)") {
            Issue.record("EventKind.\(name) is never logged: remove it, or log it")
        }
    }

    @Test("docs/alerts.md's event table is the catalogue")
    func documented() throws {
        let doc = try String(contentsOfFile: packageRoot + "/docs/alerts.md", encoding: .utf8)
        let begin = "<!-- events: generated from EventCatalogue.swift -->\n"
        let end = "\n<!-- events end -->"
        guard let start = doc.range(of: begin), let stop = doc.range(of: end, range: start.upperBound..<doc.endIndex) else {
            Issue.record("docs/alerts.md has no event table between \(begin.trimmingCharacters(in: .newlines)) and \(end)")
            return
        }
        let table = String(doc[start.upperBound..<stop.lowerBound])
        #expect(table == EventKind.markdownTable, "docs/alerts.md's event table differs; it should read:\n\(EventKind.markdownTable)")
    }

    /// The names of the static members, read from the catalogue's source.
    static func catalogueNames() -> [String] {
        let text = sources().first { $0.path.hasSuffix("EventCatalogue.swift") }?.text ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let range = line.range(of: "public static let "), line.contains("= EventKind(") else { return nil }
            return String(line[range.upperBound...].prefix { $0 != " " })
        }
    }
}
