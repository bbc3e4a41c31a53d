import ArgumentParser
import Foundation
import UnderstudyModel
import UnderstudyWeb

#if canImport(Glibc)
    import Glibc
#endif

/// `understudy user add|passwd|list|remove`: the users of the web server and REST API, in
/// the users file next to the configuration (`cluster.web.users-file`, default users.yaml).
struct UserCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "user", abstract: "Manage the users of the web server and REST API (password hashes, never passwords).",
        subcommands: [UserAdd.self, UserPasswd.self, UserList.self, UserRemove.self])
}

struct UsersFileOptions: ParsableArguments {
    @Option(name: .long, help: "The cluster configuration file (its web.users-file, or users.yaml beside it).") var config: String =
        Defaults.configPath
    @Option(name: .customLong("users-file"), help: "The users file itself (overrides --config).") var usersFile: String?

    /// The file: --users-file, the configuration's `web.users-file`, or users.yaml beside it.
    func path() -> String {
        if let usersFile { return usersFile }
        if let loaded = try? ConfigLoader.load(path: config), let web = loaded.cluster.web { return web.usersFile }
        let folder = (config as NSString).deletingLastPathComponent
        return (folder.isEmpty ? "." : folder) + "/" + Defaults.usersFileName
    }

    func load() throws -> (path: String, users: [WebUser]) {
        let path = path()
        do {
            return (path, try UsersFile.load(path: path))
        } catch {
            printError("\(error)")
            throw ExitCode(2)
        }
    }

    func save(_ users: [WebUser], to path: String) throws {
        do {
            try UsersFile.save(users, path: path)
        } catch {
            printError("\(error)")
            throw ExitCode(1)
        }
    }
}

/// Reads a new password: from standard input when it is not a terminal (one line), else
/// asked twice without echo.
enum PasswordInput {
    static let minimumLength = 8

    static func read(for user: String) throws -> String {
        let password: String
        if isatty(STDIN_FILENO) == 0 {
            guard let line = readLine(strippingNewline: true) else {
                printError("No password on standard input.")
                throw ExitCode(2)
            }
            password = line
        } else {
            let first = try prompt("New password for \(user): ")
            let second = try prompt("Repeat it: ")
            guard first == second else {
                printError("The passwords differ; nothing changed.")
                throw ExitCode(2)
            }
            password = first
        }
        guard password.count >= minimumLength else {
            printError("A password has at least \(minimumLength) characters; nothing changed.")
            throw ExitCode(2)
        }
        return password
    }

    static func prompt(_ text: String) throws -> String {
        FileHandle.standardError.write(Data(text.utf8))
        var saved = termios()
        tcgetattr(STDIN_FILENO, &saved)
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet)
        defer {
            tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        guard let line = readLine(strippingNewline: true) else { throw ExitCode(2) }
        return line
    }

    static func hash(_ password: String) throws -> PasswordHash {
        do {
            return try PasswordHash.make(password: password)
        } catch {
            printError("Cannot hash the password: \(error)")
            throw ExitCode(1)
        }
    }
}

struct UserAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add", abstract: "Add a user; the password is read from standard input or asked for.")
    @Argument(help: "User name (letters, digits, '.', '_', '-').") var name: String
    @Option(name: .long, help: "operator (operates and views) or viewer (views only).") var role: String
    @OptionGroup var file: UsersFileOptions

    func validate() throws {
        if let problem = WebUser.problemWithName(name) { throw ValidationError(problem) }
        guard WebRole(rawValue: role) != nil else { throw ValidationError("--role is operator or viewer, got \(role)") }
    }

    func run() throws {
        var (path, users) = try file.load()
        guard !users.contains(where: { $0.name == name }) else {
            printError("User \(name) exists in \(path); use `understudy user passwd \(name)`.")
            throw ExitCode(1)
        }
        let hash = try PasswordInput.hash(try PasswordInput.read(for: name))
        users.append(WebUser(name: name, role: WebRole(rawValue: role) ?? .viewer, password: hash))
        try file.save(users, to: path)
        print("Added \(role) \(name) to \(path).")
    }
}

struct UserPasswd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "passwd", abstract: "Set a user's password (and optionally role); read from standard input or asked for.")
    @Argument(help: "User name.") var name: String
    @Option(name: .long, help: "Also change the role: operator or viewer.") var role: String?
    @OptionGroup var file: UsersFileOptions

    func validate() throws {
        if let role, WebRole(rawValue: role) == nil { throw ValidationError("--role is operator or viewer, got \(role)") }
    }

    func run() throws {
        var (path, users) = try file.load()
        guard let index = users.firstIndex(where: { $0.name == name }) else {
            printError("No user \(name) in \(path).")
            throw ExitCode(1)
        }
        users[index].password = try PasswordInput.hash(try PasswordInput.read(for: name))
        if let role, let value = WebRole(rawValue: role) { users[index].role = value }
        try file.save(users, to: path)
        print("Password of \(name) changed in \(path); the user's sessions end.")
    }
}

struct UserList: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the users and their roles.")
    @OptionGroup var file: UsersFileOptions

    func run() throws {
        let (path, users) = try file.load()
        if users.isEmpty {
            print("No users in \(path).")
            return
        }
        for user in users { print("\(user.name)\t\(user.role.rawValue)") }
    }
}

struct UserRemove: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "remove", abstract: "Remove a user (their sessions end).")
    @Argument(help: "User name.") var name: String
    @OptionGroup var file: UsersFileOptions

    func run() throws {
        var (path, users) = try file.load()
        guard users.contains(where: { $0.name == name }) else {
            printError("No user \(name) in \(path).")
            throw ExitCode(1)
        }
        users.removeAll { $0.name == name }
        try file.save(users, to: path)
        print("Removed \(name) from \(path).")
    }
}
