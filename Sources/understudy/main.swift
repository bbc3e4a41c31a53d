import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// `understudy`, and through symlinks named clpstat, clpcl, clpgrp, clprsc, clpmonctrl, clprexec, clpdown, clpstdn, clpcfctrl, clpperfc, clpcfget, clptoratio, clplogcmd, clplogcc, clpregctrl, those commands.
struct Understudy: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "understudy",
        abstract: "Understudy: a high-availability cluster manager for Linux.",
        subcommands: [
            DaemonCommand.self, KeeperCommand.self, ConfigCommand.self, ClpStat.self, ClpCl.self, ClpGrp.self, ClpRsc.self, ClpMonCtrl.self,
            ClpRexec.self, ClpDown.self, ClpStdn.self, ClpCfCtrl.self, ClpPerfc.self, ClpCfGet.self, ClpToRatio.self, ClpLogCmd.self,
            ClpLogCc.self, ClpRegCtrl.self,
            DemoCommand.self, SimulateCommand.self, KeygenCommand.self, InstallAliasesCommand.self, DemoResponder.self,
            LabCommand.self, DiskHeartbeatCommand.self, WitnessCommand.self, UserCommand.self, AlertsCommand.self,
        ])
}

/// Runs the command line; usage errors exit with 2 (ARCHITECTURE.md §7), help with 0.
func runCommandLine() async -> Int32 {
    var arguments = Array(CommandLine.arguments.dropFirst())
    let invokedAs = (CommandLine.arguments.first.map { ($0 as NSString).lastPathComponent }) ?? "understudy"
    if Aliases.names.contains(invokedAs) { arguments.insert(invokedAs, at: 0) }
    do {
        var command = try Understudy.parseAsRoot(arguments)
        if var asyncCommand = command as? AsyncParsableCommand {
            try await asyncCommand.run()
        } else {
            try command.run()
        }
        return 0
    } catch {
        let code = Understudy.exitCode(for: error)
        if let exit = error as? ExitCode { return exit.rawValue }
        if code == .success {
            print(Understudy.fullMessage(for: error))
            return 0
        }
        FileHandle.standardError.write(Data((Understudy.fullMessage(for: error) + "\n").utf8))
        // ArgumentParser's usage errors (EX_USAGE) are bad usage: 2.
        return code == .validationFailure ? 2 : code.rawValue
    }
}

// glibc gives each thread that meets contention a malloc arena of its own (up to 8 per core),
// each keeping freed memory of its own: 15 arenas held 2.4 MiB of an idle daemon's 5 MiB of
// heap. Its allocations are few and small; two arenas serve them. Set before any thread
// allocates: glibc fixes the limit when it first needs a second arena. (`mallopt` is declared
// in malloc.h, which Swift's Glibc module does not bring in; M_ARENA_MAX is -8 there.)
if let mallopt = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") {
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    _ = unsafeBitCast(mallopt, to: Mallopt.self)(-8, 2)
}
exit(await runCommandLine())
