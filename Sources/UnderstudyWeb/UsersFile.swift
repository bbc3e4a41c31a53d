import Foundation
import UnderstudyModel
import UnderstudyNode
import Yams

/// One user of the web server and the REST API.
public struct WebUser: Sendable, Equatable {
    public var name: String
    public var role: WebRole
    public var password: PasswordHash

    public init(name: String, role: WebRole, password: PasswordHash) {
        self.name = name
        self.role = role
        self.password = password
    }

    /// Letters, digits, `.`, `_`, `-`, 1 to 64 characters (no `:`: HTTP Basic splits on it).
    public static func problemWithName(_ name: String) -> String? {
        guard (1...64).contains(name.count) else { return "a user name has 1 to 64 characters, got \(name.count)" }
        let allowed = name.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (CharacterSet.alphanumerics.contains(scalar) || "._-".unicodeScalars.contains(scalar))
        }
        guard allowed, name.first != "-" else {
            return "user name \"\(name.prefix(64))\" may hold only letters, digits, '.', '_' and '-' and not start with '-'"
        }
        return nil
    }
}

public struct UsersFileError: Error, CustomStringConvertible, Equatable {
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The users file (`users.yaml` next to the configuration, mode 0600):
///
///     users:
///       - name: admin
///         role: operator
///         password: pbkdf2-sha256$600000$SALT$HASH
///
/// Read whole; an error names the file, line and key. Written only by `understudy user`.
public enum UsersFile {
    public static func parse(_ text: String, path: String) -> Result<[WebUser], UsersFileError> {
        func fail(_ mark: Mark?, _ key: String, _ message: String) -> Result<[WebUser], UsersFileError> {
            let position = mark.map { "\($0.line):\($0.column)" } ?? "1:1"
            return .failure(UsersFileError("\(path):\(position): \(key): \(message)"))
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            return .failure(UsersFileError("\(path): not valid YAML: \(String(describing: error).prefix(200))"))
        }
        guard let root else { return .success([]) }
        guard case .mapping(let top) = root else { return fail(root.mark, "(top)", "expected a mapping with the key users") }
        var users: [WebUser] = []
        for (key, value) in top {
            guard key.string == "users" else {
                return fail(key.mark, key.string ?? "?", "unknown key; the file has only users:")
            }
            if case .scalar(let scalar) = value, ["", "~", "null"].contains(scalar.string) { continue }
            guard case .sequence(let items) = value else { return fail(value.mark, "users", "expected a list of users") }
            for (index, item) in items.enumerated() {
                let base = "users[\(index)]"
                guard case .mapping(let fields) = item else { return fail(item.mark, base, "expected a mapping (name, role, password)") }
                var name: String?
                var role: WebRole?
                var hash: PasswordHash?
                for (fieldKey, fieldValue) in fields {
                    let keyText = fieldKey.string ?? "?"
                    guard case .scalar(let scalar) = fieldValue else {
                        return fail(fieldValue.mark, "\(base).\(keyText)", "expected a single value")
                    }
                    switch keyText {
                    case "name":
                        if let problem = WebUser.problemWithName(scalar.string) { return fail(fieldValue.mark, "\(base).name", problem) }
                        name = scalar.string
                    case "role":
                        guard let value = WebRole(rawValue: scalar.string) else {
                            return fail(fieldValue.mark, "\(base).role", "expected operator or viewer, got \"\(scalar.string.prefix(40))\"")
                        }
                        role = value
                    case "password":
                        switch PasswordHash.parse(scalar.string) {
                        case .success(let value): hash = value
                        case .failure(let problem): return fail(fieldValue.mark, "\(base).password", problem.description)
                        }
                    default:
                        return fail(fieldKey.mark, "\(base).\(keyText)", "unknown key; known keys: name, role, password")
                    }
                }
                guard let name else { return fail(item.mark, base, "missing required key name") }
                guard let role else { return fail(item.mark, base, "missing required key role") }
                guard let hash else { return fail(item.mark, base, "missing required key password") }
                if users.contains(where: { $0.name == name }) {
                    return fail(item.mark, "\(base).name", "user \(name) appears twice")
                }
                users.append(WebUser(name: name, role: role, password: hash))
            }
        }
        return .success(users)
    }

    /// Reads the file; a missing file has no users.
    public static func load(path: String) throws(UsersFileError) -> [WebUser] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        guard let data = FileManager.default.contents(atPath: path) else { throw UsersFileError("\(path): cannot be read") }
        guard let text = String(data: data, encoding: .utf8) else { throw UsersFileError("\(path): not UTF-8 text") }
        switch parse(text, path: path) {
        case .success(let users): return users
        case .failure(let error): throw error
        }
    }

    public static func render(_ users: [WebUser]) -> String {
        var text = "# Users of the Understudy web server and REST API. Written by `understudy user`;\n"
        text += "# passwords are salted PBKDF2-HMAC-SHA256 hashes, never the passwords themselves.\n"
        text += "users:\n"
        for user in users {
            text += "  - name: \(user.name)\n    role: \(user.role.rawValue)\n    password: \"\(user.password)\"\n"
        }
        return text
    }

    /// Writes the file atomically with mode 0600 (it holds password hashes).
    public static func save(_ users: [WebUser], path: String) throws(UsersFileError) {
        do {
            try AtomicFile.write(Array(render(users).utf8), to: path)
        } catch {
            throw UsersFileError(error.description)
        }
    }
}
