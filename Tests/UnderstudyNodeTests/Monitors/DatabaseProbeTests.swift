import Foundation
import Testing
import UnderstudyEngine
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

/// psqlw and mysqlw against real PostgreSQL and MariaDB servers the tests start on loopback
/// (as the postgres and mysql users; root needed), then stop the hard way.
@Suite("Database monitors", .serialized)
struct DatabaseProbeTests {
    /// Runs a command with a time limit (Subprocess, through `NetCommandRunner`): Foundation's
    /// Process can wait forever when the command leaves a daemon behind (pg_ctl start).
    @discardableResult
    static func sh(_ arguments: [String], timeout: Duration = .seconds(60)) async -> (Int32, String) {
        let result = await NetCommandRunner().run(arguments, timeout: timeout)
        return (result.exitCode ?? -1, result.standardOutput + result.standardError)
    }

    static func folder(owner: String) throws -> String {
        let path = "/tmp/understudy-db-\(getpid())-\(UUID().uuidString.prefix(6))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let chown = Process()
        chown.executableURL = URL(fileURLWithPath: "/bin/chown")
        chown.arguments = [owner, path]
        try chown.run()
        chown.waitUntilExit()
        return path
    }

    /// The newest PostgreSQL server binaries folder (`/usr/lib/postgresql/<version>/bin`).
    static let postgresBinaries = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?
        .sorted().last.map { "/usr/lib/postgresql/\($0)/bin" }
    static let postgresAvailable = Prerequisite.all(
        "postgresql",
        [
            .root,
            Prerequisite(
                "postgresql",
                missing: postgresBinaries.map { FileManager.default.isExecutableFile(atPath: $0 + "/initdb") } == true
                    ? nil : "PostgreSQL server binaries are missing (Debian package postgresql)"),
            .command("psql", package: "postgresql-client"),
        ])
    static let mariadbServer = ["/usr/sbin/mariadbd", "/usr/sbin/mysqld"].first { FileManager.default.isExecutableFile(atPath: $0) }
    static let mariadbAvailable = Prerequisite.all(
        "mariadb",
        [
            .root,
            Prerequisite("mariadb", missing: mariadbServer == nil ? "mariadbd is missing (Debian package mariadb-server)" : nil),
            .executable("/usr/bin/mariadb-install-db", package: "mariadb-server"),
            .command("mariadb", package: "mariadb-client"),
        ])

    func probe(
        _ engine: DatabaseProbe.Engine, port: Int, user: String, passwordFile: String?, level: Int, database: String = "app"
    ) -> DatabaseProbe {
        DatabaseProbe(
            engine: engine, host: "127.0.0.1", port: port, database: database, user: user, passwordFile: passwordFile,
            table: engine == .postgres ? "psqlwatch" : "mysqlwatch", level: level, timeout: .seconds(10))
    }

    static func isError(_ result: MonitorResult) -> Bool {
        if case .error = result { return true }
        return false
    }

    @Test(
        "psqlw: levels 1–3 against PostgreSQL, the table created when missing; wrong password and a stopped server are errors",
        .requires(postgresAvailable))
    func postgres() async throws {
        let bin = try #require(Self.postgresBinaries)
        let dir = try Self.folder(owner: "postgres")
        let port = try FreePort.take()
        defer {
            // Stop the server by the pid in its data folder (the test may have failed midway).
            if let text = try? String(contentsOfFile: dir + "/data/postmaster.pid", encoding: .utf8),
                let pid = Int32(text.split(separator: "\n").first ?? "")
            {
                kill(pid, SIGQUIT)
                for _ in 0..<50 where kill(pid, 0) == 0 { usleep(100_000) }
            }
            try? FileManager.default.removeItem(atPath: dir)
        }
        let (initCode, initOutput) = await Self.sh([
            "runuser", "-u", "postgres", "--", bin + "/initdb", "-D", dir + "/data", "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", "--no-sync",
        ])
        try #require(initCode == 0, "\(initOutput)")
        let (startCode, startOutput) = await Self.sh([
            "runuser", "-u", "postgres", "--", bin + "/pg_ctl", "-D", dir + "/data", "-w", "-l", dir + "/log", "-o",
            "-p \(port) -k \(dir) -c listen_addresses=127.0.0.1", "start",
        ])
        try #require(startCode == 0, "\(startOutput)")
        let (setupCode, setupOutput) = await Self.sh([
            "runuser", "-u", "postgres", "--", "psql", "-X", "-h", dir, "-p", String(port), "-U", "postgres", "-c",
            "ALTER USER postgres PASSWORD 'secret'", "-c", "CREATE DATABASE app",
        ])
        try #require(setupCode == 0, "\(setupOutput)")
        let passwordFile = dir + "/password"
        try "secret\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)

        for level in [1, 2, 3] {
            let result = await probe(.postgres, port: port, user: "postgres", passwordFile: passwordFile, level: level).check()
            #expect(result == .normal, "level \(level): \(result)")
        }
        // Level 1 found the table missing and created it with one row.
        let (_, rows) = await Self.sh([
            "runuser", "-u", "postgres", "--", "psql", "-X", "-A", "-t", "-h", dir, "-p", String(port), "-U", "postgres", "-d", "app",
            "-c", "SELECT count(*) FROM psqlwatch",
        ])
        #expect(rows.trimmingCharacters(in: .whitespacesAndNewlines) == "1")

        let wrongFile = dir + "/wrong"
        try "nope\n".write(toFile: wrongFile, atomically: true, encoding: .utf8)
        let wrong = await probe(.postgres, port: port, user: "postgres", passwordFile: wrongFile, level: 2).check()
        #expect(Self.isError(wrong), "\(wrong)")
        let missingDatabase = await probe(.postgres, port: port, user: "postgres", passwordFile: passwordFile, level: 2, database: "none")
            .check()
        #expect(Self.isError(missingDatabase))

        await Self.sh(["runuser", "-u", "postgres", "--", bin + "/pg_ctl", "-D", dir + "/data", "-m", "immediate", "stop"])
        let stopped = await probe(.postgres, port: port, user: "postgres", passwordFile: passwordFile, level: 2).check()
        #expect(Self.isError(stopped), "\(stopped)")
        #expect(DatabaseProbe.isStartingOrStopping("FATAL:  the database system is shutting down"))
    }

    @Test("mysqlw: levels 1–3 against MariaDB; a killed server is an error", .requires(mariadbAvailable))
    func mariadb() async throws {
        let server = try #require(Self.mariadbServer)
        let dir = try Self.folder(owner: "mysql")
        let port = try FreePort.take()
        let (installCode, installOutput) = await Self.sh([
            "mariadb-install-db", "--user=mysql", "--datadir=\(dir)/data", "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ])
        try #require(installCode == 0, "\(installOutput)")
        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: server)
        daemon.arguments = [
            "--no-defaults", "--user=mysql", "--datadir=\(dir)/data", "--socket=\(dir)/sock", "--port=\(port)",
            "--bind-address=127.0.0.1", "--pid-file=\(dir)/pid", "--log-error=\(dir)/error.log", "--skip-log-bin",
        ]
        try daemon.run()
        defer {
            if daemon.isRunning {
                kill(daemon.processIdentifier, SIGKILL)
                daemon.waitUntilExit()
            }
            try? FileManager.default.removeItem(atPath: dir)
        }
        var ready = false
        for _ in 0..<100 where !ready {
            ready = await Self.sh(["mariadb", "--socket=\(dir)/sock", "-u", "root", "-e", "SELECT 1"]).0 == 0
            if !ready { try await Task.sleep(for: .milliseconds(200)) }
        }
        try #require(ready, "MariaDB did not start: \((try? String(contentsOfFile: dir + "/error.log", encoding: .utf8)) ?? "")")
        let (setupCode, setupOutput) = await Self.sh([
            "mariadb", "--socket=\(dir)/sock", "-u", "root", "-e",
            "CREATE DATABASE app; CREATE USER 'watch'@'127.0.0.1' IDENTIFIED BY 'secret'; GRANT ALL ON app.* TO 'watch'@'127.0.0.1';",
        ])
        try #require(setupCode == 0, "\(setupOutput)")
        let passwordFile = dir + "/password"
        try "secret\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)

        for level in [1, 2, 3] {
            let result = await probe(.mysql, port: port, user: "watch", passwordFile: passwordFile, level: level).check()
            #expect(result == .normal, "level \(level): \(result)")
        }
        let noPassword = await probe(.mysql, port: port, user: "watch", passwordFile: nil, level: 2).check()
        #expect(Self.isError(noPassword), "\(noPassword)")

        kill(daemon.processIdentifier, SIGKILL)
        daemon.waitUntilExit()
        let stopped = await probe(.mysql, port: port, user: "watch", passwordFile: passwordFile, level: 2).check()
        #expect(Self.isError(stopped), "\(stopped)")
    }
}
