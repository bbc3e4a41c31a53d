#!/usr/bin/python3
"""From a killed server to the failover in every alert destination and in Prometheus.

Starts three daemons on 127.0.0.41-43 with the fast profile (heartbeats every 20 ms, a peer
down after 100 ms), grp1 (one exec resource) on node1, and five receivers on 127.0.0.1, each
taking the wall-clock time (time.time()) an alert arrives:

  syslog    a UDP socket, the remote syslog of a `syslog` destination (no local socket); each
            datagram parsed as RFC 5424 (HOSTNAME is the server, MSGID `module-id`)
  mail      a real SMTP server (aiosmtpd, Debian python3-aiosmtpd, as scripts/smtp_test_server.py)
            of a `mail` destination, plain SMTP; the time is when DATA ends; the subject
            (`[understudy] CLUSTER SERVER LEVEL MODULE ID: …`) says what it is
  snmp      a UDP socket, the manager of an `snmp` destination (SNMPv2c); the trap's BER is
            decoded for understudyAlertServer, -Module and -EventID
  webhook   an HTTP server of a `webhook` destination; the time is when the POST's body is read
  metrics   GET /metrics of node2 and node3 every SCRAPE seconds (0.05), without credentials
            (web.metrics.unauthenticated-from), as a Prometheus would; the time is when the
            answer is read

ROUTE says which events go to the four destinations: `all` (default: `{match: {}}`, every
event, as an administrator pointing Understudy at them would) or `failover` (only nm 2 and
rc 11). Then ROUNDS times: wait until grp1 is online on node1, all three servers up, every
destination's queue empty, a second more, and PERIOD seconds (7) since the previous kill (the
alert log writes a line that repeats at most 10 times a minute, docs/operations.md#files,
and what it leaves out is routed nowhere); kill -9 node1's daemon (the holder, and the
master) and note the instant; wait until every receiver has (a) `nm 2` (the server down, from
node2 or node3, whichever arrives first) and (b) `rc 11` from node2 (grp1 online on the new
holder), at most WAIT seconds; restart node1, and, once the cluster hears it, stop grp1 and
start it on node1 (an operator start: a server killed does not take groups on its own until
one, docs/operations.md#abnormal-stop).

For each receiver and event it prints p50/p90/max of the time *from the kill*, and *after the
event* (the arrival minus the event's own time stamp in the alert log of the server that
wrote it, i.e. the delivery alone: for rc 11 that is after the failover itself). The first two
lines are the alert logs themselves: when the events were written, from the kill (the heartbeat
timeout is a floor of both). Metrics show an event when a scrape of node2 or node3 (for rc 11:
node2) says node1 down (understudy_server_up{server="node1"} 0) / grp1 online on node2
(understudy_group_state{group="grp1",server="node2",state="online"} 1). Prints the load
average before and after. Stops its daemons and receivers by PID / socket.

    scripts/alert-latency-bench.py [--binary .build/debug/understudy] [--rounds 20]
                                   [--route all|failover] [--scrape 0.05] [--wait 10] [--period 7]
"""
import argparse, datetime, http.client, http.server, json, os, re, socket, threading, time
from email import message_from_bytes
from email.header import decode_header, make_header
from bench_cluster import Cluster, pct, wait_until

parser = argparse.ArgumentParser()
parser.add_argument("--binary", default=".build/debug/understudy")
parser.add_argument("--rounds", type=int, default=20)
parser.add_argument("--route", choices=["all", "failover"], default="all")
parser.add_argument("--scrape", type=float, default=0.05, help="seconds between scrapes of each survivor")
parser.add_argument("--wait", type=float, default=10.0, help="seconds a round waits for every receiver")
parser.add_argument("--period", type=float, default=7.0,
                    help="seconds at least between two kills: the alert log writes a line that repeats at most 10 times a minute")
parser.add_argument("--port-base", type=int, default=39600)
args = parser.parse_args()

RECEIVERS = ["syslog", "mail", "snmp", "webhook", "metrics"]
EVENTS = [("nm", 2), ("rc", 11)]
arrivals = []  # (wall-clock arrival, receiver, server, module, id)
arrivals_lock = threading.Lock()
# The alert log's rate limiter sums up what it left out under the same event id; such a
# summary is not the event (--period keeps the rounds under the limit).
SUMMARY = "more messages like this were left out"


def arrived(receiver, server, module, event_id, at=None):
    with arrivals_lock:
        arrivals.append((at if at is not None else time.time(), receiver, server, module, int(event_id)))


class UDPReceiver:
    """A UDP socket on 127.0.0.1 whose thread timestamps each datagram and hands it to `parse`
    (bytes → (server, module, id) or None)."""

    def __init__(self, name, parse):
        self.name, self.parse, self.stopping, self.bad = name, parse, False, 0
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            try:
                data = self.socket.recv(65535)
            except (socket.timeout, OSError):
                continue
            at = time.time()
            if SUMMARY.encode() in data:
                continue
            try:
                server, module, event_id = self.parse(data)
                arrived(self.name, server, module, event_id, at)
            except Exception:
                self.bad += 1

    def close(self):
        self.stopping = True
        self.thread.join(timeout=2)
        self.socket.close()


SYSLOG = re.compile(rb"^<(\d+)>1 (\S+) (\S+) (\S+) (\S+) (\S+) ")


def parse_syslog(data):
    """RFC 5424: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG."""
    match = SYSLOG.match(data)
    if not match:
        raise ValueError("not RFC 5424")
    module, event_id = match.group(6).decode().rsplit("-", 1)
    return match.group(3).decode(), module, int(event_id)


def ber(data, i):
    """(tag, value bytes, next index) of the BER TLV at i."""
    tag, length = data[i], data[i + 1]
    i += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(data[i:i + count], "big")
        i += count
    return tag, data[i:i + length], i + length


def oid(value):
    arcs, n = [], 0
    for byte in value:
        n = (n << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(n)
            n = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first] + arcs[1:]))


def varbinds(data, found):
    """Every SEQUENCE { OID, value } under `data` (constructed tags walked), into found."""
    i = 0
    while i < len(data):
        tag, value, i = ber(data, i)
        if tag & 0x20:
            children, j = [], 0
            while j < len(value):
                child_tag, child_value, j = ber(value, j)
                children.append((child_tag, child_value))
            if tag == 0x30 and len(children) == 2 and children[0][0] == 0x06:
                found[oid(children[0][1])] = children[1]
            else:
                varbinds(value, found)
    return found


OBJECTS = "1.3.6.1.4.1.32473.17.1."


def parse_trap(data):
    """SNMPv2c trap: understudyAlertServer.0, -Module.0, -EventID.0 (docs/UNDERSTUDY-MIB.txt)."""
    found = varbinds(data, {})
    server, module = found[OBJECTS + "2.0"][1].decode(), found[OBJECTS + "3.0"][1].decode()
    return server, module, int.from_bytes(found[OBJECTS + "4.0"][1], "big")


class Webhook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        at = time.time()
        alert = json.loads(body)
        if SUMMARY not in alert["message"]:
            arrived("webhook", alert["server"], alert["module"], alert["id"], at)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *arguments):
        pass


class Outbox:
    """aiosmtpd handler: each message timestamped when DATA ends, its subject parsed."""
    SUBJECT = re.compile(r"^\[understudy\] (\S+) (\S+) (\S+) (\S+) (\d+):")

    def __init__(self):
        self.bad = 0

    async def handle_DATA(self, server, session, envelope):
        at = time.time()
        subject = str(make_header(decode_header(message_from_bytes(envelope.original_content)["Subject"] or "")))
        match = self.SUBJECT.match(subject)
        if SUMMARY in subject:
            pass
        elif match:
            arrived("mail", match.group(2), match.group(4), match.group(5), at)
        else:
            self.bad += 1
        return "250 2.0.0 stored"


def metrics_state(text):
    """(node1 up?, grp1 online on node2?) from a /metrics answer."""
    node1_up = grp1_on_node2 = None
    for line in text.splitlines():
        if line.startswith("understudy_server_up{") and 'server="node1"' in line:
            node1_up = float(line.rsplit(" ", 1)[1]) == 1
        elif (line.startswith("understudy_group_state{") and 'group="grp1"' in line and 'server="node2"' in line
              and 'state="online"' in line):
            grp1_on_node2 = float(line.rsplit(" ", 1)[1]) == 1
    return node1_up, grp1_on_node2


class Scraper:
    """GET /metrics of one server every `interval` seconds (a new connection each, as
    Prometheus after its idle timeout); each transition of the two series is an arrival."""

    def __init__(self, server, address, port, interval):
        self.server, self.address, self.port, self.interval = server, address, port, interval
        self.stopping, self.scrapes, self.errors, self.latencies = False, 0, 0, []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        down_before = online_before = False
        next_at = time.monotonic()
        while not self.stopping:
            next_at += self.interval
            t0 = time.monotonic()
            try:
                connection = http.client.HTTPConnection(self.address, self.port, timeout=2)
                connection.request("GET", "/metrics")
                response = connection.getresponse()
                body = response.read().decode()
                connection.close()
                at = time.time()
                self.latencies.append(time.monotonic() - t0)
                self.scrapes += 1
                if response.status != 200:
                    self.errors += 1
                else:
                    node1_up, online = metrics_state(body)
                    down, online = node1_up is False, bool(online) and node1_up is False
                    if down and not down_before:
                        arrived("metrics", self.server, "nm", 2, at)
                    if online and not online_before:
                        arrived("metrics", self.server, "rc", 11, at)
                    down_before, online_before = down, online
            except Exception:
                self.errors += 1
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_at = time.monotonic()

    def close(self):
        self.stopping = True
        self.thread.join(timeout=5)


def alert_times(cluster, server, module, event_id, after):
    """Wall-clock times (from the alert log's time stamps, ms) of `[module id]` lines of
    `server`'s alert.log written at or after `after` (less 5 ms: the stamp is cut to ms)."""
    times = []
    path = f"{cluster.folder}/{server}/alert.log"
    if not os.path.exists(path):
        return times
    with open(path, errors="replace") as f:
        for line in f:
            # Not the rate limiter's summary of lines it left out (docs/operations.md#files).
            if f" [{module} {event_id}] " not in line or SUMMARY in line:
                continue
            stamp = datetime.datetime.strptime(line[:24], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
            if stamp.timestamp() >= after - 0.005:
                times.append(stamp.timestamp())
    return times


def wait_for(condition, limit, what):
    try:
        wait_until(what, condition, limit, interval=0.1)
    except RuntimeError as error:
        raise SystemExit(str(error))


syslog_receiver = UDPReceiver("syslog", parse_syslog)
trap_receiver = UDPReceiver("snmp", parse_trap)
webhook_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Webhook)
webhook_thread = threading.Thread(target=webhook_server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
webhook_thread.start()
from aiosmtpd.controller import Controller  # noqa: E402 (Debian python3-aiosmtpd; after the argument check)
outbox = Outbox()
smtp_probe = socket.socket()
smtp_probe.bind(("127.0.0.1", 0))
smtp_port = smtp_probe.getsockname()[1]
smtp_probe.close()
smtp = Controller(outbox, hostname="127.0.0.1", port=smtp_port, ready_timeout=10)
smtp.start()

destinations = ["syslog", "mail", "snmp", "webhook"]
to = "[" + ", ".join(destinations) + "]"
routes = (f"    - {{match: {{}}, to: {to}}}\n" if args.route == "all" else
          f"    - {{match: {{module: nm, id: 2}}, to: {to}}}\n    - {{match: {{module: rc, id: 11}}, to: {to}}}\n")
alerts = f"""alerts:
  destinations:
    - {{name: syslog, type: syslog, socket: null, journal-socket: null, remote: {{address: 127.0.0.1, port: {syslog_receiver.port}, protocol: udp}}}}
    - {{name: mail, type: mail, smtp: {{address: 127.0.0.1, port: {smtp_port}, security: none}}, from: cluster@example.com, to: [ops@example.com]}}
    - {{name: snmp, type: snmp, managers: ["127.0.0.1:{trap_receiver.port}"]}}
    - {{name: webhook, type: webhook, url: "http://127.0.0.1:{webhook_server.server_address[1]}/hook"}}
  routes:
{routes}"""
web = "{tls: false, listen: heartbeat-addresses, metrics: {unauthenticated-from: [127.0.0.0/8]}}"
cluster = Cluster(args.binary, "latencybench", 41, args.port_base, web, extra=alerts)
scrapers = []


def settled():
    """grp1 online on node1, every server up as node2 sees it, and no alert queued anywhere."""
    status = cluster.status("node2")
    group = next(g for g in status["groups"] if g["name"] == "grp1")
    if group.get("current") != "node1" or str(group.get("status")).lower() != "online":
        return False
    if not all(str(s["status"]).lower() in ("online", "caution") for s in status["servers"]):
        return False
    for server in cluster.servers:
        lines = cluster.status(server).get("alertDestinations") or []
        if any(line["queued"] or line.get("failing") for line in lines):
            return False
    return True


rounds = []  # per round: {"kill": t, "log": {event: (server, time)}, receiver: {event: (server, time)}}
load_before = os.getloadavg()
try:
    cluster.start()
    wait_for(settled, 60, "grp1 online on node1 and the cluster settled")
    scrapers = [Scraper(s, cluster.address[s], cluster.http_port, args.scrape) for s in ("node2", "node3")]
    time.sleep(1)
    previous = None
    for n in range(args.rounds):
        wait_for(settled, 60, f"the cluster to settle before round {n + 1}")
        time.sleep(1)
        if previous is not None and time.monotonic() - previous < args.period:
            time.sleep(args.period - (time.monotonic() - previous))
        previous = time.monotonic()
        killed = cluster.kill9("node1")

        def seen():
            with arrivals_lock:
                got = {(r, m, i) for t, r, s, m, i in arrivals if t >= killed and (s == "node2" or (m, i) != ("rc", 11))}
            return all((r, m, i) in got for r in RECEIVERS for m, i in EVENTS)

        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline and not seen():
            time.sleep(0.05)
        time.sleep(0.2)
        record = {"kill": killed, "log": {}}
        for m, i in EVENTS:
            writers = ["node2"] if (m, i) == ("rc", 11) else ["node2", "node3"]
            record["log"][(m, i)] = {s: min(ts) for s in writers if (ts := alert_times(cluster, s, m, i, killed))}
        with arrivals_lock:
            mine = [a for a in arrivals if a[0] >= killed]
        for r in RECEIVERS:
            record[r] = {}
            for m, i in EVENTS:
                hits = sorted((t, s) for t, rr, s, mm, ii in mine if rr == r and (mm, ii) == (m, i)
                              and (s == "node2" or (m, i) != ("rc", 11)))
                if hits:
                    record[r][(m, i)] = hits[0][::-1]
        rounds.append(record)
        print(f"round {n + 1}: failover {1000 * (record['log'][('rc', 11)].get('node2', float('nan')) - killed):.0f} ms; "
              + ", ".join(f"{r} " + "/".join(f"{1000 * (record[r][e][1] - killed):.0f}" if e in record[r] else "–" for e in EVENTS)
                          for r in RECEIVERS) + " ms (nm 2 / rc 11 from the kill)", flush=True)

        cluster.restart("node1")
        wait_for(lambda: next(s for s in cluster.status("node2")["servers"] if s["name"] == "node1")["status"].lower()
                   in ("online", "caution"), 60, "node2 to hear node1 again")
        # The restarted node1 comes back as master (first in `servers:`); until the servers
        # agree on it, group commands are refused: tried again for at most 30 s each.
        for command in (["clpgrp", "-t", "grp1"], ["clpgrp", "-s", "grp1", "-h", "node1"]):
            deadline = time.monotonic() + 30
            while True:
                code, out = cluster.cli("node2", *command)
                if code == 0:
                    break
                if time.monotonic() > deadline:
                    raise SystemExit(f"{' '.join(command)} failed ({code}): {out}")
                time.sleep(0.5)
finally:
    for scraper in scrapers:
        scraper.close()
    cluster.stop()
    syslog_receiver.close()
    trap_receiver.close()
    webhook_server.shutdown()
    webhook_server.server_close()
    smtp.stop()
load_after = os.getloadavg()


def ms(values):
    if not values:
        return "– | – | –"
    return " | ".join(f"{1000 * v:.0f} ms" for v in (pct(values, 0.5), pct(values, 0.9), max(values)))


print(f"\nBinary {args.binary}; {len(rounds)} rounds; heartbeat interval 20 ms, timeout 100 ms; routes: {args.route}; "
      f"scrapes every {1000 * args.scrape:.0f} ms; load average before {load_before[0]:.2f} / {load_before[1]:.2f}, "
      f"after {load_after[0]:.2f} / {load_after[1]:.2f} (1 / 5 min); {os.cpu_count()} CPUs\n")
print("| where | event | got | from the kill p50 | p90 | max | after the event's alert-log time p50 | p90 | max |")
print("|---|---|---|---|---|---|---|---|---|")
names = {("nm", 2): "nm 2 (node1 down)", ("rc", 11): "rc 11 (grp1 online on node2)"}
for m, i in EVENTS:
    logged = [min(r["log"][(m, i)].values()) - r["kill"] for r in rounds if r["log"][(m, i)]]
    print(f"| alert log | {names[(m, i)]} | {len(logged)}/{len(rounds)} | {ms(logged)} | – | – | – |")
for receiver in RECEIVERS:
    for m, i in EVENTS:
        from_kill, after = [], []
        for r in rounds:
            if (m, i) not in r[receiver]:
                continue
            server, at = r[receiver][(m, i)]
            from_kill.append(at - r["kill"])
            # After the event: against the alert-log stamp of the server whose copy arrived
            # first; a scrape of a server that did not write the event (only the master writes
            # nm 2) against the first server that did.
            written = r["log"][(m, i)]
            stamp = written.get(server, min(written.values()) if written else None)
            if stamp is not None:
                after.append(at - stamp)
        got = f"{len(from_kill)}/{len(rounds)}" + (f" ({len(after)} with a time stamp)" if len(after) != len(from_kill) else "")
        print(f"| {receiver} | {names[(m, i)]} | {got} | {ms(from_kill)} | {ms(after)} |")
print(f"\nUnparsed: syslog {syslog_receiver.bad}, snmp {trap_receiver.bad}, mail {outbox.bad}; scrapes "
      + ", ".join(f"{s.server} {s.scrapes} ({s.errors} errors, p50 {1000 * pct(s.latencies, 0.5):.1f} ms, "
                  f"max {1000 * max(s.latencies):.1f} ms)" for s in scrapers if s.latencies) + ".")
