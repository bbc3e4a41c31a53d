#!/usr/bin/env python3
"""Writes section-8 manual pages for `understudy` from its argument parser.

Reads the command tree that swift-argument-parser dumps (`understudy --experimental-dump-help`,
ToolInfo JSON) and writes one roff page per command that is shown in --help:
understudy.8, understudy-daemon.8, understudy-config-check.8, … The clp* commands, which are
run by their own names (symlinks to the binary), get pages under those names (clpstat.8),
with understudy-clpstat.8 a link to them (listed in the output for the packager to create).

Usage: manpages.py BINARY OUTPUT_DIR VERSION DATE
Prints one line per page: "page NAME" or "link NAME TARGET".
"""

import json
import os
import subprocess
import sys

SECTION = "8"


def escape(text):
    """Escapes text for roff: backslashes, and a control character at the start of a line."""
    text = text.replace("\\", "\\e")
    lines = []
    for line in text.split("\n"):
        if line.startswith(".") or line.startswith("'"):
            line = "\\&" + line
        lines.append(line)
    return "\n".join(lines)


def option_name(name):
    prefix = {"short": "-", "long": "--", "longWithSingleDash": "-"}.get(name["kind"], "--")
    return (prefix + name["name"]).replace("-", "\\-")


def shown(argument):
    return argument.get("shouldDisplay", True) and not (
        argument.get("names") and any(n["name"] in ("help", "version") for n in argument["names"]) and argument["kind"] == "flag"
    )


def synopsis_item(argument):
    value = escape(argument.get("valueName", "value"))
    if argument["kind"] == "positional":
        item = "\\fI" + value + "\\fR"
    else:
        name = option_name(argument.get("preferredName") or argument["names"][0])
        item = "\\fB" + name + "\\fR" + ("" if argument["kind"] == "flag" else " \\fI" + value + "\\fR")
    if argument.get("isRepeating"):
        item += " ..."
    return "[" + item + "]" if argument.get("isOptional") else item


def page(command, path, invoked, version, date):
    """The roff text of one command's page; `invoked` is how a user types it."""
    title = "-".join(path).upper()
    out = [
        '.TH "%s" "%s" "%s" "understudy %s" "System Administration"' % (title, SECTION, date, version),
        ".SH NAME",
        "%s \\- %s" % ("-".join(path).replace("-", "\\-"), escape(command.get("abstract", "").rstrip("."))),
        ".SH SYNOPSIS",
    ]
    arguments = [a for a in command.get("arguments", []) if shown(a)]
    subcommands = [s for s in command.get("subcommands", []) if s.get("shouldDisplay", True) and s["commandName"] != "help"]
    usage = "\\fB" + " ".join(invoked).replace("-", "\\-") + "\\fR"
    if subcommands:
        usage += " \\fIsubcommand\\fR"
    out.append(".nh")
    out.append(".ad l")
    out.append(" ".join([usage] + [synopsis_item(a) for a in arguments]))
    out.append(".ad")
    out.append(".hy")
    out.append(".SH DESCRIPTION")
    out.append(escape(command.get("abstract", "")))
    if command.get("discussion"):
        out.append(".PP")
        out.append(escape(command["discussion"]))
    if arguments:
        out.append(".SH OPTIONS")
        for argument in arguments:
            out.append(".TP")
            if argument["kind"] == "positional":
                out.append("\\fI" + escape(argument.get("valueName", "value")) + "\\fR")
            else:
                names = ", ".join("\\fB" + option_name(n) + "\\fR" for n in argument.get("names", []))
                if argument["kind"] == "option":
                    names += " \\fI" + escape(argument.get("valueName", "value")) + "\\fR"
                out.append(names)
            text = escape(argument.get("abstract", "")) or "(no description)"
            if argument.get("defaultValue"):
                text += " (default: " + escape(argument["defaultValue"]) + ")"
            if argument.get("allValues"):
                text += " Values: " + escape(", ".join(argument["allValues"])) + "."
            out.append(text)
            if argument.get("discussion"):
                out.append(escape(argument["discussion"]) if isinstance(argument["discussion"], str) else "")
    if subcommands:
        out.append(".SH SUBCOMMANDS")
        for sub in subcommands:
            out.append(".TP")
            out.append("\\fB" + sub["commandName"].replace("-", "\\-") + "\\fR")
            out.append(escape(sub.get("abstract", "")) + " See \\fB" + "-".join(path + [sub["commandName"]]).replace("-", "\\-") + "\\fR(8).")
    out.append(".SH EXIT STATUS")
    out.append("0 success; 1 the operation failed; 2 bad usage or a bad configuration; 3 the local daemon is not")
    out.append("reachable; 4 refused because the target is in transition.")
    out.append(".SH FILES")
    out.append("/etc/understudy/cluster.yaml, /etc/understudy/cluster.key, /var/lib/understudy/, /run/understudy/understudy.sock")
    out.append(".SH SEE ALSO")
    see = ["understudy"] if path != ["understudy"] else []
    see += ["understudy\\-daemon", "systemd.service"] if path == ["understudy"] else []
    out.append(", ".join("\\fB%s\\fR(%s)" % (s, "5" if s == "systemd.service" else SECTION) for s in see) or "\\fBunderstudy\\fR(8)")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    binary, output, version, date = sys.argv[1:]
    dumped = subprocess.run([binary, "--experimental-dump-help"], check=True, capture_output=True, text=True).stdout
    root = json.loads(dumped)["command"]
    os.makedirs(output, exist_ok=True)

    def walk(command, path):
        if not command.get("shouldDisplay", True) or command["commandName"] == "help":
            return
        invoked = path
        name = "-".join(path)
        if len(path) == 2 and path[1].startswith("clp"):
            # Run as `clpstat …`: the page is clpstat(8); understudy-clpstat(8) points to it.
            invoked = [path[1]]
            name = path[1]
            print("link %s.%s %s.%s" % ("-".join(path), SECTION, name, SECTION))
        with open(os.path.join(output, name + "." + SECTION), "w", encoding="utf-8") as handle:
            handle.write(page(command, path if invoked == path else [path[1]], invoked, version, date))
        print("page %s.%s" % (name, SECTION))
        for sub in command.get("subcommands", []):
            walk(sub, path + [sub["commandName"]])

    walk(root, ["understudy"])


if __name__ == "__main__":
    main()
