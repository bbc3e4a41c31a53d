import Testing
import UnderstudyWeb

@Suite("JSON values")
struct JSONValueTests {
    @Test("parses and writes back")
    func roundTrip() throws {
        let text = #"{"a":1,"b":[true,false,null],"c":"x\"y\\z\n","d":{"e":-2.5}}"#
        let value = try JSONValue.parse(Array(text.utf8))
        #expect(value.serialized == text)
    }
}
