import Dispatch
import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Removes a lab when the command that built it is interrupted. A benchmark or safety run
/// killed by Ctrl-C, `timeout` or SIGTERM would otherwise end with its daemons, keepers,
/// namespaces and loop devices left behind (its `defer` never runs): with 32 servers that is
/// 64 processes loading the machine until someone runs `lab down`.
public enum LabInterruption {
    /// The signals that end a command here: the handler removes the lab, then exits with
    /// 128 + the signal, as the default action would have.
    public static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    private static let sources = LockedSources()
    private static let interrupted = Atomic<Bool>(false)

    /// True once a signal arrived: the lab is being removed, nothing more may start in it.
    public static var isInterrupted: Bool { interrupted.load(ordering: .acquiring) }

    /// From now on, SIGINT, SIGTERM and SIGHUP remove the lab of `prefix` (what `lab down
    /// --prefix` removes: recorded daemons, every process in its namespaces, the namespaces,
    /// its loop devices and `folder`) and end the process. `before` runs first (a command's
    /// own leftovers outside the lab, such as an image file).
    public static func removeOnSignal(prefix: String, folder: String, before: @escaping @Sendable () -> Void = {}) {
        let queue = DispatchQueue(label: "understudy.lab.interruption")
        var installed: [any DispatchSourceSignal] = []
        for number in signals {
            // The default action would end the process before the handler runs.
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                FileHandle.standardError.write(Data("interrupted (signal \(number)): removing lab \(prefix)\n".utf8))
                interrupted.store(true, ordering: .releasing)
                before()
                // Nothing starts in the lab from now on (`Lab.startDaemon` checks); a keeper a
                // daemon was spawning as it was killed sees its daemon gone and exits itself.
                let removed = Lab.destroy(prefix: prefix, folder: folder)
                FileHandle.standardError.write(Data("removed \(removed.count) processes, namespaces and folders of lab \(prefix)\n".utf8))
                exit(128 + number)
            }
            source.resume()
            installed.append(source)
        }
        sources.keep(installed)
    }
}

/// Keeps the signal sources alive for the life of the process.
private final class LockedSources: @unchecked Sendable {
    private let lock = NSLock()
    private var sources: [any DispatchSourceSignal] = []

    func keep(_ more: [any DispatchSourceSignal]) {
        lock.lock()
        sources += more
        lock.unlock()
    }
}
