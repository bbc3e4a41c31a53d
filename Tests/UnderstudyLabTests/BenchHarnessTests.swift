import Foundation
import Testing
import UnderstudyLab
import UnderstudyModel
import UnderstudyNode

/// The benchmark harness's pure parts: /proc parsing, the memory breakdown, keepalived's
/// configuration, the groups and the lab's size limits. No root needed.
@Suite("Bench harness: /proc parsing, memory breakdown, keepalived configuration")
struct BenchHarnessTests {
    static let executable = "/usr/sbin/understudy"

    /// A made-up smaps: the binary (text, relro, data), its bss, the heap, a thread stack
    /// found by its stack pointer, one found by its guard page, a malloc arena with its
    /// reservation, other anon memory, libc and the vdso.
    static let smaps = """
        555555554000-555556000000 r-xp 00000000 08:01 100 /usr/sbin/understudy
        Size:              11000 kB
        Rss:                8000 kB
        Pss:                4000 kB
        Private_Dirty:         0 kB
        Anonymous:             0 kB
        556000000000-556000800000 r--p 00aac000 08:01 100 /usr/sbin/understudy
        Size:               8192 kB
        Rss:                3000 kB
        Pss:                3000 kB
        Private_Dirty:      2500 kB
        Anonymous:          2500 kB
        556000800000-556000900000 rw-p 012ac000 08:01 100 /usr/sbin/understudy
        Size:               1024 kB
        Rss:                 500 kB
        Pss:                 500 kB
        Private_Dirty:       400 kB
        Anonymous:           400 kB
        556000900000-556000a00000 rw-p 00000000 00:00 0
        Size:               1024 kB
        Rss:                 100 kB
        Pss:                 100 kB
        Private_Dirty:       100 kB
        Anonymous:           100 kB
        556001000000-556001400000 rw-p 00000000 00:00 0                          [heap]
        Size:               4096 kB
        Rss:                2700 kB
        Pss:                2700 kB
        Private_Dirty:      2700 kB
        Anonymous:          2700 kB
        7ffe00000000-7ffe00001000 ---p 00000000 00:00 0
        Size:                  4 kB
        Rss:                   0 kB
        7ffe00001000-7ffe00801000 rw-p 00000000 00:00 0
        Size:               8192 kB
        Rss:                  40 kB
        Pss:                  40 kB
        Private_Dirty:        40 kB
        Anonymous:            40 kB
        7ffe10400000-7ffe10401000 rw-p 00000000 00:00 0
        Size:                  4 kB
        Rss:                   4 kB
        Pss:                   4 kB
        Private_Dirty:         4 kB
        Anonymous:             4 kB
        7ffe10401000-7ffe10c01000 rw-p 00000000 00:00 0
        Size:               8192 kB
        Rss:                  24 kB
        Pss:                  24 kB
        Private_Dirty:        24 kB
        Anonymous:            24 kB
        7ff000000000-7ff000200000 rw-p 00000000 00:00 0
        Size:               2048 kB
        Rss:                 900 kB
        Pss:                 900 kB
        Private_Dirty:       900 kB
        Anonymous:           900 kB
        7ff000200000-7ff004000000 ---p 00000000 00:00 0
        Size:              63488 kB
        Rss:                   0 kB
        7ff100000000-7ff100100000 r-xp 00000000 08:01 200                        /usr/lib/x86_64-linux-gnu/libc.so.6
        Size:               1024 kB
        Rss:                 900 kB
        Pss:                  90 kB
        Private_Dirty:         0 kB
        Anonymous:             0 kB
        7ff100100000-7ff100104000 rw-p 00100000 08:01 200                        /usr/lib/x86_64-linux-gnu/libc.so.6
        Size:                 16 kB
        Rss:                  16 kB
        Pss:                  16 kB
        Private_Dirty:        16 kB
        Anonymous:            16 kB
        7fff00000000-7fff00002000 r-xp 00000000 00:00 0                          [vdso]
        Size:                  8 kB
        Rss:                   4 kB
        Pss:                   0 kB
        """

    func category(_ categories: [Footprint.Category], _ name: String) -> Footprint.Category? {
        categories.first { $0.name == name }
    }

    @Test("smaps: every mapping lands in its category with its counters")
    func smapsBreakdown() throws {
        let mappings = Footprint.parseSmaps(Self.smaps)
        #expect(mappings.count == 14)
        #expect(mappings[0].path == Self.executable && mappings[0].permissions == "r-xp")
        #expect(mappings[3].path.isEmpty)
        #expect(mappings[4].path == "[heap]")
        // The second thread stack (0x7ffe10401000…) holds this stack pointer; the first is found by its guard page.
        let categories = Footprint.categorize(mappings, executable: Self.executable, stackPointers: [0x7ffe_10c0_0f00])
        #expect(category(categories, "binary text")?.rss == 8000)
        #expect(category(categories, "binary text")?.pss == 4000)
        #expect(category(categories, "binary rodata + relro")?.privateDirty == 2500)
        #expect(category(categories, "binary data")?.rss == 500)
        #expect(category(categories, "binary bss")?.rss == 100)
        #expect(category(categories, "heap")?.anonymous == 2700)
        #expect(category(categories, "thread stacks")?.mappings == 2)
        #expect(category(categories, "thread stacks")?.rss == 64)
        #expect(category(categories, "malloc arenas")?.rss == 900)
        #expect(category(categories, "guard pages and reservations")?.mappings == 2)
        #expect(category(categories, "other anon")?.rss == 4)
        #expect(category(categories, "lib libc.so.6")?.mappings == 2)
        #expect(category(categories, "lib libc.so.6")?.rss == 916)
        #expect(category(categories, "kernel")?.rss == 4)
        let total = categories.reduce(0) { $0 + $1.rss }
        #expect(total == mappings.reduce(0) { $0 + ($1.fields["Rss"] ?? 0) })
        let table = Footprint.breakdownTable(
            Footprint.Memory(pid: 1, command: "understudy", threads: 3, status: [:], rollup: [:], categories: categories))
        #expect(table.contains("| binary text | 1 | 11000 | 8000 | 4000 | 0 | 0 |"))
        #expect(table.contains("| total | 14 | | \(total) |"))
    }

    @Test("smaps without a stack pointer: a writable mapping right above a small guard page is a stack")
    func stackByGuardPage() {
        let categories = Footprint.categorize(Footprint.parseSmaps(Self.smaps), executable: Self.executable, stackPointers: [])
        #expect(category(categories, "thread stacks")?.mappings == 1)
        #expect(category(categories, "other anon")?.mappings == 2)
    }

    @Test("status and smaps_rollup: kB fields")
    func kilobyteFields() {
        let fields = Footprint.kilobyteFields("Name:\tunderstudy\nVmRSS:\t   51200 kB\nRssAnon:\t    5600 kB\nThreads:\t12\nPss:  4 kB\n")
        #expect(fields == ["VmRSS": 51200, "RssAnon": 5600, "Pss": 4])
    }

    @Test("/proc/PID/stat: a command with spaces and parentheses, CPU ticks, start time")
    func statParsing() throws {
        let text = "4242 (keep (alive) d) S 4200 4242 4242 0 -1 4194560 100 0 0 0 7 5 3 2 20 0 1 0 98765 1000 200\n"
        let ticks = try #require(Footprint.parseStat(text, pid: 4242))
        #expect(ticks.command == "keep (alive) d")
        #expect(ticks.parent == 4200)
        #expect(ticks.own == 12)
        #expect(ticks.children == 5)
        #expect(ticks.startTime == 98765)
        #expect(Footprint.parseStat("4242 (x) S 1 2", pid: 4242) == nil)
    }

    @Test("CPU of a process tree: growth of the survivors, all of a newcomer, nothing of the dead")
    func ticksOfTree() {
        func process(_ pid: Int32, _ parent: Int32, own: Double, children: Double = 0, start: UInt64 = 1) -> Footprint.ProcessTicks {
            Footprint.ProcessTicks(pid: pid, parent: parent, command: "p", startTime: start, own: own, children: children)
        }
        let before = [process(10, 1, own: 100), process(11, 10, own: 50), process(12, 10, own: 7)]
        // 12 exited (reaped by 10: its time shows in 10's children), 13 is new, 11 was reused by another process.
        let after = [process(10, 1, own: 103, children: 8), process(11, 10, own: 2, start: 9), process(13, 10, own: 4)]
        #expect(Footprint.ticksSpent(from: before, to: after) == 3 + 8 + 2 + 4)
        let all = after + [process(14, 13, own: 0), process(20, 1, own: 0), process(21, 20, own: 0)]
        #expect(Footprint.descendants(of: after[0], in: all).map(\.pid) == [10, 11, 13, 14])
    }

    @Test("the running test process: its own tree, memory and breakdown from /proc")
    func liveProcess() throws {
        let me = getpid()
        let tree = Footprint.tree(of: me)
        #expect(tree.first?.pid == me)
        // The whole of smaps, not the first 4 KiB (Foundation stops reading /proc files there).
        let smaps = try #require(KernelFile.read("/proc/\(me)/smaps"))
        #expect(smaps.utf8.count > 4096)
        let maps = try #require(KernelFile.read("/proc/\(me)/maps"))
        #expect(abs(Footprint.parseSmaps(smaps).count - maps.split(separator: "\n").count) < 20)
        let memory = try #require(Footprint.memory(of: me))
        #expect((memory.status["VmRSS"] ?? 0) > 0)
        #expect(memory.threads >= 1)
        #expect(memory.categories.contains { $0.name == "binary text" && $0.rss > 0 })
        let rss = memory.categories.reduce(0) { $0 + $1.rss }
        // smaps and smaps_rollup are read a moment apart: allow the pages touched in between.
        let rollup = try #require(memory.rollup["Rss"])
        #expect(abs(rss - rollup) < max(4096, rollup / 10), "smaps \(rss) kB vs smaps_rollup \(rollup) kB")
    }

    @Test("keepalived: VRRPv3, fractional advert_int, nopreempt, priorities by server order, unicast peers")
    func keepalivedConfiguration() throws {
        let spec = LabSpec(prefix: "kt", servers: 3, subnet: 14)
        let settings = KeepalivedBenchmark.Settings(advertSeconds: 0.01, transport: .unicast, instances: 2)
        try settings.validate()
        let text = KeepalivedBenchmark.configuration(spec: spec, server: "node2", settings: settings)
        #expect(text.contains("vrrp_version 3"))
        #expect(text.contains("vrrp_instance web1 {") && text.contains("vrrp_instance web2 {"))
        #expect(text.components(separatedBy: "advert_int 0.01\n").count == 3)
        #expect(text.contains("virtual_router_id 51") && text.contains("virtual_router_id 52"))
        #expect(text.components(separatedBy: "priority 199\n").count == 3)
        #expect(text.components(separatedBy: "nopreempt").count == 3)
        #expect(text.contains("unicast_src_ip 10.200.14.12"))
        #expect(text.contains("        10.200.14.11\n        10.200.14.13\n"))
        #expect(!text.contains("        10.200.14.12\n"))
        #expect(text.contains("10.200.14.50/24 dev eth0") && text.contains("10.200.14.51/24 dev eth0"))
        let multicast = KeepalivedBenchmark.configuration(
            spec: spec, server: "node1", settings: .init(advertSeconds: 0.1, transport: .multicast))
        #expect(!multicast.contains("unicast"))
        #expect(multicast.contains("advert_int 0.1\n") && multicast.contains("priority 200\n"))
        // Braces balance.
        #expect(text.filter { $0 == "{" }.count == text.filter { $0 == "}" }.count)
    }

    @Test("keepalived settings: advert_int in hundredths from 0.01 to 40.95 s, 1 to 40 instances")
    func keepalivedSettings() {
        #expect(KeepalivedBenchmark.Settings(advertSeconds: 0.1).advertText == "0.1")
        #expect(KeepalivedBenchmark.Settings(advertSeconds: 0.01).advertText == "0.01")
        #expect(KeepalivedBenchmark.Settings(advertSeconds: 1).advertText == "1")
        #expect(KeepalivedBenchmark.Settings(advertSeconds: 1.5).advertText == "1.5")
        for bad in [0.001, 0.015, 41, 0] {
            #expect(throws: LabError.self) { try KeepalivedBenchmark.Settings(advertSeconds: bad).validate() }
        }
        #expect(throws: LabError.self) { try KeepalivedBenchmark.Settings(advertSeconds: 1, instances: 41).validate() }
    }

    @Test("ten groups of one floating IP each: a configuration the loader accepts, addresses .50 to .59")
    func tenGroups() throws {
        let spec = LabSpec(prefix: "gt", servers: 2, subnet: 15, withGroup: false)
        let yaml = spec.yaml() + "\n" + (try FailoverBenchmark.groupsYAML(spec: spec, count: 10, probeWait: "20ms"))
        let config = try ConfigLoader.load(yaml: yaml, sourcePath: "/tmp/understudy-bench-test/cluster.yaml")
        #expect(config.groups.map(\.name) == (1...10).map { "web\($0)" })
        let one = spec.yaml() + "\n" + (try FailoverBenchmark.groupsYAML(spec: spec, count: 1, probeWait: "20ms"))
        #expect(try ConfigLoader.load(yaml: one, sourcePath: "/tmp/understudy-bench-test/cluster.yaml").groups.map(\.name) == ["web"])
        #expect(yaml.contains("address: 10.200.15.50/24") && yaml.contains("address: 10.200.15.59/24"))
        #expect(throws: LabError.self) { try FailoverBenchmark.groupsYAML(spec: spec, count: 41, probeWait: "20ms") }
    }

    @Test("labs of up to 32 servers: names, addresses below the floating IPs, namespace recognition")
    func thirtyTwoServers() throws {
        let spec = LabSpec(prefix: "big", servers: 32, subnet: 16)
        try spec.validate()
        #expect(spec.serverNames.last == "node32")
        #expect(spec.publicAddress(of: "node32") == "10.200.16.42")
        #expect(LabSpec.isLabNamespace("big-node32", prefix: "big"))
        #expect(!LabSpec.isLabNamespace("big-node33", prefix: "big"))
        #expect(throws: LabError.self) { try LabSpec(prefix: "big", servers: 33).validate() }
        // Every server's address is below the first floating address and distinct.
        let addresses = spec.serverNames.map { spec.publicAddress(of: $0) }
        #expect(Set(addresses).count == 32)
        #expect(!addresses.contains(FailoverBenchmark.floatingAddress(spec: spec, group: 1)))
    }

    @Test("failover summary: min, median (even and odd counts), max")
    func summary() throws {
        let odd = try #require(FailoverBenchmark.summary([0.3, 0.1, 0.2]))
        #expect(odd.min == 0.1 && odd.median == 0.2 && odd.max == 0.3)
        let even = try #require(FailoverBenchmark.summary([4, 1, 3, 2]))
        #expect(even.median == 2.5)
        #expect(FailoverBenchmark.summary([]) == nil)
    }
}

/// The failover benchmark's prober starts a request every interval even while earlier ones
/// hang: a server that leaves the first connection unanswered and answers the second must be
/// heard from the second while the first is still open (a prober that waits for each request
/// would close the first only at its timeout, here 5 s, and answer after it).
@Suite("Bench harness: the prober's requests overlap")
struct ProberOverlapTests {
    @Test func aHangingRequestDoesNotHoldBackTheNext() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        try #require(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0 && listen(listener, 8) == 0)
        // accept() and recv() give up after 10 s, so a broken prober cannot hang the test.
        var limit = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let port = UInt16(bigEndian: address.sin_port)

        final class Outcome: @unchecked Sendable {
            var firstStillOpen = false
            let done = DispatchSemaphore(value: 0)
        }
        let outcome = Outcome()
        Thread.detachNewThread {
            defer { outcome.done.signal() }
            let first = accept(listener, nil, nil)
            guard first >= 0 else { return }
            defer { close(first) }
            let second = accept(listener, nil, nil)
            guard second >= 0 else { return }
            defer { close(second) }
            var answerLimit = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(second, SOL_SOCKET, SO_RCVTIMEO, &answerLimit, socklen_t(MemoryLayout<timeval>.size))
            var byte: UInt8 = 0
            // The prober has not given the first request up: no end of stream on it yet.
            var buffer = [UInt8](repeating: 0, count: 1024)
            _ = recv(first, &buffer, buffer.count, Int32(MSG_DONTWAIT))
            outcome.firstStillOpen = recv(first, &byte, 1, Int32(MSG_DONTWAIT) | Int32(MSG_PEEK)) < 0 && errno == EAGAIN
            _ = recv(second, &buffer, buffer.count, 0)
            let answer = Array("HTTP/1.0 200 OK\r\n\r\nnode2\n".utf8)
            _ = answer.withUnsafeBytes { send(second, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        let first = HTTPProbe.untilAnswer(
            host: "127.0.0.1", port: port, accepting: { $0 != "node1" }, interval: .milliseconds(10), limit: .seconds(20),
            requestTimeoutMilliseconds: 5000)
        outcome.done.wait()
        #expect(first?.answer == "node2")
        #expect(outcome.firstStillOpen)
    }
}
