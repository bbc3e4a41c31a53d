#!/usr/bin/env bash
# Installs what the tests need, then runs the whole test suite.
# Used by the README and by CI (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: procps (ps, pkill-free process checks), iproute2 (lab),
# curl (HTTP checks in process tests; the REST API tests talk to the daemons with it), openssl
# (the REST API's TLS test makes a self-signed certificate and key), iputils-arping and ndisc6 (the fip driver's
# fallbacks when it cannot open its own ARP/ICMPv6 sockets, and tests comparing with them), bird2 (a real RIP router for vip), postgresql and
# mariadb-server/-client (real database servers and clients for psqlw and mysqlw), python3
# (an HTTP server for httpw), lvm2 and sg3-utils (volmgrw, diskw tur), hostname and bsdutils
# (`hostname -s`, `logger`: the ESMPRO/AC sample stop script), nut-server and nut-client (a
# real upsd with dummy-ups and clone drivers for upsw), kmod (modprobe softdog for the
# shutdown-stall watchdog's test), socat (a pty pair standing for the null-modem cable of comhb),
# e2fsprogs, xfsprogs, util-linux and mount (mkfs, fsck, blkid, losetup, unshare: the disk
# resource; `diskhb init` refuses a device with a file system), samba and smbclient (a real smbd
# and Samba's client for sambaw), nfs-ganesha, nfs-ganesha-vfs and rpcbind (a user-space NFS server
# and the portmapper for nfsw v4/v3 and the nas resource), nfs-common (mount.nfs for the nas
# mount test, which also needs a kernel NFS client), openssl (self-signed certificates for the
# witness's HTTPS test), chromium and chromium-driver (a real headless browser over WebDriver for
# the WebManager's tests), prometheus (its promtool checks the daemon's GET /metrics text in
# MetricsProcessTests), python3-aiosmtpd (a real SMTP server with STARTTLS and AUTH for
# the mail alert destination's tests, run by scripts/smtp_test_server.py), snmptrapd and snmp
# (a real trap receiver decoding the alert traps with docs/UNDERSTUDY-MIB.txt, and
# snmptranslate checking that MIB), rsyslog (a real rsyslogd the syslog alert destination's
# test starts with its own socket and loopback ports), dpkg-dev, binutils, lintian, man-db and
# systemd (DebianPackageTests: dpkg-shlibdeps and strip build the package, lintian checks it,
# man renders its pages, systemd-analyze verifies its unit), openipmi and ipmitool (a real BMC,
# ipmi_sim, that the forced-stop ipmi agent's tests power off with ipmitool), keepalived (the
# failover benchmark's competitor, run in the lab by BenchHarnessLabTests). Installed only
# when missing, so the command also works without network on a machine that already has them.
need=()
for pkg in procps iproute2 curl openssl nftables iptables iputils-ping iputils-arping ndisc6 bird2 \
    postgresql postgresql-client mariadb-server mariadb-client python3 lvm2 sg3-utils \
    hostname bsdutils nut-server nut-client kmod socat e2fsprogs xfsprogs util-linux mount \
    samba smbclient nfs-ganesha nfs-ganesha-vfs rpcbind nfs-common openssl \
    chromium chromium-driver prometheus python3-aiosmtpd snmptrapd snmp rsyslog \
    dpkg-dev binutils lintian man-db systemd openipmi ipmitool keepalived; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
    else
        sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
    fi
fi

# PyPI: schemathesis, for the property-based run against the REST API's OpenAPI document
# (RestApiPropertyTests). Installed only when missing.
if ! command -v schemathesis >/dev/null 2>&1; then
    python3 -m pip install -q schemathesis 2>/dev/null || python3 -m pip install -q --break-system-packages schemathesis
fi

swift build --build-tests
if [ $# -gt 0 ]; then
    exec swift test --skip-build "$@"
fi
# Eight runs, so that timing-sensitive tests never share the 2 cores (and the 2 threads of the
# test runner's pool) with CPU-bound or blocking work: unit and component tests; the network
# tests in namespaces (root; they run shell commands that block); the 1,200 simulator
# schedules; the process tests, whose real daemons run with sub-second heartbeats.
# The alert destinations' tests start real receivers (rsyslogd, snmptrapd, aiosmtpd, Python
# HTTP servers) with Foundation's Process, whose one manager thread blocks in waitpid once a
# child that closed its inherited descriptors runs: no other Foundation Process in the same
# test process is then seen to end (UnderstudyNode/Scripts/SpawnedProcess.swift). The product
# and Shell.run no longer use it; these receivers still do, so they run in a process of their own.
alert_suites="MailDestinationTests|SNMPTrapDestinationTests|SyslogDestinationTests|WebhookDestinationTests|CommandDestinationTests|AlertWiringTests|AlertRouterTests"
swift test --skip-build --skip UnderstudySimulatorTests --skip UnderstudyProcessTests \
    --skip UnderstudyLabTests --skip FloatingIP --skip ControlPathTests --skip "$alert_suites"
swift test --skip-build --filter "$alert_suites"
# The control channel's path choice is judged by how long a TCP hello takes: alone, so that the
# unit run's hundreds of parallel tests cannot starve the hello past an attempt's bound.
swift test --skip-build --filter ControlPathTests
swift test --skip-build --filter UnderstudyLabTests --filter FloatingIP
swift test --skip-build --filter UnderstudySimulatorTests
# The Debian package's test (strip, gzip and lintian of a 130 MB binary) and the 300-group
# cluster (three daemons starting 300 scripts each) keep both cores busy for a minute: not
# beside the process tests' sub-second heartbeats.
swift test --skip-build --filter UnderstudyProcessTests --skip DebianPackageTests --skip HeartbeatLimitTests
swift test --skip-build --filter HeartbeatLimitTests
swift test --skip-build --filter DebianPackageTests
