import Foundation
import Testing
import UnderstudyModel
import UnderstudySimulator

@testable import UnderstudyWeb

@Suite("Web: users, hashes, access")
struct UsersAndAccessTests {
    @Test("PBKDF2 hashes verify the password only, and read back from their text")
    func passwordHash() throws {
        let hash = try PasswordHash.make(password: "correct horse", rounds: PasswordHash.minimumRounds)
        #expect(hash.verify("correct horse"))
        #expect(!hash.verify("correct horse "))
        #expect(!hash.verify(""))
        let text = hash.description
        #expect(text.hasPrefix("pbkdf2-sha256$100000$") && !text.contains("correct"))
        #expect(try PasswordHash.parse(text).get() == hash)
        let other = try PasswordHash.make(password: "correct horse", rounds: PasswordHash.minimumRounds)
        #expect(other.salt != hash.salt && other.hash != hash.hash, "a fresh salt each time")
    }

    @Test("a hash text that is not one says why")
    func badHashes() {
        for (text, reason) in [
            ("secret", "not a password"), ("pbkdf2-sha256$1000$AAAAAAAAAAA=$AAAA", "rounds must be"),
            ("pbkdf2-sha256$200000$!!$AAAA", "salt"), ("pbkdf2-sha256$200000$AAAAAAAAAAA=$AAAA", "hash"),
        ] {
            guard case .failure(let error) = PasswordHash.parse(text) else {
                Issue.record("\(text) parsed")
                continue
            }
            #expect(error.description.contains(reason), "\(text): \(error)")
        }
    }

    @Test("the users file round-trips and names file, line and key of a mistake")
    func usersFile() throws {
        let hash = try PasswordHash.make(password: "pw-123456", rounds: PasswordHash.minimumRounds)
        let users = [WebUser(name: "admin", role: .operator, password: hash), WebUser(name: "ops.view-1", role: .viewer, password: hash)]
        let text = UsersFile.render(users)
        #expect(try UsersFile.parse(text, path: "u.yaml").get() == users)
        let cases: [(String, String)] = [
            ("users:\n  - name: a\n    role: boss\n    password: \"\(hash)\"\n", "u.yaml:3:11: users[0].role: expected operator or viewer"),
            ("users:\n  - name: a\n    role: viewer\n    password: hunter2\n", "u.yaml:4:15: users[0].password: expected pbkdf2-sha256"),
            ("users:\n  - name: \"a:b\"\n    role: viewer\n    password: \"\(hash)\"\n", "u.yaml:2:11: users[0].name: user name"),
            ("users:\n  - name: a\n    role: viewer\n", "users[0]: missing required key password"),
            (
                "users:\n  - {name: a, role: viewer, password: \"\(hash)\"}\n  - {name: a, role: viewer, password: \"\(hash)\"}\n",
                "appears twice"
            ),
            ("people: []\n", "u.yaml:1:1: people: unknown key"),
            ("users:\n  - name: a\n    colour: blue\n", "users[0].colour: unknown key"),
            ("users: [oops\n", "u.yaml: not valid YAML"),
        ]
        for (yaml, expected) in cases {
            guard case .failure(let error) = UsersFile.parse(yaml, path: "u.yaml") else {
                Issue.record("parsed: \(yaml)")
                continue
            }
            #expect(error.description.contains(expected), "\(error)")
        }
        #expect(try UsersFile.parse("", path: "u.yaml").get().isEmpty)
        #expect(try UsersFile.parse("users:\n", path: "u.yaml").get().isEmpty)
    }

    @Test("mutated users files load or fail with a message naming the file, never crash")
    func usersFileFuzz() throws {
        let hash = try PasswordHash.make(password: "pw-123456", rounds: PasswordHash.minimumRounds)
        let base = Array(UsersFile.render([WebUser(name: "admin", role: .operator, password: hash)]).utf8)
        var generator = SeededRandom(seed: 7)
        for _ in 0..<1500 {
            var bytes = base
            for _ in 0..<(1 + Int.random(in: 0..<3, using: &generator)) {
                let position = Int.random(in: 0..<bytes.count, using: &generator)
                bytes[position] = Array(" :-\n\"'[]{}#&*!|>%@`abc$=".utf8).randomElement(using: &generator) ?? 0x20
            }
            switch UsersFile.parse(String(decoding: bytes, as: UTF8.self), path: "fuzz.yaml") {
            case .success(let users): #expect(users.allSatisfy { WebUser.problemWithName($0.name) == nil })
            case .failure(let error): #expect(error.description.hasPrefix("fuzz.yaml"), "\(error)")
            }
        }
    }

    @Test("save writes mode 0600 and load reads it back")
    func saveAndLoad() throws {
        let path = FileManager.default.temporaryDirectory.path + "/users-\(UUID().uuidString).yaml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(try UsersFile.load(path: path).isEmpty, "a missing file has no users")
        let users = [WebUser(name: "a", role: .viewer, password: try PasswordHash.make(password: "pw-123456", rounds: 100_000))]
        try UsersFile.save(users, path: path)
        #expect(try UsersFile.load(path: path) == users)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }

    @Test("address ranges and the role a client address allows")
    func access() {
        #expect(AddressRange("10.0.0.0/24")?.contains("10.0.0.200") == true)
        #expect(AddressRange("10.0.0.0/24")?.contains("10.0.1.1") == false)
        #expect(AddressRange("10.0.0.7")?.contains("10.0.0.7") == true)
        #expect(AddressRange("10.0.0.7")?.contains("10.0.0.8") == false)
        #expect(AddressRange("10.0.0.0/8")?.contains("::ffff:10.9.9.9") == true)
        #expect(AddressRange("fd00::/64")?.contains("fd00::1:2") == true)
        #expect(AddressRange("fd00::/64")?.contains("fd00:0:0:1::1") == false)
        #expect(AddressRange("0.0.0.0/0")?.contains("192.168.1.1") == true)
        #expect(AddressRange("10.0.0.0/33") == nil)
        #expect(AddressRange("nonsense") == nil)

        let open = AccessPolicy([:])
        #expect(open.effectiveRole(user: .operator, address: "1.2.3.4") == .operator)
        let policy = AccessPolicy([.operator: ["10.0.0.0/24"], .viewer: ["10.0.0.0/16"]])
        #expect(policy.effectiveRole(user: .operator, address: "10.0.0.5") == .operator)
        #expect(policy.effectiveRole(user: .operator, address: "10.0.9.5") == .viewer, "view only from the viewer list")
        #expect(policy.effectiveRole(user: .viewer, address: "10.0.0.5") == .viewer)
        #expect(policy.effectiveRole(user: .operator, address: "192.168.0.1") == nil)
        #expect(policy.effectiveRole(user: .viewer, address: nil) == nil)
    }

    @Test("sessions expire after the idle timeout and end with their user")
    func sessions() throws {
        var store = SessionStore(timeout: .seconds(10))
        let start = ContinuousClock.now
        let (id, csrf) = store.open(user: "a", role: .operator, now: start)
        #expect(id != csrf && id.count >= 40)
        #expect(store.use(id, now: start + .seconds(9))?.csrfToken == csrf)
        #expect(store.use(id, now: start + .seconds(18)) != nil, "each use refreshes it")
        #expect(store.use(id, now: start + .seconds(29)) == nil)
        #expect(store.use("forged", now: start) == nil)
        let (second, _) = store.open(user: "b", role: .viewer, now: start)
        store.keepOnly([])
        #expect(store.use(second, now: start) == nil)
        #expect(SessionStore.sessionID(fromCookieHeader: "x=1; understudy_session=abc; y=2") == "abc")
        #expect(SessionStore.sessionID(fromCookieHeader: "understudy_session=") == nil)
        let cookie = SessionStore.cookie(id: "abc", maxAge: .seconds(60))
        #expect(cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("SameSite=Strict"))
    }

    @Test("five failed logins within a minute lock the address out until the oldest ages out")
    func throttle() {
        var throttle = LoginThrottle()
        let start = ContinuousClock.now
        for index in 0..<LoginThrottle.limit {
            #expect(throttle.wait(for: "a", now: start + .seconds(index)) == nil)
            _ = throttle.failed("a", now: start + .seconds(index))
        }
        #expect(throttle.wait(for: "a", now: start + .seconds(5)) == .seconds(55))
        #expect(throttle.wait(for: "b", now: start + .seconds(5)) == nil, "other addresses are not affected")
        #expect(throttle.wait(for: "a", now: start + .seconds(61)) == nil)
        throttle.succeeded("a")
        #expect(throttle.wait(for: "a", now: start + .seconds(5)) == nil)
    }
}
