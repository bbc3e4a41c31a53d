#!/usr/bin/env python3
"""Scrape latency of GET /metrics, and heartbeat lateness idle and while scraped every second.

Starts three daemons on 127.0.0.34-36 with the fast profile (20 ms / 100 ms) and the web
server on plain HTTP, measures one idle minute, then one minute with GET /metrics every
INTERVAL seconds from each of SCRAPERS clients (HTTP Basic, a new connection per scrape, as
Prometheus does after idle timeouts) against the first server, and prints scrape latency
(p50/p99/max), the size of a scrape, and the first server's heartbeat lateness (p50/p99/max,
from `clpstat --json`, which covers the last minute) and the machine's load average for both
minutes. Stops its daemons by PID. --anonymous scrapes without credentials (from an address of
web.metrics.unauthenticated-from), leaving out the password check of each new connection.

    scripts/metrics-bench.py [--binary .build/release/understudy] [--interval 1] [--scrapers 1] [--seconds 60] [--anonymous]
"""
import argparse, base64, http.client, os, threading, time
from bench_cluster import Cluster, pct

parser = argparse.ArgumentParser()
parser.add_argument("--binary", default=".build/debug/understudy")
parser.add_argument("--interval", type=float, default=1.0)
parser.add_argument("--scrapers", type=int, default=1)
parser.add_argument("--seconds", type=int, default=60)
parser.add_argument("--port-base", type=int, default=39400)
parser.add_argument("--anonymous", action="store_true", help="scrape without credentials (web.metrics.unauthenticated-from)")
args = parser.parse_args()
web = "{tls: false, listen: heartbeat-addresses" + (", metrics: {unauthenticated-from: [127.0.0.0/8]}" if args.anonymous else "") + "}"
cluster = Cluster(args.binary, "metricsbench", 34, args.port_base, web)
binary, folder, address, http_port, password = cluster.binary, cluster.folder, cluster.address, cluster.http_port, cluster.password
try:
    cluster.start()
    time.sleep(5)

    time.sleep(args.seconds)
    idle = cluster.runtime()
    idle_load = os.getloadavg()[0]
    auth = "Basic " + base64.b64encode(f"bench:{password}".encode()).decode()
    latencies, sizes, errors = [], [], [0]
    lock = threading.Lock()

    def scraper(offset):
        start = time.monotonic() + offset
        for i in range(int(args.seconds / args.interval)):
            delay = start + i * args.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t0 = time.monotonic()
            try:
                conn = http.client.HTTPConnection(address["node1"], http_port, timeout=10)
                conn.request("GET", "/metrics", headers={} if args.anonymous else {"Authorization": auth})
                response = conn.getresponse()
                body = response.read()
                conn.close()
                with lock:
                    if response.status != 200:
                        errors[0] += 1
                    latencies.append((time.monotonic() - t0) * 1000)
                    sizes.append(len(body))
            except Exception:
                with lock:
                    errors[0] += 1

    threads = [threading.Thread(target=scraper, args=(n * args.interval / args.scrapers,)) for n in range(args.scrapers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    loaded = cluster.runtime()
    loaded_load = os.getloadavg()[0]
    rate = f"{args.scrapers} scraper(s) every {args.interval:g} s" + (" (no credentials)" if args.anonymous else " (HTTP Basic)")
    print("| minute | scrapes | scrape p50 | p99 | max | bytes | heartbeats | lateness p50 | p99 | max | load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print(f"| idle | – | – | – | – | – | {idle[0]} | {idle[1]} µs | {idle[2]} µs | {idle[3]} µs | {idle_load:.2f} |")
    print(f"| {rate} | {len(latencies)} ({errors[0]} errors) | {pct(latencies, 0.5):.2f} ms | {pct(latencies, 0.99):.2f} ms "
          f"| {max(latencies):.2f} ms | {max(sizes) if sizes else 0} | {loaded[0]} | {loaded[1]} µs | {loaded[2]} µs | {loaded[3]} µs "
          f"| {loaded_load:.2f} |")
finally:
    cluster.stop()
