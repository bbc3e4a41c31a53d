#!/usr/bin/env python3
"""Idle CPU of the daemon: two servers on loopback (127.0.91.1-2), ten groups (one exec
resource each, five placed on each server), no monitors unless --monitors, no web server; once every group is
Online the daemons are left alone for SECONDS and each one's CPU time (utime + stime, all
threads, from /proc/PID/stat), its wake-ups (context switches of all its threads, from
/proc/PID/task/*/status) and its resident memory are read before and after. Prints CPU
seconds per minute and wake-ups per second per daemon, and the machine's load, so that a
reader can tell a busy machine from a costly daemon. Stops its daemons by PID.

    scripts/idle-cpu-bench.py [--binary .build/release/understudy] [--profile fast|default]
                              [--groups 10] [--monitors 0] [--monitor-interval 1s]
                              [--seconds 60] [--keep]

`fast` is 20 ms / 100 ms (a tick every 5 ms), `default` the configuration's defaults (3 s /
90 s). With --keep the folder (configuration, logs, state) stays and the daemons keep running
until Enter is pressed (for `perf record -p PID`).
"""
import argparse, json, os, shutil, signal, subprocess, sys, tempfile, time

parser = argparse.ArgumentParser()
parser.add_argument("--binary", default=".build/release/understudy")
parser.add_argument("--profile", choices=["fast", "default"], default="fast")
parser.add_argument("--groups", type=int, default=10)
parser.add_argument("--monitors", type=int, default=0, help="miiw monitors of lo on each server, every --monitor-interval")
parser.add_argument("--monitor-interval", default="1s")
parser.add_argument("--seconds", type=int, default=60)
parser.add_argument("--port-base", type=int, default=39910)
parser.add_argument("--keep", action="store_true")
args = parser.parse_args()

binary = os.path.abspath(args.binary)
servers = ["node1", "node2"]
address = {"node1": "127.0.91.1", "node2": "127.0.91.2"}
folder = tempfile.mkdtemp(prefix="understudy-idlecpu-")
timing = ("timing: {heartbeat-interval: 20ms, heartbeat-timeout: 100ms, sync-wait: 2s}" if args.profile == "fast"
          else "timing: {sync-wait: 10s}")
groups = "\n".join(f"""  - name: grp{i}
    servers: [{servers[i % 2]}, {servers[(i + 1) % 2]}]
    resources:
      - {{name: app{i}, type: exec, start: /bin/true, stop: /bin/true}}""" for i in range(1, args.groups + 1))
monitors = "" if args.monitors == 0 else "monitors:\n" + "\n".join(f"""  - name: miiw{i}
    type: miiw
    interface: lo
    interval: {args.monitor_interval}
    timeout: 5s
    recovery: {{target: local-server, final-action: none}}""" for i in range(1, args.monitors + 1))
with open(f"{folder}/cluster.yaml", "w") as f:
    f.write(f"""cluster:
  name: idlecpu
  secret-file: cluster.key
  {timing}
  network-partition: {{action: none}}
  ports: {{control: {args.port_base + 1}, heartbeat: {args.port_base + 2}, http: {args.port_base + 3}}}
  os-commands: {{shutdown: [/bin/true], reboot: [/bin/true]}}
servers: [{", ".join(servers)}]
heartbeats:
  - name: lanhb1
    type: lanhb
    addresses: {{{", ".join(f"{s}: {a}" for s, a in address.items())}}}
groups:
{groups}
{monitors}
""")
subprocess.run([binary, "keygen", f"{folder}/cluster.key"], check=True, stdout=subprocess.DEVNULL)


def usage(pid):
    """(CPU seconds, context switches of all threads, RSS MiB) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    switches = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
        except FileNotFoundError:
            pass
    rss = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return cpu, switches, rss


def status(server):
    out = subprocess.run([binary, "clpstat", "--json", "--local", "--state-dir", f"{folder}/{server}"],
                         capture_output=True, text=True, timeout=20).stdout
    return json.loads(out)


daemons = {}
failed = True
try:
    for s in servers:
        log = open(f"{folder}/{s}.log", "w")
        daemons[s] = subprocess.Popen([binary, "daemon", "--config", f"{folder}/cluster.yaml", "--server", s,
                                       "--state-dir", f"{folder}/{s}"], stdout=log, stderr=log)
    deadline = time.monotonic() + 120
    while True:
        try:
            groups_state = status("node1")["groups"]
            if len(groups_state) == args.groups and all(g.get("status") == "Online" for g in groups_state):
                break
        except Exception:
            pass
        if time.monotonic() > deadline:
            sys.exit(f"groups not all Online within 120 s; see {folder}")
        time.sleep(0.5)
    time.sleep(3)
    load_before = os.getloadavg()[0]
    before = {s: usage(d.pid) for s, d in daemons.items()}
    started = time.monotonic()
    time.sleep(args.seconds)
    elapsed = time.monotonic() - started
    after = {s: usage(d.pid) for s, d in daemons.items()}
    print(f"profile {args.profile}, {args.groups} groups, {args.monitors} monitors, {elapsed:.0f} s, load average {load_before:.2f} -> {os.getloadavg()[0]:.2f}")
    for s in servers:
        cpu = (after[s][0] - before[s][0]) / elapsed * 60
        wakeups = (after[s][1] - before[s][1]) / elapsed
        print(f"{s} (pid {daemons[s].pid}): {cpu:.3f} CPU s/min ({cpu / 60 * 100:.2f} % of a core), "
              f"{wakeups:.0f} context switches/s, RSS {after[s][2]:.1f} MiB")
    failed = False
    if args.keep:
        input(f"daemons still running in {folder}; Enter stops them ")
finally:
    for d in daemons.values():
        d.send_signal(signal.SIGTERM)
    for d in daemons.values():
        try:
            d.wait(timeout=30)
        except subprocess.TimeoutExpired:
            d.kill()
            d.wait()
    if not args.keep and not failed:
        shutil.rmtree(folder, ignore_errors=True)
