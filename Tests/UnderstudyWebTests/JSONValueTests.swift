import Testing
import UnderstudySimulator
import UnderstudyWeb

@Suite("Web: JSON values")
struct JSONValueTests {
    @Test("parses and writes back, keys in order")
    func roundTrip() throws {
        let text = #"{"a":1,"b":[true,false,null],"c":"x\"y\\z\n","d":{"e":-2.5},"f":"\u00e9\ud83d\ude00"}"#
        let value = try JSONValue.parse(Array(text.utf8))
        #expect(value["f"] == .string("é😀"))
        #expect(value.serialized == #"{"a":1,"b":[true,false,null],"c":"x\"y\\z\n","d":{"e":-2.5},"f":"é😀"}"#)
        #expect(value.objectKeys == ["a", "b", "c", "d", "f"])
    }

    @Test("refuses what is not JSON, with the byte")
    func refusals() {
        for bad in ["", "{", "{\"a\":}", "[1,]", "{\"a\" 1}", "tru", "\"unterminated", "{} x", "01x", "\"\\ud800\"", "+1", "\"a\u{01}\""] {
            #expect(throws: JSONValue.ParseError.self, "\(bad)") { try JSONValue.parse(Array(bad.utf8)) }
        }
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(Array(deep.utf8)) }
    }

    @Test("random bytes and mutated bodies never crash the parser; what parses writes back to the same value")
    func fuzz() {
        var generator = SeededRandom(seed: 16)
        let seeds = [
            #"{"target": "node2"}"#, #"{"script": "a.sh", "timeout": 30, "x": [1, {"y": null}]}"#, #"{"ratio": "2", "time": "1h"}"#,
        ]
        let alphabet = Array("{}[]\":,\\ \n0123456789.eE+-truefalsnu\u{00}\u{7f}".utf8) + [0xff, 0xc3, 0xa9]
        for round in 0..<4000 {
            var bytes = Array(seeds[round % seeds.count].utf8)
            for _ in 0..<(1 + Int.random(in: 0..<4, using: &generator)) {
                let position = Int.random(in: 0..<max(1, bytes.count), using: &generator)
                switch Int.random(in: 0..<3, using: &generator) {
                case 0 where !bytes.isEmpty: bytes.remove(at: min(position, bytes.count - 1))
                case 1: bytes.insert(alphabet[Int.random(in: 0..<alphabet.count, using: &generator)], at: min(position, bytes.count))
                default: if !bytes.isEmpty { bytes[min(position, bytes.count - 1)] = UInt8.random(in: 0...255, using: &generator) }
                }
            }
            if let value = try? JSONValue.parse(bytes) {
                #expect((try? JSONValue.parse(Array(value.serialized.utf8))) == value, "\(value.serialized)")
            }
        }
    }
}
