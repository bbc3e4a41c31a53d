"""A three-server Understudy cluster on loopback for the benchmark scripts (api-bench.py,
metrics-bench.py, webmanager-latency.py, alert-outage-bench.py,
alert-latency-bench.py): writes its configuration, key
and a web user in a new folder, starts the daemons, and stops them by PID."""
import json, os, signal, subprocess, tempfile, time


def pct(values, p):
    """The p-quantile (0..1) of a non-empty list, by rank."""
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def wait_until(what, condition, seconds=20, interval=0.05):
    """Checks `condition` every `interval` until it holds (an exception counts as not yet);
    raises after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(interval)
    raise RuntimeError(f"timed out after {seconds:g} s waiting for {what}")


class Cluster:
    def __init__(self, binary, name, first_octet, port_base, web, user_role="viewer",
                 password="bench-Pa55word", extra=""):
        self.binary = os.path.abspath(binary)
        self.folder = tempfile.mkdtemp(prefix=f"understudy-{name}-")
        self.servers = ["node1", "node2", "node3"]
        self.address = {s: f"127.0.0.{first_octet + i}" for i, s in enumerate(self.servers)}
        self.http_port = port_base + 3
        self.password = password
        self.daemons = []
        with open(f"{self.folder}/cluster.yaml", "w") as f:
            f.write(f"""cluster:
  name: {name}
  secret-file: cluster.key
  timing: {{heartbeat-interval: 20ms, heartbeat-timeout: 100ms, sync-wait: 2s}}
  network-partition: {{action: none}}
  ports: {{control: {port_base + 1}, heartbeat: {port_base + 2}, http: {self.http_port}}}
  web: {web}
  os-commands: {{shutdown: [/bin/true], reboot: [/bin/true]}}
servers: [{", ".join(self.servers)}]
heartbeats:
  - name: lanhb1
    type: lanhb
    addresses: {{{", ".join(f"{s}: {a}" for s, a in self.address.items())}}}
network-partition:
  - {{name: majority1, type: majority}}
groups:
  - name: grp1
    resources:
      - {{name: app, type: exec, start: /bin/true, stop: /bin/true}}
{extra}""")
        subprocess.run([self.binary, "keygen", f"{self.folder}/cluster.key"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([self.binary, "user", "add", "bench", "--role", user_role, "--config", f"{self.folder}/cluster.yaml"],
                       input=password + "\n", text=True, check=True, stdout=subprocess.DEVNULL)

    def start(self):
        for s in self.servers:
            log = open(f"{self.folder}/{s}.log", "w")
            self.daemons.append(subprocess.Popen([self.binary, "daemon", "--config", f"{self.folder}/cluster.yaml", "--server", s,
                                                  "--state-dir", f"{self.folder}/{s}"], stdout=log, stderr=log))

    def kill9(self, server):
        """SIGKILL to `server`'s daemon, waited for: the wall-clock instant (time.time()) just
        before the signal."""
        daemon = self.daemons[self.servers.index(server)]
        instant = time.time()
        daemon.kill()
        daemon.wait(timeout=20)
        return instant

    def restart(self, server):
        """Starts `server`'s daemon again (after kill9), its log appended to."""
        log = open(f"{self.folder}/{server}.log", "a")
        self.daemons[self.servers.index(server)] = subprocess.Popen(
            [self.binary, "daemon", "--config", f"{self.folder}/cluster.yaml", "--server", server,
             "--state-dir", f"{self.folder}/{server}"], stdout=log, stderr=log)

    def stop(self):
        for d in self.daemons:
            d.send_signal(signal.SIGTERM)
        for d in self.daemons:
            try:
                d.wait(timeout=20)
            except subprocess.TimeoutExpired:
                d.kill()

    def cli(self, server, *arguments, timeout=60):
        """`understudy ARGUMENTS --state-dir` of `server`: (exit code, output)."""
        done = subprocess.run([self.binary, *arguments, "--state-dir", f"{self.folder}/{server}"],
                              capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout + done.stderr

    def status(self, server="node1"):
        """`clpstat --json --local` of `server`, decoded."""
        out = subprocess.run([self.binary, "clpstat", "--json", "--local", "--state-dir", f"{self.folder}/{server}"],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)

    def runtime(self, server="node1"):
        """The server's heartbeats and their lateness p50/p99/max in µs over the last minute
        (`clpstat --json`)."""
        out = subprocess.run([self.binary, "clpstat", "--json", "--local", "--state-dir", f"{self.folder}/{server}"],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out)["runtime"]
        return (r["heartbeats"], r["heartbeatLatenessP50"], r["heartbeatLatenessP99"], r["heartbeatLatenessMax"])
