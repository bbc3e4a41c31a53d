#!/usr/bin/env python3
"""API latency at a steady request rate, and heartbeat lateness with and without it.

Starts three daemons on 127.0.0.31-33 with the fast profile (20 ms / 100 ms) and the web
server on plain HTTP, measures one idle minute, then one minute of GET /api/v1/groups at
RATE requests/s (HTTP Basic, one keep-alive connection) against the first server, and prints
API latency (p50/p99/max) and the first server's heartbeat lateness (p50/p99/max, from
`clpstat --json`, which covers the last minute) for both minutes. Stops its daemons by PID.

    scripts/api-bench.py [--binary .build/release/understudy] [--rate 100] [--seconds 60]
"""
import argparse, base64, http.client, json, os, subprocess, sys, time
from bench_cluster import Cluster, pct

parser = argparse.ArgumentParser()
parser.add_argument("--binary", default=".build/debug/understudy")
parser.add_argument("--rate", type=int, default=100)
parser.add_argument("--seconds", type=int, default=60)
parser.add_argument("--port-base", type=int, default=39300)
args = parser.parse_args()
cluster = Cluster(args.binary, "apibench", 31, args.port_base, "{tls: false, listen: heartbeat-addresses}")
binary, folder, address, http_port, password = cluster.binary, cluster.folder, cluster.address, cluster.http_port, cluster.password
try:
    cluster.start()
    time.sleep(5)

    time.sleep(args.seconds)
    idle = cluster.runtime()
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
    loaded = cluster.runtime()
    print(f"| minute | API requests | API p50 | API p99 | API max | heartbeats | lateness p50 | p99 | max |")
    print(f"|---|---|---|---|---|---|---|---|---|")
    print(f"| idle | – | – | – | – | {idle[0]} | {idle[1]} µs | {idle[2]} µs | {idle[3]} µs |")
    print(f"| {args.rate} req/s | {len(latencies)} ({errors} errors) | {pct(latencies, 0.5):.2f} ms | {pct(latencies, 0.99):.2f} ms "
          f"| {max(latencies):.2f} ms | {loaded[0]} | {loaded[1]} µs | {loaded[2]} µs | {loaded[3]} µs |")
finally:
    cluster.stop()
