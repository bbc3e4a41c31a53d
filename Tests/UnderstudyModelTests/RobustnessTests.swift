import Foundation
import Testing

@testable import UnderstudyModel

/// Garbage in must give errors out, never a crash or a hang.
@Suite("Garbage input")
struct RobustnessTests {
    /// Loads and returns the diagnostics, whichever way it goes.
    func outcome(_ yaml: String) -> [ConfigDiagnostic] {
        do {
            return try load(yaml).warnings
        } catch {
            #expect(!error.errors.isEmpty, "a thrown ConfigErrors always holds an error")
            return error.diagnostics
        }
    }

    @Test(arguments: [
        "", " ", "\n\n", "# only a comment\n", "---\n", "--- \n...\n", "~", "null", "42", "just text", "[1, 2, 3]",
        "- a\n- b\n", "{", "}", "[", "]", ":", "::::", "'", "\"", "&a", "*a", "!!binary xyz", "? [a, b]\n: c\n",
        "cluster: *undefined\n", "cluster:\n  name: &n c1\n  secret-file: *n\nservers: [*n]\n",
        "a: b\n---\nc: d\n", "\u{0}\u{1}\u{2}", "cluster: \u{7F}\u{0}", "\u{FEFF}cluster: {}\n",
        "cluster: [[[[[[[[[[]]]]]]]]]]\n", "servers: [{name: {name: {name: x}}}]\n", "groups: [[], {}, 1, null]\n",
        "cluster:\n  name: 🚀\n  secret-file: /k\nservers:\n  - name: ñode\n",
        "cluster: {name: c, secret-file: /k, timing: {heartbeat-interval: 99999999999999999999999h}}\nservers: [a]\n",
        "cluster: {name: c, secret-file: /k, ports: {control: 99999999999999999999999999}}\nservers: [a]\n",
        "cluster: {name: c, secret-file: /k}\nservers: [a]\ngroups: [{name: g, resources: [{name: r, type: exec, depends: {a: b}}]}]\n",
        "cluster: {name: c, secret-file: /k}\nservers: [a]\nmonitors: [{name: m, type: mtw, monitors: [m], recovery: {target: m}}]\n",
        "cluster: {name: c, secret-file: ''}\nservers: ['']\n",
    ])
    func neverCrashes(yaml: String) {
        _ = outcome(yaml)
    }

    @Test func deepNestingIsRefusedNotCrashed() {
        let deep = "cluster: " + String(repeating: "[", count: 5_000) + String(repeating: "]", count: 5_000) + "\n"
        let problems = outcome(deep)
        #expect(problems.contains { $0.severity == .error })
    }

    @Test func nestingJustUnderTheParserLimit() {
        let deep = "cluster: " + String(repeating: "[", count: 990) + String(repeating: "]", count: 990) + "\n"
        #expect(outcome(deep).contains { $0.severity == .error })
    }

    @Test func randomBytesNeverCrash() {
        var generator = SeededGenerator(seed: 0x5EED)
        for _ in 0..<300 {
            let length = Int.random(in: 0..<400, using: &generator)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            let text = String(decoding: bytes, as: UTF8.self)
            _ = outcome(text)
        }
    }

    /// Mutations of the real example: delete, duplicate or replace characters.
    @Test func mutatedExampleNeverCrashes() throws {
        let example = Array(try String(contentsOfFile: examplePath, encoding: .utf8))
        var generator = SeededGenerator(seed: 42)
        let alphabet: [Character] = Array(" \n\t:-[]{},#&*!|>'\"0123456789abcxyz./")
        for _ in 0..<200 {
            var text = example
            for _ in 0..<Int.random(in: 1...6, using: &generator) {
                guard !text.isEmpty else { break }
                let index = Int.random(in: 0..<text.count, using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0: text.remove(at: index)
                case 1: text.insert(text[index], at: index)
                default: text[index] = alphabet[Int.random(in: 0..<alphabet.count, using: &generator)]
                }
            }
            _ = outcome(String(text))
        }
    }

    @Test func hugeListsAreFine() {
        let servers = (0..<2_000).map { "  - name: n\($0)" }.joined(separator: "\n")
        let problems = outcome("cluster: {name: c, secret-file: /k}\nservers:\n" + servers + "\n")
        #expect(problems.contains { $0.keyPath == "heartbeats" })
    }

    @Test func longDependencyChainHasNoStackTrouble() {
        let count = 3_000
        let resources = (0..<count).map { index in
            "      - {name: r\(index), type: exec, stop: /bin/true, depends: [r\((index + 1) % count)]}"
        }.joined(separator: "\n")
        let yaml = "cluster: {name: c, secret-file: /k}\nservers: [a]\ngroups:\n  - name: g\n    resources:\n" + resources + "\n"
        let problems = outcome(yaml)
        #expect(problems.filter { $0.message.hasPrefix("dependency cycle") }.count == 1)
    }
}

/// SplitMix64: a small deterministic generator so failures replay.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
