#!/usr/bin/env python3
"""Time from a status change to the WebManager showing it, in a real headless Chromium.

Starts three daemons on 127.0.0.51-53 (fast profile, HTTPS with a self-signed pair made by
openssl), chromedriver and Chromium, logs in on node1's WebManager, then ROUNDS times suspends
or resumes the cluster with `clpcl --suspend/--resume` (a change the daemon applies at once) and
measures from the command's return to the moment clpstat shows it and to the moment the page
shows it (a MutationObserver in the page stamps Date.now(); one clock, one machine). Prints
p50/p90/max of both.
Stops chromedriver and the daemons by PID.

    scripts/webmanager-latency.py [--binary .build/release/understudy] [--rounds 30]
"""
import argparse, json, signal, subprocess, time, urllib.request
from bench_cluster import Cluster, wait_until

parser = argparse.ArgumentParser()
parser.add_argument("--binary", default=".build/debug/understudy")
parser.add_argument("--rounds", type=int, default=30)
parser.add_argument("--port-base", type=int, default=39400)
args = parser.parse_args()
cluster = Cluster(
    args.binary, "wmlatency", 51, args.port_base, "{listen: heartbeat-addresses, certificate: web.pem, key: web.key}",
    user_role="operator", password="latency-Pa55word")
binary, folder, address, http_port, password = cluster.binary, cluster.folder, cluster.address, cluster.http_port, cluster.password
driver_port = args.port_base + 9
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                "-subj", "/CN=wm", "-addext", "subjectAltName=" + ",".join(f"IP:{a}" for a in address.values()),
                "-keyout", f"{folder}/web.key", "-out", f"{folder}/web.pem"], check=True, capture_output=True)


def webdriver(method, path, body=None):
    request = urllib.request.Request(f"http://127.0.0.1:{driver_port}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        value = json.load(response)["value"]
    if isinstance(value, dict) and "error" in value:
        raise RuntimeError(f"{method} {path}: {value['error']}: {value.get('message', '')}")
    return value


def wait(what, condition, seconds=20):
    wait_until(what, condition, seconds)


driver, session = None, None
try:
    cluster.start()
    driver = subprocess.Popen(["chromedriver", f"--port={driver_port}", "--allowed-ips=127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait("chromedriver", lambda: webdriver("GET", "/status")["ready"])
    session = webdriver("POST", "/session", {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
        "binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                                                 "--ignore-certificate-errors", f"--user-data-dir={folder}/chromium"]}}}})["sessionId"]
    run = lambda script, *a: webdriver("POST", f"/session/{session}/execute/sync", {"script": script, "args": list(a)})
    time.sleep(4)
    webdriver("POST", f"/session/{session}/url", {"url": f"https://{address['node1']}:{http_port}/"})
    wait("the login form", lambda: run("return !document.getElementById('login').hidden"))
    run("document.getElementById('login-user').value = 'bench'; document.getElementById('login-password').value = arguments[0];"
        "document.getElementById('login-form').requestSubmit()", password)
    wait("the status page", lambda: run("return !!document.querySelector(\"#matrix tr[data-group='grp1']\")"))
    wait("live updates", lambda: run("return document.getElementById('live').classList.contains('on')"))
    # Stamp the first time the monitor's status cell shows the expected word.
    run("""window.seen = {}; new MutationObserver(() => {
             const word = document.getElementById('notices').textContent.includes('suspended') ? 'Suspend' : 'Normal';
             if (!(word in window.seen)) window.seen[word] = Date.now();
           }).observe(document.body, {subtree: true, childList: true, characterData: true});""")
    latencies, daemon_latencies = [], []
    for round in range(args.rounds):
        suspend = round % 2 == 0
        word = "Suspend" if suspend else "Normal"
        run("window.seen = {}")
        subprocess.run([binary, "clpcl", "--suspend" if suspend else "--resume", "--state-dir", f"{folder}/node1"],
                       check=True, capture_output=True)
        changed = time.time() * 1000
        # When the daemon's own status shows it (clpstat), to tell the page's share apart.
        while True:
            status = json.loads(subprocess.run([binary, "clpstat", "--json", "--state-dir", f"{folder}/node1"],
                                               capture_output=True, text=True).stdout or "{}")
            if status.get("suspended") == suspend or time.time() * 1000 - changed > 10000:
                break
        daemon_latencies.append(time.time() * 1000 - changed)
        wait(f"{word} in the page", lambda: word in run("return window.seen"), 10)
        latencies.append(run("return window.seen[arguments[0]]", word) - changed)
        time.sleep(0.3)
    pick = lambda values, p: sorted(values)[min(len(values) - 1, int(len(values) * p))]
    print(f"| measured until | rounds | p50 | p90 | max |")
    print(f"|---|---|---|---|---|")
    for label, values in [("clpstat shows it", daemon_latencies), ("the page shows it", latencies)]:
        print(f"| {label} | {len(values)} | {pick(values, 0.5):.0f} ms | {pick(values, 0.9):.0f} ms | {max(values):.0f} ms |")
finally:
    # Ending the session ends Chromium; chromedriver alone going would leave it running.
    if session:
        try:
            webdriver("DELETE", f"/session/{session}")
        except Exception:
            pass
    if driver:
        driver.send_signal(signal.SIGTERM)
        try:
            driver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            driver.kill()
    cluster.stop()
