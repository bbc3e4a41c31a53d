#!/usr/bin/env python3
"""API latency at a steady request rate, and heartbeat lateness with and without it.

Starts three daemons on 127.0.0.31-33 with the fast profile (20 ms / 100 ms) and the web
server on plain HTTP, measures one idle minute, then one minute of GET /api/v1/groups at
RATE requests/s (HTTP Basic, one keep-alive connection) against the first server, and prints
API latency (p50/p99/max) and the first server's heartbeat lateness (p50/p99/max, from
`clpstat --json`, which covers the last minute) for both minutes. Stops its daemons by PID.

    scripts/api-bench.py [--binary .build/release/understudy] [--rate 100] [--seconds 60]
"""
import argparse, base64, http.client, json, os, signal, subprocess, sys, tempfile, time

parser = argparse.ArgumentParser()
parser.add_argument("--binary", default=".build/debug/understudy")
parser.add_argument("--rate", type=int, default=100)
parser.add_argument("--seconds", type=int, default=60)
parser.add_argument("--port-base", type=int, default=39300)
args = parser.parse_args()
binary = os.path.abspath(args.binary)
folder = tempfile.mkdtemp(prefix="understudy-api-bench-")
servers = ["node1", "node2", "node3"]
address = {s: f"127.0.0.{31 + i}" for i, s in enumerate(servers)}
http_port = args.port_base + 3
password = "bench-Pa55word"
with open(f"{folder}/cluster.yaml", "w") as f:
    f.write(f"""cluster:
  name: apibench
  secret-file: cluster.key
  timing: {{heartbeat-interval: 20ms, heartbeat-timeout: 100ms, sync-wait: 2s}}
  network-partition: {{action: none}}
  ports: {{control: {args.port_base + 1}, heartbeat: {args.port_base + 2}, http: {http_port}}}
  web: {{tls: false, listen: heartbeat-addresses}}
  os-commands: {{shutdown: [/bin/true], reboot: [/bin/true]}}
servers: [{", ".join(servers)}]
heartbeats:
  - name: lanhb1
    type: lanhb
    addresses: {{{", ".join(f"{s}: {a}" for s, a in address.items())}}}
network-partition:
  - {{name: majority1, type: majority}}
groups:
  - name: grp1
    resources:
      - {{name: app, type: exec, start: /bin/true, stop: /bin/true}}
""")
subprocess.run([binary, "keygen", f"{folder}/cluster.key"], check=True, stdout=subprocess.DEVNULL)
subprocess.run([binary, "user", "add", "bench", "--role", "viewer", "--config", f"{folder}/cluster.yaml"],
               input=password + "\n", text=True, check=True, stdout=subprocess.DEVNULL)
daemons = []
try:
    for s in servers:
        log = open(f"{folder}/{s}.log", "w")
        daemons.append(subprocess.Popen([binary, "daemon", "--config", f"{folder}/cluster.yaml", "--server", s,
                                         "--state-dir", f"{folder}/{s}"], stdout=log, stderr=log))
    time.sleep(5)

    def runtime():
        out = subprocess.run([binary, "clpstat", "--json", "--local", "--state-dir", f"{folder}/node1"],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out)["runtime"]
        return (r["heartbeats"], r["heartbeatLatenessP50"], r["heartbeatLatenessP99"], r["heartbeatLatenessMax"])

    def pct(values, p):
        values = sorted(values)
        return values[min(len(values) - 1, int(len(values) * p))]

    time.sleep(args.seconds)
    idle = runtime()
    auth = "Basic " + base64.b64encode(f"bench:{password}".encode()).decode()
    conn = http.client.HTTPConnection(address["node1"], http_port, timeout=10)
    latencies, errors = [], 0
    start = time.monotonic()
    total = args.rate * args.seconds
    for i in range(total):
        due = start + i / args.rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        t0 = time.monotonic()
        try:
            conn.request("GET", "/api/v1/groups", headers={"Authorization": auth})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors += 1
        except Exception:
            errors += 1
            conn = http.client.HTTPConnection(address["node1"], http_port, timeout=10)
        latencies.append((time.monotonic() - t0) * 1000)
    loaded = runtime()
    print(f"| minute | API requests | API p50 | API p99 | API max | heartbeats | lateness p50 | p99 | max |")
    print(f"|---|---|---|---|---|---|---|---|---|")
    print(f"| idle | – | – | – | – | {idle[0]} | {idle[1]} µs | {idle[2]} µs | {idle[3]} µs |")
    print(f"| {args.rate} req/s | {len(latencies)} ({errors} errors) | {pct(latencies, 0.5):.2f} ms | {pct(latencies, 0.99):.2f} ms "
          f"| {max(latencies):.2f} ms | {loaded[0]} | {loaded[1]} µs | {loaded[2]} µs | {loaded[3]} µs |")
finally:
    for d in daemons:
        d.send_signal(signal.SIGTERM)
    for d in daemons:
        try:
            d.wait(timeout=20)
        except subprocess.TimeoutExpired:
            d.kill()
