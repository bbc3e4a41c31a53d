import Foundation
import Testing
import UnderstudyEngine
import UnderstudyTestSupport

@testable import UnderstudyNode

#if canImport(Glibc)
    import Glibc
#endif

private func isError(_ result: MonitorResult, containing text: String) -> Bool {
    if case .error(let reason) = result { return reason.contains(text) }
    return false
}

/// sambaw against a real smbd the test starts on loopback, on a free port, with its own
/// smb.conf, state folders, password database and share under a temporary folder.
@Suite("sambaw against smbd", .serialized)
struct SambaProbeTests {
    static let available = Prerequisite.all(
        "samba",
        [
            .root, .executable("/usr/sbin/smbd", package: "samba"), .command("smbpasswd", package: "samba"),
            .command("smbclient", package: "smbclient"),
        ])

    /// smbd with shares `data` (user or guest) and `private` (user root only); root's SMB
    /// password is `secret` in the test's own password database.
    static func startSamba(folder: String, port: Int) async throws -> TestServer {
        for sub in ["share", "private", "state", "cache", "lock", "privatedir", "pid", "ncalrpc", "log"] {
            try FileManager.default.createDirectory(atPath: "\(folder)/\(sub)", withIntermediateDirectories: true)
        }
        let config = """
            [global]
              server role = standalone server
              smb ports = \(port)
              interfaces = 127.0.0.1
              bind interfaces only = yes
              disable netbios = yes
              state directory = \(folder)/state
              cache directory = \(folder)/cache
              lock directory = \(folder)/lock
              private dir = \(folder)/privatedir
              pid directory = \(folder)/pid
              ncalrpc dir = \(folder)/ncalrpc
              log file = \(folder)/log/log.%m
              passdb backend = tdbsam:\(folder)/privatedir/passdb.tdb
              map to guest = bad user
              load printers = no
              printing = bsd
              printcap name = /dev/null
              disable spoolss = yes
            [data]
              path = \(folder)/share
              read only = no
              guest ok = yes
            [private]
              path = \(folder)/private
              valid users = root
            """
        try config.write(toFile: folder + "/smb.conf", atomically: true, encoding: .utf8)
        let password = await TestServer.run([
            "sh", "-c", "printf 'secret\\nsecret\\n' | smbpasswd -c \(folder)/smb.conf -s -a root",
        ])
        guard password.succeeded else { throw TestSupportError("smbpasswd: \(password.failureDescription)") }
        let server = try TestServer(
            "smbd", executable: "/usr/sbin/smbd",
            arguments: ["--foreground", "--no-process-group", "--debug-stdout", "--configfile=\(folder)/smb.conf"],
            log: folder + "/smbd.out")
        guard await TestServer.waitForListener(port: port) else {
            server.stop()
            let log = (try? String(contentsOfFile: folder + "/smbd.out", encoding: .utf8)) ?? ""
            throw TestSupportError("smbd did not listen on port \(port): \(log.suffix(2000))")
        }
        return server
    }

    func probe(port: Int, share: String = "data", user: String? = "root", passwordFile: String?, timeout: Duration = .seconds(10))
        -> SambaProbe
    {
        SambaProbe(host: "127.0.0.1", port: port, share: share, user: user, passwordFile: passwordFile, timeout: timeout)
    }

    @Test(
        "sambaw: a share answering is normal (user and guest); wrong password, missing share, hung and stopped smbd are errors naming why",
        .requires(available))
    func samba() async throws {
        let folder = try TestServer.folder("smb")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = try FreePort.take()
        let server = try await Self.startSamba(folder: folder, port: port)
        defer { server.stop() }
        let passwordFile = folder + "/password"
        try "secret\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let wrongFile = folder + "/wrong"
        try "nope\n".write(toFile: wrongFile, atomically: true, encoding: .utf8)

        let normal = await probe(port: port, passwordFile: passwordFile).check()
        #expect(normal == .normal, "\(normal)")
        let privateShare = await probe(port: port, share: "private", passwordFile: passwordFile).check()
        #expect(privateShare == .normal, "\(privateShare)")
        let guest = await probe(port: port, user: nil, passwordFile: nil).check()
        #expect(guest == .normal, "\(guest)")

        let wrong = await probe(port: port, passwordFile: wrongFile).check()
        #expect(isError(wrong, containing: "authentication failed for user root"), "\(wrong)")
        let guestPrivate = await probe(port: port, share: "private", user: nil, passwordFile: nil).check()
        #expect(isError(guestPrivate, containing: "denied"), "\(guestPrivate)")
        let missing = await probe(port: port, share: "nothere", passwordFile: passwordFile).check()
        #expect(isError(missing, containing: "no share named nothere"), "\(missing)")
        let unreadable = await probe(port: port, passwordFile: folder + "/no-such-file").check()
        #expect(isError(unreadable, containing: "cannot read the password file"), "\(unreadable)")

        // Hung: the listening smbd stopped; the kernel still accepts, nobody answers.
        server.signal(SIGSTOP)
        let started = ContinuousClock.now
        let hung = await probe(port: port, passwordFile: passwordFile, timeout: .seconds(2)).check()
        #expect(isError(hung, containing: "no answer within"), "\(hung)")
        #expect(ContinuousClock.now - started < .seconds(6))
        server.signal(SIGCONT)

        server.stop()
        let down = await probe(port: port, passwordFile: passwordFile).check()
        #expect(isError(down, containing: "connection refused"), "\(down)")
    }

    @Test("sambaw and nfsw: the registry builds their probes from the configuration, with the schema's defaults")
    func factories() throws {
        let yaml = """
            monitors:
              - {name: smb1, type: sambaw, share: data, nice: 4, timeout: 10s, recovery: {target: local-server, final-action: none}}
              - {name: smb2, type: sambaw, host: 10.0.0.9, port: 445, share: data, user: web, password-file: /etc/pw,
                 recovery: {target: local-server, final-action: none}}
              - {name: nfs1, type: nfsw, timeout: 10s, recovery: {target: local-server, final-action: none}}
              - {name: nfs2, type: nfsw, version: 3, share: /export, recovery: {target: local-server, final-action: none}}
            """
        let config = try MonitorProbeTests.config(yaml, at: "/tmp/cluster.yaml")
        let context = MonitorProbeTests.context(config, logDirectory: "/tmp")
        func make(_ name: String) throws -> any MonitorProbe {
            let monitor = try #require(config.monitors.first { $0.name == name })
            #expect(MonitorProbes.unsupportedReason(monitor) == nil)
            return MonitorProbes.make(monitor, start: MonitorStart(monitor: name, run: 1), context: context)
        }
        let smb1 = try #require(try make("smb1") as? SambaProbe)
        #expect(smb1.host == "127.0.0.1" && smb1.port == 139 && smb1.share == "data" && smb1.user == nil && smb1.nice == 4)
        #expect(smb1.timeout == .seconds(9))
        let smb2 = try #require(try make("smb2") as? SambaProbe)
        #expect(smb2.host == "10.0.0.9" && smb2.port == 445 && smb2.user == "web" && smb2.passwordFile == "/etc/pw")
        let nfs1 = try #require(try make("nfs1") as? NFSProbe)
        #expect(nfs1.host == "127.0.0.1" && nfs1.version == 4 && nfs1.port == 2049 && nfs1.share == nil && nfs1.portmapperPort == 111)
        #expect(nfs1.timeout == .seconds(9))
        let nfs2 = try #require(try make("nfs2") as? NFSProbe)
        #expect(nfs2.version == 3 && nfs2.share == "/export")
    }

    @Test("sambaw: names and output it refuses or explains without running smbd")
    func explanations() async {
        let slash = await SambaProbe(
            host: "127.0.0.1", port: 139, share: "a/b", user: nil, passwordFile: nil, timeout: .seconds(1)
        ).check()
        #expect(isError(slash, containing: "not a plain SMB share name"))
        let percent = await SambaProbe(
            host: "127.0.0.1", port: 139, share: "data", user: "a%b", passwordFile: nil, timeout: .seconds(1)
        ).check()
        #expect(isError(percent, containing: "cannot contain %"))
        #expect(
            SambaProbe.explain("tree connect failed: NT_STATUS_BAD_NETWORK_NAME", user: "u", share: "s", fallback: "x")
                == "the server has no share named s [NT_STATUS_BAD_NETWORK_NAME]")
        #expect(SambaProbe.explain("odd: NT_STATUS_WHATEVER here", user: nil, share: "s", fallback: "x") == "odd: NT_STATUS_WHATEVER here")
        #expect(SambaProbe.explain("\n", user: nil, share: "s", fallback: "exit 1") == "exit 1")
        // The password travels in the environment, never on the command line.
        let folder = NSTemporaryDirectory() + "understudy-smbargs-\(getpid())"
        try? "pw\n".write(toFile: folder, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let command = SambaProbe(host: "::1", port: 445, share: "data", user: "u", passwordFile: folder, timeout: .seconds(1)).command()
        if case .success(let (arguments, environment)) = command {
            #expect(arguments.contains("//[::1]/data"))
            #expect(!arguments.joined().contains("pw"))
            #expect(environment["PASSWD"] == "pw")
        } else {
            Issue.record("\(command)")
        }
    }
}

/// nfsw against NFS-Ganesha (VFS back end) the test starts on loopback with its own config:
/// NFS v4 alone on a free port (no portmapper needed), and v3 through rpcbind.
@Suite("nfsw against NFS-Ganesha", .serialized)
struct NFSProbeTests {
    static let ganesha = Prerequisite.all(
        "nfs-ganesha",
        [
            .root, .executable("/usr/bin/ganesha.nfsd", package: "nfs-ganesha"),
            Prerequisite(
                "nfs-ganesha-vfs",
                missing: FileManager.default.fileExists(atPath: "/usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so")
                    ? nil : "Ganesha's VFS back end is missing (Debian package nfs-ganesha-vfs)"),
        ])
    static let rpcbind = Prerequisite.command("rpcbind", package: "rpcbind")

    /// ganesha.nfsd serving `folder/export` as `/data` (NFS v4 pseudo path; v3 path
    /// `folder/export`).
    static func startGanesha(folder: String, nfsPort: Int, mountPort: Int?) async throws -> TestServer {
        for sub in ["export", "state"] {
            try FileManager.default.createDirectory(atPath: "\(folder)/\(sub)", withIntermediateDirectories: true)
        }
        let protocols = mountPort == nil ? "4" : "3, 4"
        let config = """
            NFS_CORE_PARAM {
              NFS_Port = \(nfsPort);
              \(mountPort.map { "MNT_Port = \($0);" } ?? "")
              Bind_addr = 127.0.0.1;
              Protocols = \(protocols);
              Enable_NLM = false;
              Enable_RQUOTA = false;
            }
            NFSV4 { Graceless = true; RecoveryBackend = fs; RecoveryRoot = \(folder)/state; }
            EXPORT {
              Export_Id = 1;
              Path = \(folder)/export;
              Pseudo = /data;
              Protocols = \(protocols);
              Access_Type = RW;
              Squash = No_Root_Squash;
              Transports = TCP;
              FSAL { Name = VFS; }
            }
            """
        try config.write(toFile: folder + "/ganesha.conf", atomically: true, encoding: .utf8)
        let server = try TestServer(
            "ganesha", executable: "/usr/bin/ganesha.nfsd",
            arguments: [
                "-F", "-L", folder + "/ganesha.log", "-f", folder + "/ganesha.conf", "-p", folder + "/ganesha.pid", "-N", "NIV_EVENT",
            ],
            log: folder + "/ganesha.out")
        guard await TestServer.waitForListener(port: nfsPort) else {
            server.stop()
            let log = (try? String(contentsOfFile: folder + "/ganesha.log", encoding: .utf8)) ?? ""
            throw TestSupportError("ganesha.nfsd did not listen on port \(nfsPort): \(log.suffix(2000))")
        }
        return server
    }

    @Test(
        "nfsw v4: nfsd answering (and the share in its pseudo file system) is normal; a missing share, a hung and a stopped server are errors",
        .requires(ganesha))
    func version4() async throws {
        let folder = try TestServer.folder("nfs4")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let port = try FreePort.take()
        let server = try await Self.startGanesha(folder: folder, nfsPort: port, mountPort: nil)
        defer { server.stop() }
        func probe(_ share: String?, timeout: Duration = .seconds(10)) -> NFSProbe {
            NFSProbe(host: "127.0.0.1", share: share, version: 4, port: port, timeout: timeout)
        }

        // The export may take a moment after the listener is up.
        let ready = await eventually(within: .seconds(15), every: .milliseconds(200)) { await probe("/data").check() == .normal }
        let afterWait = await probe("/data").check()
        #expect(ready, "\(afterWait)")
        #expect(await probe(nil).check() == .normal)
        let missing = await probe("/missing").check()
        #expect(isError(missing, containing: "NFS4ERR_NOENT"), "\(missing)")

        server.signal(SIGSTOP)
        // Stopping takes effect asynchronously: probe only once every thread is stopped.
        _ = await eventually(within: .seconds(5), every: .milliseconds(20)) { allThreadsStopped(server.pid) }
        let started = ContinuousClock.now
        let hung = await probe(nil, timeout: .seconds(2)).check()
        #expect(isError(hung, containing: "did not answer in time"), "\(hung)")
        #expect(ContinuousClock.now - started < .seconds(5))
        server.signal(SIGCONT)

        server.stop()
        let down = await probe(nil).check()
        #expect(isError(down, containing: "Connection refused"), "\(down)")
        // Version 3 against a server that offers only version 4 on that port.
        let wrongVersion = await NFSProbe(host: "127.0.0.1", share: nil, version: 3, port: port, timeout: .seconds(2)).check()
        #expect(isError(wrongVersion, containing: "NFS server 127.0.0.1"))
    }

    @Test(
        "nfsw v3: nfsd and mountd registered with rpcbind and answering, the share exported, is normal; a share not exported and a stopped server are errors",
        .requires(ganesha, rpcbind))
    func version3() async throws {
        let folder = try TestServer.folder("nfs3")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        // The portmapper must be on port 111: use the machine's if one runs, else start one.
        var portmapper: TestServer?
        if !(await TestServer.waitForListener(port: 111, within: .milliseconds(300))) {
            portmapper = try TestServer("rpcbind", executable: "/usr/sbin/rpcbind", arguments: ["-f"], log: folder + "/rpcbind.out")
            try #require(await TestServer.waitForListener(port: 111), "rpcbind did not listen on port 111")
        }
        defer { portmapper?.stop() }
        let ports = try FreePort.take(count: 2)
        let server = try await Self.startGanesha(folder: folder, nfsPort: ports[0], mountPort: ports[1])
        defer { server.stop() }
        func probe(_ share: String?) -> NFSProbe {
            NFSProbe(host: "127.0.0.1", share: share, version: 3, port: 2049, timeout: .seconds(10))
        }

        let ready = await eventually(within: .seconds(15), every: .milliseconds(200)) {
            await probe(folder + "/export").check() == .normal
        }
        let afterWait = await probe(folder + "/export").check()
        #expect(ready, "\(afterWait)")
        #expect(await probe(nil).check() == .normal)
        let missing = await probe("/not/exported").check()
        #expect(isError(missing, containing: "mountd does not export /not/exported"), "\(missing)")

        server.stop()
        let down = await probe(nil).check()
        #expect(isError(down, containing: "NFS server 127.0.0.1"), "\(down)")
    }
}

/// The RPC reply decoding on bytes from the network: random, truncated and mutated replies
/// are errors, never a crash or a loop.
@Suite("ONC RPC codec")
struct ONCRPCCodecTests {
    static func acceptedReply(xid: UInt32, results: [UInt8]) -> [UInt8] {
        var encoder = ONCRPC.Encoder()
        for value: UInt32 in [xid, 1, 0, 0] { encoder.uint32(value) }
        encoder.opaque([])
        encoder.uint32(0)
        return encoder.bytes + results
    }

    static func exportReply(_ directories: [String]) -> [UInt8] {
        var encoder = ONCRPC.Encoder()
        for directory in directories {
            encoder.uint32(1)
            encoder.string(directory)
            encoder.uint32(1)
            encoder.string("*")
            encoder.uint32(0)
        }
        encoder.uint32(0)
        return encoder.bytes
    }

    @Test func wellFormedRepliesDecode() throws {
        #expect(try ONCRPC.results(of: Self.acceptedReply(xid: 7, results: [0, 0, 8, 1]), xid: 7) == [0, 0, 8, 1])
        #expect(throws: ONCRPC.Failure.self) { try ONCRPC.results(of: Self.acceptedReply(xid: 7, results: []), xid: 8) }
        var mismatch = ONCRPC.Encoder()
        for value: UInt32 in [9, 1, 0, 0, 0, 2, 2, 4] { mismatch.uint32(value) }
        #expect(throws: ONCRPC.Failure("version not served (the server has versions 2 to 4)")) {
            try ONCRPC.results(of: mismatch.bytes, xid: 9)
        }
        #expect(try NFSProbe.exportList(Self.exportReply(["/a", "/b/c"])) == ["/a", "/b/c"])
        #expect(NFSProbe.samePath("/a/", "/a") && !NFSProbe.samePath("/a", "/ab"))

        var reader = ONCRPC.RecordReader()
        let message: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8]
        var fragmented: [UInt8] = [0, 0, 0, 3, 1, 2, 3]
        fragmented += [0x80, 0, 0, 5, 4, 5, 6, 7, 8]
        for byte in fragmented.dropLast() { #expect(try reader.append([byte]) == nil) }
        #expect(try reader.append([fragmented.last ?? 0]) == message)
        #expect(ONCRPC.record(message) == [0x80, 0, 0, 8] + message)
    }

    @Test func hostileRepliesAreErrors() {
        var generator = SystemRandomNumberGenerator()
        let samples = [Self.acceptedReply(xid: 5, results: Self.exportReply(["/export", "/srv/nfs"]))]
        for round in 0..<3000 {
            var bytes: [UInt8]
            switch round % 3 {
            case 0: bytes = (0..<Int.random(in: 0...64, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            case 1: bytes = Array(samples[0].prefix(Int.random(in: 0...samples[0].count, using: &generator)))
            default:
                bytes = samples[0]
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
            }
            // Either decodes or throws: never traps, never runs away.
            if let results = try? ONCRPC.results(of: bytes, xid: 5) { _ = try? NFSProbe.exportList(results) }
            _ = try? NFSProbe.exportList(bytes)
            var reader = ONCRPC.RecordReader()
            _ = try? reader.append(bytes)
        }
        // A record header announcing more than the limit is refused before any of it arrives.
        var reader = ONCRPC.RecordReader()
        #expect(throws: ONCRPC.Failure.self) { try reader.append([0x80, 0x20, 0, 0]) }
        // A length field larger than the bytes that follow.
        #expect(throws: ONCRPC.Failure.self) { try NFSProbe.exportList([0, 0, 0, 1, 0, 0, 0x10, 0]) }
    }
}

/// Every thread of `pid` is stopped (state `T` in /proc).
func allThreadsStopped(_ pid: Int32) -> Bool {
    guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task"), !tasks.isEmpty else { return false }
    return tasks.allSatisfy { task in
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("T")
    }
}
