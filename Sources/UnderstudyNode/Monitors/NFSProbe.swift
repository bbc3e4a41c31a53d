import Foundation
import UnderstudyEngine

/// nfsw: ONC RPC calls to an NFS server over TCP, bounded together by the monitor's timeout.
/// - version 4: the NULL procedure of nfsd (program 100003, version 4) on `port`; with a
///   `share`, a COMPOUND of PUTROOTFH and one LOOKUP per path component (as root, AUTH_SYS)
///   must find it in the server's pseudo file system.
/// - version 3: the portmapper (port 111) must know nfsd v3 and mountd v3 (program 100005)
///   over TCP, both must answer their NULL procedure, and with a `share` mountd's export list
///   (MOUNTPROC3_EXPORT) must hold it.
/// CLUSTERPRO's nfsw also calls nfsd v2 and mountd v1/v2 over UDP; this one checks the
/// protocols a current server offers and clients use.
struct NFSProbe: MonitorProbe {
    static let nfsProgram: UInt32 = 100_003
    static let mountProgram: UInt32 = 100_005
    static let portmapperProgram: UInt32 = 100_000

    let host: String
    let share: String?
    let version: Int
    /// nfsd's port for version 4.
    let port: Int
    let timeout: Duration
    /// The portmapper's port for version 3 (111; tests run their own elsewhere).
    var portmapperPort = 111
    let call = BlockingCall()

    func check() async -> MonitorResult {
        let probe = self
        return await call.run(busy: .error("the previous NFS check of \(host) is still waiting")) { probe.checkBlocking() }
    }

    func checkBlocking() -> MonitorResult {
        let deadline = ContinuousClock.now + timeout
        do {
            if version == 3 { try checkVersion3(deadline: deadline) } else { try checkVersion4(deadline: deadline) }
            return .normal
        } catch {
            return .error("NFS server \(host): \(error.description)")
        }
    }

    // MARK: - Version 4

    func checkVersion4(deadline: ContinuousClock.Instant) throws(ONCRPC.Failure) {
        let connection: ONCRPC.Connection
        do { connection = try ONCRPC.Connection(host: host, port: port, deadline: deadline) } catch {
            throw ONCRPC.Failure("nfsd (NFS v4): \(error.description)")
        }
        do { _ = try connection.call(program: Self.nfsProgram, version: 4, procedure: 0) } catch {
            throw ONCRPC.Failure("nfsd (NFS v4) at port \(port): \(error.description)")
        }
        guard let share else { return }
        let components = share.split(separator: "/").map(String.init)
        guard components.count <= 64, components.allSatisfy({ $0.utf8.count <= 255 }) else {
            throw ONCRPC.Failure("share \(share) is not a path NFS v4 can look up")
        }
        let results: [UInt8]
        do {
            results = try connection.call(
                program: Self.nfsProgram, version: 4, procedure: 1, credential: .system(machine: Self.machineName()),
                arguments: Self.lookupCompound(components))
        } catch {
            throw ONCRPC.Failure("nfsd (NFS v4) at port \(port), looking up \(share): \(error.description)")
        }
        var decoder = ONCRPC.Decoder(results)
        let status = try decoder.uint32()
        guard status == 0 else {
            throw ONCRPC.Failure("nfsd (NFS v4) at port \(port) cannot look up \(share): \(Self.describeNFS4(status))")
        }
    }

    /// COMPOUND (minor version 0, empty tag): PUTROOTFH, then LOOKUP of each component.
    static func lookupCompound(_ components: [String]) -> [UInt8] {
        var arguments = ONCRPC.Encoder()
        arguments.opaque([])  // tag
        arguments.uint32(0)  // minor version
        arguments.uint32(UInt32(1 + components.count))
        arguments.uint32(24)  // OP_PUTROOTFH
        for component in components {
            arguments.uint32(15)  // OP_LOOKUP
            arguments.string(component)
        }
        return arguments.bytes
    }

    static func describeNFS4(_ status: UInt32) -> String {
        let names: [UInt32: String] = [
            1: "NFS4ERR_PERM (not permitted)", 2: "NFS4ERR_NOENT (no such path: not exported)", 5: "NFS4ERR_IO (I/O error)",
            13: "NFS4ERR_ACCESS (access denied)", 20: "NFS4ERR_NOTDIR (a component is not a directory)",
            10008: "NFS4ERR_DELAY (server busy)", 10013: "NFS4ERR_GRACE (server in its grace period)",
            10016: "NFS4ERR_WRONGSEC (AUTH_SYS not allowed for this path)", 10006: "NFS4ERR_SERVERFAULT (server fault)",
        ]
        return names[status] ?? "NFS status \(status)"
    }

    static func machineName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "understudy" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    // MARK: - Version 3

    func checkVersion3(deadline: ContinuousClock.Instant) throws(ONCRPC.Failure) {
        let nfsPort = try registeredPort(program: Self.nfsProgram, version: 3, name: "nfsd v3", deadline: deadline)
        let mountPort = try registeredPort(program: Self.mountProgram, version: 3, name: "mountd v3", deadline: deadline)
        do {
            let nfs = try ONCRPC.Connection(host: host, port: nfsPort, deadline: deadline)
            _ = try nfs.call(program: Self.nfsProgram, version: 3, procedure: 0)
        } catch {
            throw ONCRPC.Failure("nfsd (NFS v3) at port \(nfsPort): \(error.description)")
        }
        let exports: [String]
        do {
            let mount = try ONCRPC.Connection(host: host, port: mountPort, deadline: deadline)
            _ = try mount.call(program: Self.mountProgram, version: 3, procedure: 0)
            guard share != nil else { return }
            exports = try Self.exportList(try mount.call(program: Self.mountProgram, version: 3, procedure: 5))
        } catch {
            throw ONCRPC.Failure("mountd (v3) at port \(mountPort): \(error.description)")
        }
        if let share, !exports.contains(where: { Self.samePath($0, share) }) {
            let listed = exports.prefix(10).joined(separator: ", ")
            throw ONCRPC.Failure("mountd does not export \(share) (exports: \(listed.isEmpty ? "none" : listed))")
        }
    }

    /// The TCP port the portmapper gives for a program version (PMAPPROC_GETPORT).
    func registeredPort(program: UInt32, version: UInt32, name: String, deadline: ContinuousClock.Instant) throws(ONCRPC.Failure)
        -> Int
    {
        var arguments = ONCRPC.Encoder()
        for value in [program, version, 6 /* TCP */, 0] { arguments.uint32(value) }
        let port: UInt32
        do {
            let portmapper = try ONCRPC.Connection(host: host, port: portmapperPort, deadline: deadline)
            var decoder = ONCRPC.Decoder(
                try portmapper.call(program: Self.portmapperProgram, version: 2, procedure: 3, arguments: arguments.bytes))
            port = try decoder.uint32()
        } catch {
            throw ONCRPC.Failure("portmapper at port \(portmapperPort): \(error.description)")
        }
        guard port != 0 else { throw ONCRPC.Failure("\(name) over TCP is not registered with the portmapper") }
        guard port <= 65535 else { throw ONCRPC.Failure("the portmapper gives port \(port) for \(name)") }
        return Int(port)
    }

    /// The exported directories in a MOUNTPROC3_EXPORT reply (their client groups skipped).
    static func exportList(_ results: [UInt8]) throws(ONCRPC.Failure) -> [String] {
        var decoder = ONCRPC.Decoder(results)
        var directories: [String] = []
        var more = try decoder.bool()
        for _ in 0..<10_000 where more {
            directories.append(try decoder.string(maximum: 1024))
            var group = try decoder.bool()
            for _ in 0..<10_000 where group {
                _ = try decoder.opaque(maximum: 255)
                group = try decoder.bool()
            }
            guard !group else { throw ONCRPC.Failure("an export has too many client groups") }
            more = try decoder.bool()
        }
        guard !more else { throw ONCRPC.Failure("the export list is too long") }
        return directories
    }

    static func samePath(_ a: String, _ b: String) -> Bool {
        func trimmed(_ path: String) -> String {
            var path = path
            while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
            return path
        }
        return trimmed(a) == trimmed(b)
    }
}
