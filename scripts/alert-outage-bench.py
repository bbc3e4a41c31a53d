#!/usr/bin/env python3
"""Alert destinations in an outage: heartbeat lateness and the alert log's completeness.

Starts three daemons on 127.0.0.37-39 with the fast profile (20 ms / 100 ms), whose alert
section lists four destinations that cannot take an alert, and at first routes nothing to them:

  mail-refused  SMTP to a loopback port where nothing listens (connection refused)
  mail-silent   SMTP to a loopback listener that accepts the connection and never answers
                (the mail client waits for the greeting until its 30 s timeout)
  traps         SNMP traps to a loopback UDP port where nothing listens (ICMP port unreachable)
  hook-silent   a webhook to a loopback listener that accepts and never answers (5 s timeout)

Then three minutes, SECONDS each (60: `clpstat --json` reports the lateness of the last minute):

  idle      nothing happens;
  events    clplogcmd on node1 at RATE a second and grp1 moved between node1 and node2 every
            MOVE_EVERY seconds, events going to the alert log only (routes: []);
  outage    the same events, after `understudy config apply` (online, upload only) routed every
            event of every server to the four destinations (the minute starts 5 s after the
            apply; heartbeats late during the apply itself are reported on their own line).

For each minute it prints node1's heartbeats and their lateness p50/p99/max (µs, `clpstat
--json`), how many left more than 10 ms late, the worst lateness of node2 and node3, the
membership incidents in any alert log (nm 2: a server judged down; nm 30: a server that lost
the majority or stalled past its lease and stopped its groups) and the load average; then each destination's counters on
every server (delivered, failed,
retried, dropped, queued, failing), and whether the alert logs hold every event generated in
the outage minute: each clplogcmd line in node1's alert.log, and each accepted move as grp1
online (rc 11) on its target. Retries and timeouts are the defaults (5 attempts, 1 s backoff
doubling to 60 s; mail 30 s, webhook 5 s); the queue is QUEUE alerts per destination (the
default is 1000; a small queue shows dropping). Stops its daemons and listeners by PID / socket.

    scripts/alert-outage-bench.py [--binary .build/release/understudy] [--seconds 60] [--rate 2]
                                  [--move-every 10] [--queue 50]
"""
import argparse, datetime, glob, os, socket, threading, time
from bench_cluster import Cluster

parser = argparse.ArgumentParser()
parser.add_argument("--binary", default=".build/debug/understudy")
parser.add_argument("--seconds", type=int, default=60)
parser.add_argument("--rate", type=float, default=2.0, help="clplogcmd calls a second on node1")
parser.add_argument("--move-every", type=float, default=10.0, help="seconds between moves of grp1")
parser.add_argument("--queue", type=int, default=50, help="alerts queued per destination before the oldest is dropped")
parser.add_argument("--port-base", type=int, default=39500)
args = parser.parse_args()


def closed_port(kind):
    """A loopback port of `kind` (SOCK_STREAM, SOCK_DGRAM) nothing listens on: bound, then closed."""
    probe = socket.socket(socket.AF_INET, kind)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    return port


class SilentListener:
    """Accepts TCP connections on loopback and never sends or reads a byte; counts them."""

    def __init__(self):
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.held, self.accepted, self.stopping = [], 0, False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            try:
                connection, _ = self.socket.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            self.held.append(connection)

    def close(self):
        self.stopping = True
        self.thread.join(timeout=2)
        for connection in self.held:
            connection.close()
        self.socket.close()


smtp_silent, hook_silent = SilentListener(), SilentListener()
smtp_refused, trap_closed = closed_port(socket.SOCK_STREAM), closed_port(socket.SOCK_DGRAM)
destinations = ["mail-refused", "mail-silent", "traps", "hook-silent"]
alerts = f"""alerts:
  destinations:
    - {{name: mail-refused, type: mail, smtp: {{address: 127.0.0.1, port: {smtp_refused}}}, from: cluster@example.com, to: [ops@example.com]}}
    - {{name: mail-silent, type: mail, smtp: {{address: 127.0.0.1, port: {smtp_silent.port}}}, from: cluster@example.com, to: [ops@example.com]}}
    - {{name: traps, type: snmp, managers: ["127.0.0.1:{trap_closed}"]}}
    - {{name: hook-silent, type: webhook, url: "http://127.0.0.1:{hook_silent.port}/hook"}}
  routes: []
  queue: {args.queue}
"""
cluster = Cluster(args.binary, "alertbench", 37, args.port_base, "{tls: false, listen: heartbeat-addresses}", extra=alerts)


def now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def alert_lines(server):
    """Every line of the server's alert log, its rotated generations first."""
    lines = []
    for path in sorted(glob.glob(f"{cluster.folder}/{server}/alert.log.*"), reverse=True) + [f"{cluster.folder}/{server}/alert.log"]:
        if os.path.exists(path):
            with open(path, errors="replace") as f:
                lines += f.read().splitlines()
    return lines


def since(lines, start):
    return [line for line in lines if line[:24] >= start]


def generate(phase):
    """clplogcmd at the rate and grp1 moves for one phase; what was sent and accepted."""
    sent, failed, moves = [], 0, []
    stop = time.monotonic() + args.seconds

    def mover():
        while time.monotonic() + args.move_every <= stop:
            time.sleep(args.move_every)
            current = next((g.get("current") for g in cluster.status("node1")["groups"] if g["name"] == "grp1"), None)
            target = "node1" if current == "node2" else "node2"
            asked = now_iso()
            code, out = cluster.cli("node1", "clpgrp", "-m", "grp1", "-a", target)
            moves.append((target, code, asked))

    thread = threading.Thread(target=mover)
    thread.start()
    start, i = time.monotonic(), 0
    while True:
        due = start + i / args.rate
        if due >= stop:
            break
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        text = f"bench {phase} {i}"
        code, _ = cluster.cli("node1", "clplogcmd", "-m", text)
        if code == 0:
            sent.append(text)
        else:
            failed += 1
        i += 1
    thread.join()
    rest = stop - time.monotonic()
    if rest > 0:
        time.sleep(rest)
    return sent, failed, moves


def runtime(server):
    """Heartbeats of the last minute, lateness p50/p99/max (µs), and the late ones (> 10 ms) as
    (deadline on CLOCK_MONOTONIC in ns, µs late)."""
    r = cluster.status(server)["runtime"]
    late = [(e["deadlineMonotonicNanos"], e["latenessMicros"]) for e in r.get("lateHeartbeats") or []]
    return (r["heartbeats"], r["heartbeatLatenessP50"], r["heartbeatLatenessP99"], r["heartbeatLatenessMax"], late)


def measure(label, start, events):
    lateness = {s: runtime(s) for s in cluster.servers}
    lines = [line for s in cluster.servers for line in since(alert_lines(s), start)]
    # A server judged down (nm 2), or one that stalled past its lease or lost the majority
    # and stopped its groups (nm 30): what late heartbeats cost when they pass the timeout.
    incidents = (sum(1 for line in lines if "[nm 2]" in line), sum(1 for line in lines if "[nm 30]" in line))
    return (label, events, lateness, incidents, os.getloadavg()[0])


rows = []
try:
    cluster.start()
    time.sleep(5)

    start = now_iso()
    time.sleep(args.seconds)
    rows.append(measure("idle", start, "–"))

    start = now_iso()
    sent, failed, moves = generate("events")
    accepted = sum(1 for _, code, _ in moves if code == 0)
    rows.append(measure("events, alert log only", start, f"{len(sent)} + {failed} failed clplogcmd, {accepted}/{len(moves)} moves"))

    with open(f"{cluster.folder}/cluster.yaml") as f:
        proposal = f.read().replace("  routes: []", "  routes:\n    - {match: {}, to: [" + ", ".join(destinations) + "]}")
    with open(f"{cluster.folder}/outage.yaml", "w") as f:
        f.write(proposal)
    applying = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    code, out = cluster.cli("node1", "config", "apply", f"{cluster.folder}/outage.yaml")
    applied = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    if code != 0:
        raise SystemExit(f"config apply failed ({code}): {out}")
    # The routes are in force; nothing is sent to them until the events start. The apply
    # itself stays out of the outage minute and is reported on its own.
    time.sleep(5)
    during_apply = {s: [l for d, l in runtime(s)[4] if applying - 100_000_000 <= d <= applied + 100_000_000] for s in cluster.servers}
    start = now_iso()
    sent, failed, moves = generate("outage")
    accepted = [(target, asked) for target, code, asked in moves if code == 0]
    rows.append(measure("outage: 4 destinations down", start, f"{len(sent)} + {failed} failed clplogcmd, {len(accepted)}/{len(moves)} moves"))
    time.sleep(2)

    # Completeness: every clplogcmd of the outage minute in node1's alert log, every accepted
    # move as grp1 online on its target.
    logged = since(alert_lines("node1"), start)
    missing = [text for text in sent if not any(line.endswith(f"[logcmd 1] {text}") for line in logged)]
    online = {s: [line[:24] for line in since(alert_lines(s), start) if "[rc 11] Group grp1 " in line] for s in cluster.servers}
    requested = [line[:24] for line in logged if "[rc 50] Move of group grp1 " in line]
    # Each accepted move: its request (rc 50) in node1's log and grp1 online (rc 11) on its
    # target, after it was asked and before the next move was.
    asks = [asked for _, asked in accepted] + ["9"]
    unlogged = [target for i, (target, asked) in enumerate(accepted)
                if not any(asked <= t < asks[i + 1] for t in requested) or not any(asked <= t < asks[i + 1] for t in online[target])]
    failing_said = {s: sum(1 for line in alert_lines(s) if "[alert 1]" in line) for s in cluster.servers}
    counters = {s: cluster.status(s).get("alertDestinations") or [] for s in cluster.servers}

    print(f"Binary {args.binary}; {args.seconds} s a minute, clplogcmd {args.rate:g}/s on node1, grp1 moved every "
          f"{args.move_every:g} s, queue {args.queue}\n")
    print("| minute | events | node1 heartbeats | lateness p50 | p99 | max | late > 10 ms | node2 / node3 max | nm 2 / nm 30 | load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, events, lateness, incidents, load in rows:
        beats, p50, p99, worst, late = lateness["node1"]
        others = " / ".join(f"{lateness[s][3]} µs" for s in ("node2", "node3"))
        print(f"| {label} | {events} | {beats} | {p50} µs | {p99} µs | {worst} µs | {len(late)} | {others} "
              f"| {incidents[0]} / {incidents[1]} | {load:.2f} |")
    print(f"\n`config apply` of the routes took {(applied - applying) / 1e6:.0f} ms; heartbeats more than 10 ms late during it: "
          + ", ".join(f"{s} {len(during_apply[s])}" + (f" (worst {max(during_apply[s])} µs)" if during_apply[s] else "") for s in cluster.servers) + ".")
    print("\n| server | destination | delivered | failed | retried | dropped | queued | state | last error |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in cluster.servers:
        for d in counters[s]:
            state = "failing" if d.get("failing") else "working"
            print(f"| {s} | {d['name']} ({d['type']}) | {d['delivered']} | {d['failed']} | {d['retried']} | {d['dropped']} "
                  f"| {d['queued']} | {state} | {(d.get('lastError') or '').replace('|', '/')} |")
    print(f"\nConnections accepted and never answered: SMTP {smtp_silent.accepted}, webhook {hook_silent.accepted}.")
    print(f"Alert log, outage minute: {len(sent) - len(missing)} of {len(sent)} clplogcmd events in node1's alert.log"
          + (f" (missing: {', '.join(missing[:5])})" if missing else "")
          + f"; {len(accepted) - len(unlogged)} of {len(accepted)} accepted moves with their request (rc 50) and grp1 online"
          + " (rc 11) on the target; grp1 online lines: " + ", ".join(f"{len(online[s])} on {s}" for s in cluster.servers) + "."
          + f" 'alert 1' (destination failing) lines: " + ", ".join(f"{failing_said[s]} on {s}" for s in cluster.servers) + ".")
finally:
    cluster.stop()
    smtp_silent.close()
    hook_silent.close()
