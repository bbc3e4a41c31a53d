import Foundation
import Logging
import UnderstudyEngine
import UnderstudyModel

#if canImport(Glibc)
    import Glibc
#endif

/// A small process beside the daemon that outlives it: when the daemon dies without saying
/// goodbye (kill -9, crash), the keeper fences at once what the daemon held on this server —
/// it kills the resources' processes and removes the floating and virtual addresses — so
/// that the server taking the groups over does not find them still in use. (A daemon that
/// restarts would do the same, but maybe never.)
///
/// The daemon holds the write end of the keeper's stdin; end of file without the word
/// `clean` first means the daemon is gone.
public enum Keeper {
    /// A running keeper: the process and the write end of its stdin.
    struct Running {
        var process: Process
        var handle: FileHandle
    }

    /// Starts the keeper of this daemon; returns it with the handle the daemon keeps open.
    static func launch(configPath: String, server: ServerName, stateDirectory: String, logger: Logger) -> Running? {
        guard let binary = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return nil }
        let pipe = Pipe()
        // Scripts must not inherit the write end, or the keeper never sees the daemon go.
        _ = fcntl(pipe.fileHandleForWriting.fileDescriptor, F_SETFD, FD_CLOEXEC)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["keeper", "--config", configPath, "--server", server, "--state-dir", stateDirectory]
        process.standardInput = pipe.fileHandleForReading
        do {
            try process.run()
        } catch {
            logger.error("cannot start the keeper: \(error); a crash of this daemon would leave its resources in place")
            return nil
        }
        try? pipe.fileHandleForReading.close()
        return Running(process: process, handle: pipe.fileHandleForWriting)
    }

    /// The daemon exits normally: the keeper has nothing to do.
    static func dismiss(_ handle: FileHandle?) {
        guard let handle else { return }
        try? handle.write(contentsOf: Data("clean\n".utf8))
        try? handle.close()
    }

    /// Keeper side: waits for the daemon to go, then fences if it did not say goodbye.
    public static func run(config: ClusterConfig, server: ServerName, stateDirectory: String, logger: Logger) async {
        let message = FileHandle.standardInput.readDataToEndOfFile()
        if String(decoding: message, as: UTF8.self).contains("clean") { return }
        logger.critical("the daemon of \(server) died: fencing its resources on this server")
        let drivers = ResourceDrivers(
            context: ResourceDriverContext(
                server: server, runner: ScriptRunner(logger: logger),
                host: HostFacts.detect(productVersion: Defaults.productVersion, installPath: Defaults.installPath),
                logDirectory: stateDirectory + "/logs", stateDirectory: stateDirectory, leaseFile: nil, interfaceAddress: nil,
                logger: logger))
        for group in config.groups where group.servers.contains(server) {
            for task in drivers.fence(group: group, server: server) { await task.value }
        }
    }
}
