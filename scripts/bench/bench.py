#!/usr/bin/env python3
"""Helpers of scripts/benchmark.sh (standard library only).

  probe        trigger an event (kill -9 a pid, or run a command) and probe the service
               every INTERVAL until it answers with a name other than --old
  wait-stable  poll `understudy clpstat --json --local` on every server until the cluster
               is settled with the group online on the expected server
  footprint    sample VmRSS and utime+stime of some pids over a window
  summarize    min / median / max of the CSV files, as a Markdown table

Every loop here is bounded by a deadline.
"""

import argparse
import csv
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time


def now_ns():
    # CLOCK_REALTIME, the same clock as `date +%s%N` in the benchmark's scripts.
    return time.time_ns()


# ---------------------------------------------------------------- HTTP

def ask(host, port, timeout):
    """One HTTP request; returns the body stripped, or None (refused, timeout, garbage)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            conn.sendall(b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n")
            data = b""
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and len(data) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep or not head.startswith(b"HTTP/1.1 200"):
        return None
    return body.decode("utf-8", "replace").strip() or None


def cmd_probe(args):
    interval = args.interval
    result = {"probes": 0, "refused_or_failed": 0, "old_answers": 0}
    child = None
    t0 = now_ns()
    if args.kill:
        os.kill(args.kill, signal.SIGKILL)
    else:
        child = subprocess.Popen(args.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    result["t0_ns"] = t0
    start_mono = time.monotonic()
    deadline = start_mono + args.timeout
    tick = 0
    answer_ns = None
    while time.monotonic() < deadline:
        name = ask(args.host, args.port, args.connect_timeout)
        result["probes"] += 1
        if name is None:
            result["refused_or_failed"] += 1
        elif name == args.old:
            result["old_answers"] += 1
        else:
            answer_ns = now_ns()
            result["new"] = name
            break
        if child is not None and "cmd_exit_ns" not in result and child.poll() is not None:
            result["cmd_exit_ns"] = now_ns()
        tick += 1
        pause = start_mono + tick * interval - time.monotonic()
        if pause > 0:
            time.sleep(pause)
    result["answer_ns"] = answer_ns
    if child is not None:
        if "cmd_exit_ns" not in result:
            try:
                child.wait(timeout=max(1.0, deadline - time.monotonic()))
                result["cmd_exit_ns"] = now_ns()
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        result["cmd_rc"] = child.returncode
        result["cmd_stderr"] = child.stderr.read().decode("utf-8", "replace").strip()[-500:]
    print(json.dumps(result))
    return 0 if answer_ns is not None else 1


# ---------------------------------------------------------------- cluster status

def snapshot(binary, state_dir):
    try:
        out = subprocess.run(
            [binary, "clpstat", "--json", "--local", "--state-dir", state_dir],
            capture_output=True, timeout=5, text=True)
    except subprocess.TimeoutExpired:
        return None, "clpstat timed out on %s" % state_dir
    if out.returncode != 0:
        return None, "clpstat on %s: %s" % (state_dir, out.stderr.strip()[:200])
    try:
        return json.loads(out.stdout), None
    except ValueError as error:
        return None, "clpstat on %s: %s" % (state_dir, error)


def unsettled(binary, dirs, group, on, servers):
    """Why the cluster is not settled yet, or None."""
    masters = set()
    for state_dir in dirs:
        snap, error = snapshot(binary, state_dir)
        if snap is None:
            return error
        me = snap["localServer"]
        if snap["service"] != "running":
            return "%s: service %s" % (me, snap["service"])
        if not snap["syncDone"] or snap["isolated"] or snap["suspended"]:
            return "%s: syncDone=%s isolated=%s suspended=%s" % (me, snap["syncDone"], snap["isolated"], snap["suspended"])
        if snap["autoStartSuppressed"]:
            return "%s: automatic start still suppressed (abnormal stop)" % me
        down = [s["name"] for s in snap["servers"] if s["status"] != "Online"]
        if down or len(snap["servers"]) != len(servers):
            return "%s sees servers not online: %s" % (me, ", ".join(down))
        masters.add(snap.get("master"))
        line = next((g for g in snap["groups"] if g["name"] == group), None)
        if line is None:
            return "%s: no group %s" % (me, group)
        if line["status"] != "Online" or line.get("current") != on:
            return "%s: group %s is %s on %s" % (me, group, line["status"], line.get("current"))
        holders = [s for s, st in line["perServer"].items() if st not in ("Offline", "Unknown")]
        if holders != [on]:
            return "%s: group %s held on %s" % (me, group, holders)
    if len(masters) != 1:
        return "servers disagree on the master: %s" % masters
    return None


def cmd_wait_stable(args):
    dirs = args.dirs.split(",")
    servers = args.servers.split(",")
    deadline = time.monotonic() + args.timeout
    good = 0
    reason = "not checked"
    while time.monotonic() < deadline:
        reason = unsettled(args.binary, dirs, args.group, args.on, servers)
        if reason is None:
            name = ask(args.host, args.port, 0.5)
            if name != args.on:
                reason = "service answers %r, expected %s" % (name, args.on)
        if reason is None:
            good += 1
            if good >= args.confirm:
                return 0
        else:
            good = 0
        time.sleep(0.1)
    print("not stable after %ss: %s" % (args.timeout, reason), file=sys.stderr)
    return 1


# ---------------------------------------------------------------- footprint

def proc_rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_hwm_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def proc_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        text = f.read()
    fields = text[text.rindex(")") + 2:].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[0] is field 3.
    return int(fields[11]) + int(fields[12])


def cmd_footprint(args):
    hz = os.sysconf("SC_CLK_TCK")
    pids = {}
    roles = {}
    for item in args.pids.split(","):
        name, pid, role = (item.split("=") + [""])[:3]
        pids[name] = int(pid)
        roles[name] = role
    start_ticks = {n: proc_ticks(p) for n, p in pids.items()}
    samples = {n: [] for n in pids}
    t_start = time.monotonic()
    end = t_start + args.seconds
    while True:
        for n, p in pids.items():
            samples[n].append(proc_rss_kb(p))
        if time.monotonic() >= end:
            break
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    elapsed = time.monotonic() - t_start
    writer = csv.writer(sys.stdout)
    writer.writerow(["server", "role", "pid", "seconds", "cpu_ticks", "clk_tck", "cpu_percent_of_one_core",
                     "rss_kb_first", "rss_kb_last", "rss_kb_max", "vmhwm_kb"])
    for n, p in pids.items():
        ticks = proc_ticks(p) - start_ticks[n]
        cpu = 100.0 * ticks / hz / elapsed
        writer.writerow([n, roles[n], p, "%.1f" % elapsed, ticks, hz, "%.3f" % cpu,
                         samples[n][0], samples[n][-1], max(samples[n]), proc_hwm_kb(p)])
    return 0


# ---------------------------------------------------------------- one run's CSV row

FAILOVER_FIELDS = ["run", "t0_ns", "start_begin_ns", "answer_ns", "total_ms", "detect_ms",
                   "start_to_answer_ms", "new_server", "probes", "refused_or_failed", "old_answers", "load1"]
MOVE_FIELDS = ["run", "t0_ns", "stop_begin_ns", "stop_end_ns", "start_begin_ns", "answer_ns", "raw_ms",
               "net_ms", "cmd_to_stop_ms", "stop_script_ms", "handoff_ms", "start_to_answer_ms",
               "cmd_exit_ms", "cmd_rc", "new_server", "probes", "load1"]


def read_events(path, since):
    events = []
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[0].isdigit() and int(parts[0]) >= since:
                events.append((int(parts[0]), parts[1], parts[2]))
    return sorted(events)


def first(events, kind, server=None, not_server=None):
    for ts, k, s in events:
        if k == kind and (server is None or s == server) and (not_server is None or s != not_server):
            return ts
    return None


def ms(a, b):
    if a is None or b is None:
        return ""
    return "%.1f" % ((b - a) / 1e6)


def load1():
    """The 1-minute load average: other work on the machine shows in the outliers."""
    try:
        with open("/proc/loadavg") as f:
            return f.read().split()[0]
    except OSError:
        return ""


def cmd_row(args):
    writer = csv.writer(sys.stdout)
    if args.header:
        writer.writerow(FAILOVER_FIELDS if args.kind == "failover" else MOVE_FIELDS)
        return 0
    probe = json.loads(args.probe_json)
    t0 = probe["t0_ns"]
    answer = probe.get("answer_ns")
    events = read_events(args.events, t0)
    start_begin = first(events, "start-begin", not_server=args.old)
    if args.kind == "failover":
        writer.writerow([args.run, t0, start_begin or "", answer or "", ms(t0, answer), ms(t0, start_begin),
                         ms(start_begin, answer), probe.get("new", ""), probe["probes"],
                         probe["refused_or_failed"], probe["old_answers"], load1()])
        return 0
    stop_begin = first(events, "stop-begin", server=args.old)
    stop_end = first(events, "stop-end", server=args.old)
    net = ""
    if None not in (answer, stop_begin, stop_end, start_begin):
        net = "%.1f" % (((answer - t0) - (stop_end - stop_begin) - (answer - start_begin)) / 1e6)
    writer.writerow([args.run, t0, stop_begin or "", stop_end or "", start_begin or "", answer or "",
                     ms(t0, answer), net, ms(t0, stop_begin), ms(stop_begin, stop_end), ms(stop_end, start_begin),
                     ms(start_begin, answer), ms(t0, probe.get("cmd_exit_ns")), probe.get("cmd_rc", ""),
                     probe.get("new", ""), probe["probes"], load1()])
    return 0


# ---------------------------------------------------------------- summary

def stats_row(label, values, unit="ms"):
    values = sorted(values)
    if not values:
        return "| %s | — | — | — | 0 |" % label
    return "| %s | %.0f | %.0f | %.0f | %d |" % (
        label, values[0], statistics.median(values), values[-1], len(values))


def column(rows, key):
    out = []
    for row in rows:
        try:
            out.append(float(row[key]))
        except (KeyError, ValueError):
            pass
    return out


def cmd_summarize(args):
    lines = []
    with open(args.failover) as f:
        failover = list(csv.DictReader(f))
    with open(args.move) as f:
        move = list(csv.DictReader(f))
    lines.append("| measurement (ms) | min | median | max | runs |")
    lines.append("|---|---:|---:|---:|---:|")
    lines.append(stats_row("unplanned failover: kill -9 → first answer from the new server", column(failover, "total_ms")))
    lines.append(stats_row("  of which kill -9 → start script begins on the new server", column(failover, "detect_ms")))
    lines.append(stats_row("  of which start script begins → first answer", column(failover, "start_to_answer_ms")))
    lines.append(stats_row("planned move (clpgrp -m), raw: command → first answer", column(move, "raw_ms")))
    lines.append(stats_row("planned move, net of the scripts' run time", column(move, "net_ms")))
    lines.append(stats_row("  command → stop script begins (old server)", column(move, "cmd_to_stop_ms")))
    lines.append(stats_row("  stop script run time", column(move, "stop_script_ms")))
    lines.append(stats_row("  stop script ends → start script begins (new server)", column(move, "handoff_ms")))
    lines.append(stats_row("  start script begins → first answer", column(move, "start_to_answer_ms")))
    lines.append(stats_row("  clpgrp -m returns (after the command)", column(move, "cmd_exit_ms")))
    if args.cli and os.path.exists(args.cli):
        with open(args.cli) as f:
            cli = list(csv.DictReader(f))
        lines.append(stats_row("one CLI call (`clpstat --json --local`) wall time", column(cli, "ms")))
    loads = column(failover, "load1") + column(move, "load1")
    if loads:
        lines.append("")
        lines.append("1-minute load average of the machine during the runs: %.2f to %.2f (%d cores)." % (
            min(loads), max(loads), os.cpu_count() or 0))
    lines.append("")
    with open(args.footprint) as f:
        foot = list(csv.DictReader(f))
    lines.append("| idle daemon | role | CPU % of one core | VmRSS first / last / max (MiB) | VmHWM (MiB) | window (s) |")
    lines.append("|---|---|---:|---:|---:|---:|")
    for row in foot:
        mib = lambda k: "%.1f" % (int(row[k]) / 1024.0)
        lines.append("| %s | %s | %s | %s / %s / %s | %s | %s |" % (
            row["server"], row.get("role", ""), row["cpu_percent_of_one_core"], mib("rss_kb_first"),
            mib("rss_kb_last"), mib("rss_kb_max"), mib("vmhwm_kb"), row["seconds"]))
    print("\n".join(lines))
    return 0


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("probe")
    p.add_argument("--host", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--old", required=True, help="name of the server that serves now")
    p.add_argument("--interval", type=float, default=0.01)
    p.add_argument("--connect-timeout", type=float, default=0.05)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--kill", type=int, help="SIGKILL this pid at t0")
    p.add_argument("command", nargs="*", help="or run this command at t0")

    w = sub.add_parser("wait-stable")
    w.add_argument("--binary", required=True)
    w.add_argument("--dirs", required=True)
    w.add_argument("--servers", required=True)
    w.add_argument("--group", required=True)
    w.add_argument("--on", required=True)
    w.add_argument("--host", required=True)
    w.add_argument("--port", type=int, required=True)
    w.add_argument("--timeout", type=float, default=60.0)
    w.add_argument("--confirm", type=int, default=3)

    fp = sub.add_parser("footprint")
    fp.add_argument("--pids", required=True, help="name=pid[=role],...")
    fp.add_argument("--seconds", type=float, default=60.0)

    r = sub.add_parser("row")
    r.add_argument("--kind", choices=["failover", "move"], required=True)
    r.add_argument("--header", action="store_true")
    r.add_argument("--probe-json", default="{}")
    r.add_argument("--events", default="/dev/null")
    r.add_argument("--old", default="")
    r.add_argument("--run", default="")

    s = sub.add_parser("summarize")
    s.add_argument("--failover", required=True)
    s.add_argument("--move", required=True)
    s.add_argument("--footprint", required=True)
    s.add_argument("--cli")

    args = parser.parse_args()
    if args.cmd == "probe":
        if not args.kill and not args.command:
            parser.error("probe needs --kill PID or a command")
        return cmd_probe(args)
    if args.cmd == "wait-stable":
        return cmd_wait_stable(args)
    if args.cmd == "row":
        return cmd_row(args)
    if args.cmd == "footprint":
        return cmd_footprint(args)
    return cmd_summarize(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
