import Foundation
import Synchronization
import UnderstudyEngine
import UnderstudyModel

/// psqlw and mysqlw: connect over TCP with the database's own client (`psql`, `mariadb` or
/// `mysql`) and run SQL on a monitor table.
/// - level 1: read the table (created with one row when missing);
/// - level 2: write a new value and read it back (the default);
/// - level 3: create a scratch table, write, read back and drop it.
/// The password comes from `password-file` through the client's environment variable, never
/// on a command line. PostgreSQL starting up or shutting down is a Caution, not an error.
struct DatabaseProbe: MonitorProbe {
    enum Engine: String {
        case postgres = "PostgreSQL"
        case mysql = "MySQL"
    }

    let engine: Engine
    let host: String
    let port: Int
    let database: String
    let user: String
    let passwordFile: String?
    let table: String
    let level: Int
    let timeout: Duration
    /// The monitor's `nice`, applied to the client.
    var nice = 0
    let sequence = Sequence()

    /// A new value for every write, so a stale read is noticed.
    final class Sequence: Sendable {
        private let next = Mutex(UInt32(truncatingIfNeeded: UInt64(Date().timeIntervalSince1970 * 1000)) % 1_000_000_000)
        func value() -> Int {
            Int(
                next.withLock { current in
                    current = (current + 1) % 1_000_000_000; return current
                })
        }
    }

    /// Table names go into SQL text: letters, digits and underscores only.
    static func isValidTable(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.count <= 63 else { return false }
        let letters = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
        let rest = letters.union(CharacterSet(charactersIn: "0123456789"))
        return letters.contains(first) && name.unicodeScalars.allSatisfy(rest.contains)
    }

    func check() async -> MonitorResult {
        guard Self.isValidTable(table) else { return .error("table name \(table) is not a plain SQL identifier") }
        var password: String?
        if let passwordFile {
            do {
                password = try String(contentsOfFile: passwordFile, encoding: .utf8).trimmingCharacters(in: .newlines)
            } catch {
                return .error("cannot read the password file \(passwordFile): \(error.localizedDescription)")
            }
        }
        let value = sequence.value()
        let statements: [String]
        let expected: String?
        switch level {
        case 1:
            statements = ["SELECT num FROM \(table)"]
            expected = nil
        case 3:
            let scratch = "\(table)_scratch"
            statements = [
                "DROP TABLE IF EXISTS \(scratch)", "CREATE TABLE \(scratch) (num INTEGER NOT NULL)",
                "INSERT INTO \(scratch) (num) VALUES (\(value))", "SELECT num FROM \(scratch)", "DROP TABLE \(scratch)",
            ]
            expected = String(value)
        default:
            statements = ensureTable() + ["UPDATE \(table) SET num = \(value)", "SELECT num FROM \(table)"]
            expected = String(value)
        }
        var result = await run(statements, password: password)
        if level == 1, case .failure(let message) = result, Self.isMissingTable(message) {
            // The monitor table is created when missing.
            result = await run(ensureTable() + statements, password: password)
        }
        switch result {
        case .failure(let message):
            if engine == .postgres && Self.isStartingOrStopping(message) {
                return .warning("\(engine.rawValue) at \(host):\(port) is starting up or shutting down")
            }
            return .error("\(engine.rawValue) at \(host):\(port)/\(database): \(message)")
        case .rows(let rows):
            if let expected, rows.first != expected {
                return .error(
                    "\(engine.rawValue) at \(host):\(port)/\(database): wrote \(expected) to \(table), read \(rows.first ?? "nothing")")
            }
            if expected == nil && rows.isEmpty { return .error("\(engine.rawValue): \(table) is empty") }
            return .normal
        }
    }

    func ensureTable() -> [String] {
        [
            "CREATE TABLE IF NOT EXISTS \(table) (num INTEGER NOT NULL)",
            "INSERT INTO \(table) (num) SELECT 0 FROM (SELECT 1 AS one) AS seed WHERE NOT EXISTS (SELECT 1 FROM \(table))",
        ]
    }

    enum Outcome {
        case rows([String])
        case failure(String)
    }

    func run(_ statements: [String], password: String?) async -> Outcome {
        let seconds = max(1, Int(timeout.inSeconds.rounded(.up)))
        var environment = ScriptEnvironment.base()
        var command: [String]
        switch engine {
        case .postgres:
            command = ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", host, "-p", String(port), "-U", user, "-d", database]
            for statement in statements { command += ["-c", statement] }
            environment["PGCONNECT_TIMEOUT"] = String(seconds)
            environment["PGAPPNAME"] = "understudy-psqlw"
            if let password { environment["PGPASSWORD"] = password }
        case .mysql:
            let client = FileManager.default.isExecutableFile(atPath: "/usr/bin/mariadb") ? "mariadb" : "mysql"
            command = [
                client, "--protocol=TCP", "-h", host, "-P", String(port), "-u", user, "--database=\(database)", "--batch",
                "--skip-column-names", "--connect-timeout=\(seconds)", "-e", statements.joined(separator: "; "),
            ]
            if let password { environment["MYSQL_PWD"] = password }
        }
        let result = await NetCommandRunner(environment: environment, nice: nice).run(command, timeout: timeout)
        if result.exitCode == 127 {
            return .failure(
                "\(command[0]) is not installed (Debian package \(engine == .postgres ? "postgresql-client" : "mariadb-client"))")
        }
        guard result.succeeded else {
            let text = result.standardError.trimmingCharacters(in: .whitespacesAndNewlines)
            return .failure(result.timedOut ? "no answer within \(timeout)" : (text.isEmpty ? result.failureDescription : text))
        }
        let rows = result.standardOutput.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return .rows(rows)
    }

    static func isMissingTable(_ message: String) -> Bool {
        message.contains("does not exist") || message.contains("doesn't exist")
    }

    static func isStartingOrStopping(_ message: String) -> Bool {
        message.contains("the database system is starting up") || message.contains("the database system is shutting down")
            || message.contains("the database system is in recovery mode")
    }
}
