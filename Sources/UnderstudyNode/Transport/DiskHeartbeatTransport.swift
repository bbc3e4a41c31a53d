import Foundation
import UnderstudyEngine
import UnderstudyModel

/// `diskhb`: heartbeats through a shared block device prepared by `understudy diskhb init`.
///
/// Each server writes its heartbeat, sealed like a datagram, into its own slot (its position
/// in `servers:`) with O_DIRECT, and reads the other servers' slots every heartbeat interval.
/// All of it runs on a thread of its own (`DiskHeartbeatWorker`): a device that hangs in the
/// kernel holds back nothing but this path. The device is opened afresh each cycle, so one
/// that disappears and comes back (a path of a multipath disk, a loop device detached and
/// attached again) is picked up again; while a cycle fails the path delivers nothing, its
/// failure is logged once and counted in `deviceError`, and `clpstat` shows the path as error
/// once the timeout passes.
///
/// A slot seen for the first time (at start, or after the device failed) is not delivered:
/// it may be a dead server's last heartbeat. Only a slot that changed since the last read
/// proves its writer alive; a slot read again unchanged is no new heartbeat.
struct DiskHeartbeatTransport: BlockingHeartbeatTransport {
    let path: String
    let worker: DiskHeartbeatWorker
    let heartbeat: HeartbeatConfig
    let context: HeartbeatTransportContext

    static func open(_ heartbeat: HeartbeatConfig, _ context: HeartbeatTransportContext) async throws -> (any HeartbeatTransport)? {
        try open(heartbeat, context, firstSequence: 1)
    }

    static func open(_ heartbeat: HeartbeatConfig, _ context: HeartbeatTransportContext, firstSequence: UInt64) throws
        -> DiskHeartbeatTransport?
    {
        guard case .disk(let device) = heartbeat.kind else { return nil }
        let servers = context.config.serverNames
        guard let mySlot = servers.firstIndex(of: context.me) else { return nil }
        if let problem = DiskHeartbeatDevice.blockDeviceProblem(device) {
            throw DiskHeartbeatDeviceError("device: \(problem); a diskhb device must be a block device (a partition of a shared disk)")
        }
        let header: DiskHeartbeatHeader
        let size: Int
        do {
            let opened = try DiskHeartbeatDevice(path: device)
            header = try opened.header()
            size = try opened.size()
        } catch {
            throw DiskHeartbeatDeviceError("device: \(error); prepare it with `understudy diskhb init \(device)`")
        }
        guard header.slotCount >= servers.count else {
            throw DiskHeartbeatDeviceError(
                "device: \(device) has \(header.slotCount) slots, the cluster has \(servers.count) servers; prepare a larger partition")
        }
        guard size >= DiskHeartbeatLayout.slotOffset(servers.count) else {
            throw DiskHeartbeatDeviceError("device: \(device) is smaller than its header says (\(size) bytes)")
        }
        let peers = servers.enumerated().filter { $0.element != context.me }.map { (slot: $0.offset, name: $0.element) }
        let worker = DiskHeartbeatWorker(
            state: BlockingPathState(path: heartbeat.name, type: heartbeat.typeName, events: context.events), device: device,
            me: context.me, mySlot: mySlot, peers: peers, codec: DiskSlotCodec(key: context.key, clusterName: context.config.cluster.name),
            datagrams: DatagramCodec(key: context.key), bootID: context.bootID, firstSequence: firstSequence,
            interval: context.config.cluster.timing.heartbeatInterval)
        worker.start()
        return DiskHeartbeatTransport(path: heartbeat.name, worker: worker, heartbeat: heartbeat, context: context)
    }

    var state: BlockingPathState { worker.state }

    func reopened() async throws -> any HeartbeatTransport {
        worker.state.stop()
        guard let transport = try Self.open(heartbeat, context, firstSequence: worker.upcomingSequence) else {
            throw DiskHeartbeatDeviceError("\(path) is no longer a disk heartbeat of this server")
        }
        return transport
    }

}

/// The thread of one disk heartbeat path: writes this server's slot when a heartbeat is due,
/// reads the peers' slots every interval.
final class DiskHeartbeatWorker: @unchecked Sendable {
    let state: BlockingPathState
    let device: String
    let me: String
    let mySlot: Int
    let peers: [(slot: Int, name: String)]
    let codec: DiskSlotCodec
    let interval: Duration
    let bootID: UInt64
    /// Only the thread touches the fields below (after `start`).
    private var datagrams: DatagramCodec
    private var nextSequence: UInt64
    /// The boot id and sequence last read from each peer's slot; absent: not looked at yet
    /// since the start or the last failure (the next change is the first delivered).
    private var lastSeen: [String: (bootID: UInt64, sequence: UInt64)] = [:]
    private let sequenceLock = NSLock()

    init(
        state: BlockingPathState, device: String, me: String, mySlot: Int, peers: [(slot: Int, name: String)], codec: DiskSlotCodec,
        datagrams: DatagramCodec, bootID: UInt64, firstSequence: UInt64, interval: Duration
    ) {
        self.state = state
        self.device = device
        self.me = me
        self.mySlot = mySlot
        self.peers = peers
        self.codec = codec
        self.datagrams = datagrams
        self.bootID = bootID
        self.nextSequence = firstSequence
        self.interval = interval
    }

    var upcomingSequence: UInt64 {
        sequenceLock.lock()
        defer { sequenceLock.unlock() }
        return nextSequence
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "diskhb \(state.path)"
        thread.start()
    }

    private func run() {
        var nextRead = ContinuousClock.now
        while true {
            let (heartbeat, stop) = state.wait(until: nextRead)
            if stop { return }
            if let heartbeat { write(heartbeat) }
            if ContinuousClock.now >= nextRead {
                readPeers()
                nextRead += interval
                if nextRead < .now { nextRead = .now + interval }
            }
        }
    }

    /// Opens the device for one cycle and checks its header (someone may have overwritten
    /// it, or another device appeared at the path).
    private func openChecked() -> DiskHeartbeatDevice? {
        do {
            let opened = try state.io("opening \(device)") { () throws(DiskHeartbeatDeviceError) -> DiskHeartbeatDevice in
                try DiskHeartbeatDevice(path: device)
            }
            let header = try state.io("reading the header of \(device)") { () throws(DiskHeartbeatDeviceError) in try opened.header() }
            guard header.slotCount > max(mySlot, peers.map(\.slot).max() ?? 0) else {
                throw DiskHeartbeatDeviceError("\(device) has only \(header.slotCount) slots now")
            }
            return opened
        } catch {
            fail("\(error)")
            return nil
        }
    }

    private func fail(_ reason: String) {
        lastSeen = [:]
        state.failed(reason)
    }

    private func write(_ heartbeat: PendingHeartbeat) {
        guard ContinuousClock.now <= heartbeat.freshUntil else {
            state.counters.withLock { $0.staleNotSent += 1 }
            return
        }
        sequenceLock.lock()
        let sequence = nextSequence
        nextSequence &+= 1
        sequenceLock.unlock()
        guard let datagram = try? datagrams.seal(payload: heartbeat.payload, sender: me, bootID: bootID, sequence: sequence),
            let slot = codec.seal(datagram: datagram, slot: mySlot, writtenAtMicros: BlockingPathState.wallMicros())
        else {
            state.counters.countSend(succeeded: false)
            return
        }
        guard let opened = openChecked() else {
            state.counters.countSend(succeeded: false)
            return
        }
        do {
            try state.io("writing slot \(mySlot) of \(device)") { () throws(DiskHeartbeatDeviceError) in
                try opened.write(slot, at: DiskHeartbeatLayout.slotOffset(mySlot))
            }
            state.counters.countSend(succeeded: true)
        } catch {
            state.counters.countSend(succeeded: false)
            fail("\(error)")
        }
    }

    private func readPeers() {
        guard !peers.isEmpty, let opened = openChecked() else { return }
        for peer in peers {
            let bytes: [UInt8]
            do {
                bytes = try state.io("reading slot \(peer.slot) of \(device)") { () throws(DiskHeartbeatDeviceError) in
                    try opened.read(at: DiskHeartbeatLayout.slotOffset(peer.slot), length: DiskHeartbeatLayout.slotSize)
                }
            } catch {
                fail("\(error)")
                return
            }
            examine(bytes, of: peer)
        }
        state.worked()
    }

    /// Checks one peer's slot and delivers it when it is a new heartbeat of that peer.
    func examine(_ bytes: [UInt8], of peer: (slot: Int, name: String)) {
        let slot: DiskSlotCodec.Slot
        switch codec.open(bytes, expectedSlot: peer.slot) {
        case .failure(let reason):
            state.count(reason)
            return
        case .success(nil):
            return  // never written
        case .success(let written?):
            slot = written
        }
        let opened: DatagramCodec.Opened
        switch datagrams.authenticate(slot.datagram) {
        case .failure(let reason):
            state.count(reason)
            return
        case .success(let authenticated):
            opened = authenticated
        }
        guard opened.sender == peer.name else {
            state.count(.wrongSender)
            return
        }
        let previous = lastSeen[peer.name]
        if let previous, previous.bootID == opened.bootID, previous.sequence == opened.sequence { return }
        lastSeen[peer.name] = (opened.bootID, opened.sequence)
        // First look: possibly a dead server's last word.
        guard previous != nil else { return }
        if let reason = datagrams.replayGuard.admit(sender: opened.sender, bootID: opened.bootID, sequence: opened.sequence) {
            state.count(reason)
            return
        }
        state.deliver(opened, from: device)
    }
}
