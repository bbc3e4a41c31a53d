/// Seeds whose schedule once broke an invariant: replayed first by every run of the
/// simulator (`understudy simulate`, the test suite). Add every seed a soak finds, with the
/// server count and what it found, in the commit that fixes it.
///
/// A seed's schedule depends on the fault table (Faults.swift) and on the Engine's decisions.
/// The seeds found before the fault table (701469, 30006579, 30010071, 4000293, 30008408,
/// 30010857 with three servers, 200123 with two) now draw other schedules; the holes they found
/// keep step-by-step tests of their own (MasterHandoverTests, SurvivorTests) and stay in the
/// list as ordinary schedules.
public struct RegressionSeed: Sendable {
    public var seed: UInt64
    public var servers: Int
    public var found: String

    public static let all: [RegressionSeed] = [
        RegressionSeed(seed: 701_469, servers: 3, found: "a master hand-over that restarted groups twice"),
        RegressionSeed(seed: 30_006_579, servers: 3, found: "a server that left one running founded a cluster without it"),
        RegressionSeed(seed: 30_010_071, servers: 3, found: "a freeze inside a freeze ended early (simulator)"),
        RegressionSeed(seed: 4_000_293, servers: 3, found: "a shutdown after the quiet point (simulator)"),
        RegressionSeed(seed: 30_008_408, servers: 3, found: "commands of a cluster that restarted (check)"),
        RegressionSeed(seed: 30_010_857, servers: 3, found: "commands of a cluster that restarted (check)"),
        RegressionSeed(seed: 200_123, servers: 2, found: "two one-way cuts without target loss (simulator)"),
        RegressionSeed(
            seed: 70_000_688, servers: 3, found: "a stop killed by a fence counted as ending a resource started after it (I1 check)"),
        RegressionSeed(
            seed: 571_000_878, servers: 5,
            found: "servers that stopped cleanly came back on one side of a split and gave it a majority the other side also held"),
        RegressionSeed(
            seed: 81_001_390, servers: 3,
            found: "a move that ended was judged at the end, after a failover and clprsc -t had changed the group (commands check)"),
        RegressionSeed(
            seed: 82_001_971, servers: 3,
            found: "a peer that had just restarted its service agreed that a frozen server was down while that server's lease still ran"),
        RegressionSeed(
            seed: 286_000_465, servers: 2,
            found:
                "a one-way cut, then a full cut with target loss: the holder learnt only after the takeover that its peer had judged it down"
        ),
        RegressionSeed(
            seed: 287_002_599, servers: 2,
            found: "the lease of a frozen server computed at a later time counted a peer it heard before the freeze as lost (lease check)"),
        RegressionSeed(
            seed: 288_001_563, servers: 2,
            found: "a down confirmation kept while not master let a later master take over at once after the next loss"),
        RegressionSeed(
            seed: 288_003_080, servers: 2,
            found: "a peer silent for a moment came back not hearing us: its earlier echo, which bound the lease, was forgotten"),
        RegressionSeed(
            seed: 95_002_336, servers: 3,
            found: "a master that had just restarted its service placed a group whose owner, frozen, it had not heard yet"),
        RegressionSeed(
            seed: 1_569, servers: 2,
            found: "the end of a LAN-only cut gave back the ping targets of a partition still under way (simulator)"),
        RegressionSeed(
            seed: 9_961_041, servers: 2,
            found: "the quiet point's one resume came while no server was master yet: the cluster stayed suspended (simulator)"),
        RegressionSeed(
            seed: 9_991_105, servers: 3,
            found: "a server that had run with another key left nobody behind, came back with the right one and founded a second cluster"),
        RegressionSeed(
            seed: 22_200_397, servers: 2,
            found:
                "datagrams failing authentication were handed to a frozen server's Engine: it ran while frozen and missed its lease (simulator)"
        ),
        RegressionSeed(
            seed: 22_309_495, servers: 2,
            found: "datagrams failing authentication were handed to a frozen server's Engine (simulator)"),
        RegressionSeed(
            seed: 22_200_109, servers: 2,
            found:
                "a daemon stopping after its key file was replaced spoke with the new key before it exited (simulator: a daemon keeps the key it started with)"
        ),
        RegressionSeed(
            seed: 22_303_315, servers: 2,
            found: "a daemon with another key, stopping after its key file was fixed, spoke with the fixed key before it exited (simulator)"
        ),
        RegressionSeed(
            seed: 22_310_059, servers: 2,
            found: "a daemon stopping after its key file was replaced spoke with the new key before it exited (simulator)"),
        RegressionSeed(
            seed: 23_002_612, servers: 2,
            found:
                "a server that started behind a one-way cut heard its peer but could not fetch its state, treated it as down at the end of its sync wait and started every group"
        ),
        RegressionSeed(
            seed: 23_004_758, servers: 2,
            found: "the same: a restarted server behind a one-way cut, its peer's heartbeats held for a state fetch that could not answer"),
        RegressionSeed(
            seed: 23_000_596, servers: 2,
            found:
                "under heavy loss a peer dropped out of the view for a moment while nobody had joined: this server founded alone at once, the peer founded too, both placed groups"
        ),
        RegressionSeed(
            seed: 23_006_462, servers: 2,
            found:
                "a server running with another key treated its peer as down once a one-way cut hid the peer's datagrams, and took its groups"
        ),
        RegressionSeed(
            seed: 23_003_755, servers: 2,
            found:
                "a reboot by another fault after the key file was fixed booted with the other key (simulator: the daemon reads the key file when it starts)"
        ),
        RegressionSeed(
            seed: 23_113_331, servers: 2,
            found:
                "a server stopped cleanly 1.4 s after a one-way cut hid its peer, left nobody behind, came back with another key and started every group the peer ran"
        ),
        RegressionSeed(
            seed: 23_122_046, servers: 2,
            found:
                "the same as 23113331 after a two-way partition: the server stopped 3 s into it, left nobody behind and founded alone with another key"
        ),
        RegressionSeed(
            seed: 23_121_638, servers: 2,
            found:
                "a partition healed as both sides judged each other down; the held heartbeats came a moment after the down confirmation and the takeover went ahead"
        ),
        RegressionSeed(
            seed: 23_410_429, servers: 3,
            found:
                "a server frozen through clpstdn went on alone with a majority of one (the others had left cleanly); they came back behind a partition with two of three"
        ),
        RegressionSeed(
            seed: 23_412_714, servers: 3,
            found:
                "a peer's newer heartbeats waited for a state fetch that could not answer; its stale report said it had not joined, and two masters took the cluster from each other"
        ),
        RegressionSeed(
            seed: 23_616_583, servers: 3,
            found:
                "(a first fix of 23410429 applied the farewell rule to a running cluster) a server finishing a slow cluster stop lost its quorum and lease; after a long freeze its stuck group was not fenced"
        ),
        RegressionSeed(
            seed: 23_706_632, servers: 3,
            found:
                "a LAN cut left one server only a disk heartbeat to the master, whose state it could not fetch; it led the third server's view, the third followed the master, and the two masters started a new epoch at every heartbeat"
        ),
        RegressionSeed(
            seed: 24_613_293, servers: 2,
            found:
                "a started group failed back at once and its stop failed (Offline Failure, assigned to the other server): the start command waited until its timeout"
        ),
        RegressionSeed(
            seed: 25_003_013, servers: 3,
            found:
                "a server started during a cluster stop ran on alone, counting the stopped servers out of its majority; they came back behind a partition with two of three and ran the groups too"
        ),
    ]
}
