#!/usr/bin/env python3
"""Summary of a scripts/bench-issue19.sh results folder (standard library only).

  issue19_summary.py DIR      writes DIR/summary.md from DIR/*.json, DIR/machine.txt and
                              DIR/commands.txt, and prints it

The JSON files are what `understudy lab failover-bench --json` and `understudy lab footprint
--json` wrote; memory-variants.json is scripts/bench/memory-variants.sh's.
"""

import glob
import json
import os
import statistics
import sys


def load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def ms(value):
    return "–" if value is None else f"{value * 1000:.0f} ms" if value < 10 else f"{value:.2f} s"


def kib(value):
    return f"{value / 1024:.1f}"


def failover_rows(reports):
    rows = ["| competitor and timing | servers | fault | runs answered | min | median | max | steal | load before |",
            "|---|---:|---|---:|---:|---:|---:|---:|---|"]
    for name, report in reports:
        for series in report["series"]:
            values = sorted(run["seconds"] for run in series["runs"] if run.get("seconds") is not None)
            if values:
                low, mid, high = values[0], statistics.median(values), values[-1]
            else:
                low = mid = high = None
            load = " ".join(f"{x:.2f}" for x in series.get("loadBefore", []))
            rows.append(
                f"| {report['label']} | {report['servers']} | {series['fault']} | {len(values)}/{len(series['runs'])} "
                f"| {ms(low)} | **{ms(mid)}** | {ms(high)} | {series.get('stealPercent', 0):.1f} % | {load} |")
    return rows


def raw_values(reports):
    lines = []
    for name, report in reports:
        for series in report["series"]:
            values = ", ".join("–" if run.get("seconds") is None else f"{run['seconds'] * 1000:.0f}" for run in series["runs"])
            lines.append(f"- `{name}` {series['fault']} (ms): {values}")
    return lines


def footprint_rows(reports):
    rows = ["| daemon | groups | server | CPU s/min | processes | threads | RSS MiB | PSS MiB | anon MiB | file MiB | steal |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, report in reports:
        result = report["result"]
        for daemon in result["daemons"]:
            anon = sum(p["status"].get("RssAnon", 0) for p in daemon["processes"])
            file = sum(p["status"].get("RssFile", 0) for p in daemon["processes"])
            threads = sum(p["threads"] for p in daemon["processes"])
            rows.append(
                f"| {report['label']} | {report['groups']} | {daemon['server']} | {daemon['cpuSecondsPerMinute']:.3f} "
                f"| {len(daemon['processes'])} | {threads} | {kib(daemon['rssKiB'])} | {kib(daemon['pssKiB'])} "
                f"| {kib(anon)} | {kib(file)} | {result['stealPercent']:.1f} % |")
    return rows


def breakdown(report):
    """The per-mapping breakdown of each process of the first daemon."""
    lines = []
    daemon = report["result"]["daemons"][0]
    for process in daemon["processes"]:
        status = process["status"]
        rollup = process["rollup"]
        lines.append("")
        lines.append(
            f"`{report['label']}`, {daemon['server']}, pid {process['pid']} ({process['command']}, {process['threads']} threads): "
            f"VmRSS {kib(status.get('VmRSS', 0))} MiB = anon {kib(status.get('RssAnon', 0))} + file {kib(status.get('RssFile', 0))} "
            f"+ shmem {kib(status.get('RssShmem', 0))}; PSS {kib(rollup.get('Pss', 0))} MiB "
            f"(anon {kib(rollup.get('Pss_Anon', 0))}, file {kib(rollup.get('Pss_File', 0))}, shmem {kib(rollup.get('Pss_Shmem', 0))})")
        lines.append("")
        lines.append("| mapping | count | size KiB | RSS KiB | PSS KiB | private dirty KiB | anonymous KiB |")
        lines.append("|---|---:|---:|---:|---:|---:|---:|")
        for category in sorted(process["categories"], key=lambda c: -c["rss"]):
            if category["rss"] == 0:
                continue
            lines.append(
                f"| {category['name']} | {category['mappings']} | {category['size']} | {category['rss']} | {category['pss']} "
                f"| {category['privateDirty']} | {category['anonymous']} |")
    return lines


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    folder = sys.argv[1]
    failovers, footprints, sizes = [], [], []
    for path in sorted(glob.glob(os.path.join(folder, "*.json"))):
        name = os.path.basename(path)[:-5]
        try:
            report = load(path)
        except (OSError, ValueError) as error:
            print(f"skipping {path}: {error}", file=sys.stderr)
            continue
        if not isinstance(report, dict):
            continue
        if report.get("kind") == "failover":
            (sizes if name.startswith("size-") else failovers).append((name, report))
        elif report.get("kind") == "footprint":
            footprints.append((name, report))
    sizes.sort(key=lambda item: item[1]["servers"])
    # Understudy first, then the competitors, each in file-name order.
    failovers.sort(key=lambda item: (item[1].get("competitor") != "understudy", item[0]))
    footprints.sort(key=lambda item: (item[1].get("competitor") != "understudy", item[0]))
    out = ["# Issue 19 benchmarks", ""]
    for extra in ("machine.txt",):
        path = os.path.join(folder, extra)
        if os.path.exists(path):
            out += ["## Machine", "", "```", open(path, encoding="utf-8").read().rstrip(), "```", ""]
    if failovers:
        out += ["## Unplanned failover: fault → first answer from another server (same lab, prober, method)", ""]
        out += failover_rows(failovers) + [""] + raw_values(failovers) + [""]
    if sizes:
        out += ["## Failover time against cluster size (link down of the holder)", ""]
        out += failover_rows(sizes) + [""] + raw_values(sizes) + [""]
    if footprints:
        out += ["## Idle footprint per daemon (CPU over the window; memory at its end)", ""]
        out += footprint_rows(footprints) + [""]
        out += ["### Memory by mapping (first server of each run)"]
        for name, report in footprints:
            out += breakdown(report)
        out.append("")
    variants = os.path.join(folder, "memory-variants.json")
    if os.path.exists(variants):
        out += ["## Release build variants: idle memory of the fast-profile daemon (node1, daemon process)", ""]
        out += ["| variant | flags | binary MB | VmRSS MiB | anon MiB | file MiB | PSS MiB (daemon + keeper) |", "|---|---|---:|---:|---:|---:|---:|"]
        for variant in load(variants):
            out.append(
                f"| {variant['name']} | `{variant['flags']}` | {variant['binaryBytes'] / 1e6:.0f} | {kib(variant['vmRSS'])} "
                f"| {kib(variant['rssAnon'])} | {kib(variant['rssFile'])} | {kib(variant['pss'])} |")
        out.append("")
    for extra in ("commands.txt",):
        path = os.path.join(folder, extra)
        if os.path.exists(path):
            out += ["## Commands", "", "```", open(path, encoding="utf-8").read().rstrip(), "```", ""]
    text = "\n".join(out)
    with open(os.path.join(folder, "summary.md"), "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
