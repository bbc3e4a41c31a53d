#!/usr/bin/env python3
# Writes Sources/UnderstudyWeb/OpenAPIDocument.swift: the OpenAPI 3 document of /api/v1
# (served at /api/v1/openapi.json). Edit this file, run it, commit both.
# RestApiTests check every response they receive against it (OpenAPIChecker); RestApiPropertyTests
# runs schemathesis from it.
import json
S = lambda name: {"$ref": "#/components/schemas/" + name}
activation = ["Online","Offline","Online Pending","Offline Pending","Online Failure","Offline Failure","Unknown"]
monitor_words = ["Normal","Caution","Error","Unknown","Offline","Suspend","Unused"]
server_words = ["Online","Offline","Caution","Suspend","Unknown"]
cluster_words = ["Online","Offline","Caution","Suspend"]
def obj(props, required, extra=False):
    o = {"type":"object","properties":props,"additionalProperties":extra}
    if required: o["required"] = required
    return o
schemas = {
 "Result": obj({"code":{"type":"integer","description":"0 success; 1 failed; 2 bad request; 3 unreachable; 4 in transition; 5 unauthenticated; 6 forbidden; 7 not found; 8 too large; 9 not supported; 10 too many attempts"},
                "message":{"type":"string","description":"empty on success"}},["code","message"]),
 "Envelope": obj({"result":S("Result")},["result"]),
 "ClusterReply": obj({"result":S("Result"),"cluster":obj({"name":{"type":"string"},"status":{"type":"string","enum":cluster_words}},["name","status"])},["result","cluster"]),
 "Server": obj({"name":{"type":"string"},"status":{"type":"string","enum":server_words}},["name"]),
 "ServersReply": obj({"result":S("Result"),"servers":{"type":"array","items":S("Server")}},["result","servers"]),
 "Resource": obj({"name":{"type":"string"},"type":{"type":"string"},"status":{"type":"string","enum":activation},
                 "current":{"type":"string","description":"the server, or \"None\""},"group":{"type":"string"}},["name"]),
 "ResourcesReply": obj({"result":S("Result"),"resources":{"type":"array","items":S("Resource")}},["result","resources"]),
 "Group": obj({"name":{"type":"string"},"status":{"type":"string","enum":activation},"current":{"type":"string","description":"the server, or \"None\""},
              "resources":{"type":"array","items":S("Resource")}},["name"]),
 "GroupsReply": obj({"result":S("Result"),"groups":{"type":"array","items":S("Group")}},["result","groups"]),
 "MonitorServer": obj({"name":{"type":"string"},"status":{"type":"string","enum":monitor_words}},["name","status"]),
 "Monitor": obj({"name":{"type":"string"},"type":{"type":"string"},"status":{"type":"string","enum":monitor_words},
                "servers":{"type":"array","items":S("MonitorServer")}},["name"]),
 "MonitorsReply": obj({"result":S("Result"),"monitors":{"type":"array","items":S("Monitor")}},["result","monitors"]),
 "Alert": obj({"time":{"type":"string"},"server":{"type":"string"},"level":{"type":"string","enum":["INFO","WARN","ERROR"]},
              "module":{"type":"string"},"id":{"type":"integer"},"message":{"type":"string"}},["time","server","level","module","id","message"]),
 "AlertsReply": obj({"result":S("Result"),"alerts":{"type":"array","items":S("Alert")},
                     "unreachable":{"type":"array","items":{"type":"string"},"description":"scope=cluster: the servers that did not answer"}},["result","alerts"]),
 "LoginRequest": obj({"username":{"type":"string"},"user":{"type":"string"},"password":{"type":"string"}},["password"]),
 "LoginReply": obj({"result":S("Result"),"user":{"type":"string"},"role":{"type":"string","enum":["operator","viewer"]},
                    "csrfToken":{"type":"string"},"sessionTimeout":{"type":"integer"}},["result","user","role","csrfToken","sessionTimeout"]),
 "SessionReply": obj({"result":S("Result"),"user":{"type":"string"},"role":{"type":"string","enum":["operator","viewer"]},
                      "csrfToken":{"type":"string","description":"absent with HTTP Basic"}},["result","user","role"]),
 "StatusReply": obj({"result":S("Result"),"status":obj({"cluster":{"type":"string"},"localServer":{"type":"string"},
                     "servers":{"type":"array","items":{"type":"object"}},"groups":{"type":"array","items":{"type":"object"}}},
                     ["cluster","localServer","servers","groups"], True)},["result","status"]),
 "ConfigReply": obj({"result":S("Result"),"yaml":{"type":"string"},"version":{"type":"integer"},"hash":{"type":"string"}},["result","yaml","version","hash"]),
 "ConfigText": obj({"yaml":{"type":"string","description":"the cluster file's text"}},["yaml"]),
 "Diagnostic": obj({"severity":{"type":"string","enum":["error","warning"]},"line":{"type":"integer"},"keyPath":{"type":"string"},"message":{"type":"string"}},
                   ["severity","line","keyPath","message"]),
 "Method": obj({"method":{"type":"string"},"text":{"type":"string"}},["method","text"]),
 "ConfigCheckReply": obj({"result":S("Result"),"errors":{"type":"array","items":S("Diagnostic")},"reflection":S("Method"),
                          "changes":{"type":"array","items":obj({"path":{"type":"string"},"text":{"type":"string"},"method":S("Method")},["path","text","method"])},
                          "version":{"type":"integer"}},["result"]),
 "Target": obj({"target":{"type":"string","description":"a server name"}},[], True),
 "RunScript": obj({"script":{"type":"string"},"target":{"type":"string"},"timeout":{"type":["integer","string"]},"logdir":{"type":"string"}},["script"], True),
 "ToratioSet": obj({"ratio":{"type":["integer","string"],"description":"1 to 10000 (1 resets)"},
                    "time":{"type":"string","description":"how long: <N>m, <N>h or <N>d, at most 30 days; absent: until reset; not with ratio 1"}},[], True),
 "ToratioReply": obj({"result":S("Result"),"cluster":obj({"toratio":{"type":"integer","minimum":1,"maximum":10000},
                      "expires":{"type":"string","description":"ISO 8601; absent: until reset (or ratio 1)"},
                      "servers":{"type":"array","items":obj({"name":{"type":"string"},"toratio":{"type":"integer"}},["name","toratio"]),
                                 "description":"every server up and the ratio it uses"}},["toratio"])},["result","cluster"]),
}
def resp(schema, desc="OK"):
    return {"description": desc, "content": {"application/json": {"schema": S(schema)}}}
err = resp("Envelope", "An error: result.code and result.message say what went wrong")
def get(summary, schema, params=(), select=None):
    op = {"summary": summary, "responses": {"200": resp(schema), "default": err}}
    ps = list(params)
    if select:
        ps.append({"name":"select","in":"query","required":False,"description":"name: names only; resources (groups): names and resources; empty: everything","schema":{"type":"string","enum":list(select) + [""]}})
    if ps: op["parameters"] = ps
    return {"get": op}
def post(summary, body=None, params=(), ok="Envelope"):
    op = {"summary": summary, "responses": {"200": resp(ok, "Accepted (result.message is empty)"), "default": err}}
    if body: op["requestBody"] = {"required": False, "content": {"application/json": {"schema": S(body)}}}
    if params: op["parameters"] = list(params)
    return {"post": op}
def name(n): return {"name": n, "in": "path", "required": True, "schema": {"type":"string"}}
paths = {
 "/api/v1/openapi.json": {"get": {"summary":"This document","security":[],"responses":{"200":{"description":"OpenAPI 3 document","content":{"application/json":{"schema":{"type":"object"}}}}}}},
 "/api/v1/login": {"post": {"summary":"Open a UI session (cookie understudy_session; send csrfToken as X-CSRF-Token with every POST)","security":[],
     "requestBody":{"required":True,"content":{"application/json":{"schema":S("LoginRequest")}}},
     "responses":{"200":resp("LoginReply"),"default":err}}},
 "/api/v1/logout": post("Close the session"),
 "/api/v1/cluster": get("Cluster name and status", "ClusterReply"),
 "/api/v1/cluster/toratio": get("Timeout ratio (clptoratio -s)", "ToratioReply"),
 "/api/v1/cluster/toratio/set": post("Set the timeout ratio (clptoratio -r RATIO -t TIME): multiplies heartbeat and monitor timeouts", "ToratioSet"),
 "/api/v1/cluster/toratio/reset": post("Reset the timeout ratio to 1 (clptoratio -i)"),
 "/api/v1/servers": get("Servers", "ServersReply", select=["name"]),
 "/api/v1/servers/{name}": get("One server (a one-element list)", "ServersReply", [name("name")], ["name"]),
 "/api/v1/groups": get("Groups", "GroupsReply", select=["name","resources"]),
 "/api/v1/groups/{name}": get("One group (a one-element list)", "GroupsReply", [name("name")], ["name","resources"]),
 "/api/v1/resources": get("Group resources", "ResourcesReply", select=["name"]),
 "/api/v1/resources/{name}": get("One resource (a one-element list)", "ResourcesReply", [name("name")], ["name"]),
 "/api/v1/monitors": get("Monitors", "MonitorsReply", select=["name"]),
 "/api/v1/monitors/{name}": get("One monitor (a one-element list)", "MonitorsReply", [name("name")], ["name"]),
 "/api/v1/alerts": get("The alert log of this server (or, with scope=cluster, of every server merged by time), oldest first", "AlertsReply",
     [{"name":"limit","in":"query","required":False,"schema":{"type":"integer","minimum":1,"maximum":10000}},
      {"name":"scope","in":"query","required":False,"schema":{"type":"string","enum":["server","cluster"]}}]),
 "/api/v1/events": {"get": {"summary":"Server-Sent Events: status (the whole status, on every change) and alert (each new alert line)",
     "responses":{"200":{"description":"text/event-stream","content":{"text/event-stream":{"schema":{"type":"string"}}}},"default":err}}},
 "/api/v1/session": get("The session's user, role and CSRF token (WebManager)", "SessionReply"),
 "/api/v1/status": get("The whole status as this server (or ?server=NAME) sees the cluster, as clpstat --json (WebManager)", "StatusReply",
     [{"name":"server","in":"query","required":False,"schema":{"type":"string"}}]),
 "/api/v1/config": get("The running configuration's cluster file, version and hash", "ConfigReply"),
 "/api/v1/config/check": post("Check a cluster file: errors with lines and keys, and the reflection method of each change (understudy config apply --dry-run)", "ConfigText", ok="ConfigCheckReply"),
 "/api/v1/config/apply": post("Apply a cluster file to every server in two phases (understudy config apply); operators only", "ConfigText", ok="ConfigCheckReply"),
 "/api/v1/groups/start": post("Start every group that is not online (clpgrp -s)", "Target"),
 "/api/v1/groups/stop": post("Stop every group that is not offline (clpgrp -t)", "Target"),
 "/api/v1/scripts/run": post("Run a script of the target's rexec folder (clprexec --script)", "RunScript"),
 # Beside /api/v1, on the same ports: Prometheus's scrape target (docs/metrics.md).
 "/metrics": {"get": {"summary":"Prometheus metrics in the text format 0.0.4 (docs/metrics.md): any logged-in user, or no credentials from an address of cluster.web.metrics.unauthenticated-from",
     "responses":{"200":{"description":"text/plain; version=0.0.4","content":{"text/plain":{"schema":{"type":"string"}}}},"default":err}}},
}
for v in ["start","stop","reboot","shutdown","suspend","resume"]:
    paths["/api/v1/cluster/"+v] = post({"start":"Start the cluster service on every server (clpcl -s -a)","stop":"Stop the cluster service on every server (clpcl -t -a)",
        "reboot":"Reboot every server (clpstdn -r)","shutdown":"Shut every server down (clpstdn)","suspend":"Suspend the cluster (clpcl --suspend)","resume":"Resume the cluster (clpcl --resume)"}[v])
for v,d in [("start","clpcl -s -h"),("stop","clpcl -t -h"),("reboot","clpdown -r -h"),("shutdown","clpdown -h")]:
    paths["/api/v1/servers/{name}/"+v] = post(f"{v.capitalize()} a server ({d})", params=[name("name")])
for v in ["start","stop"]:
    paths["/api/v1/servers/{name}/dummy-failure/"+v] = post("Server dummy failure (not supported: 501)", params=[name("name")])
for v,d in [("start","clpgrp -s [-h target]"),("stop","clpgrp -t"),("move","clpgrp -m [-a target]")]:
    paths["/api/v1/groups/{name}/"+v] = post(f"{v.capitalize()} a group ({d})", "Target", [name("name")])
for v,d in [("start","clprsc -s"),("stop","clprsc -t")]:
    paths["/api/v1/resources/{name}/"+v] = post(f"{v.capitalize()} a resource ({d})", "Target", [name("name")])
for v,d in [("suspend","clpmonctrl -s"),("resume","clpmonctrl -r"),("dummy-failure/start","clpmonctrl -e"),("dummy-failure/stop","clpmonctrl -n")]:
    paths["/api/v1/monitors/{name}/"+v] = post(f"Monitor {v} ({d}) on target (default: this server)", "Target", [name("name")])
# Config mode answers its errors and the reflection report also when it refuses.
for path in ["/api/v1/config/check", "/api/v1/config/apply"]:
    for status in ["400", "409"]:
        paths[path]["post"]["responses"][status] = resp("ConfigCheckReply", "Refused: errors (with lines and keys) or a change that cannot be applied online")
doc = {"openapi":"3.0.3",
 "info":{"title":"Understudy REST API","version":"1","description":"EXPRESSCLUSTER-compatible /api/v1. Every response has result {code, message}; message is empty on success. See docs/api.md."},
 "servers":[{"url":"/"}],
 "security":[{"basic":[]},{"session":[]}],
 "components":{"securitySchemes":{"basic":{"type":"http","scheme":"basic"},"session":{"type":"apiKey","in":"cookie","name":"understudy_session"}},
   "schemas":schemas},
 "paths":paths}
# OpenAPI 3.0 has no type arrays: use anyOf there.
def fix(x):
    if isinstance(x, dict):
        if isinstance(x.get("type"), list):
            ts = x.pop("type"); x["anyOf"] = [{"type": t} for t in ts]
        for v in x.values(): fix(v)
    elif isinstance(x, list):
        for v in x: fix(v)
fix(doc)
import os
text = json.dumps(doc, indent=1, sort_keys=False)
target = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Sources", "UnderstudyWeb", "OpenAPIDocument.swift")
with open(target, "w") as out:
    out.write("// Generated by scripts/openapi-gen.py: edit that script and run it, not this file.\n\n")
    out.write("/// The OpenAPI 3 document of /api/v1, served at /api/v1/openapi.json.\n")
    out.write("public enum OpenAPIDocument {\n")
    out.write("    public static let json: JSONValue = (try? JSONValue.parse(Array(text.utf8))) ?? .object([])\n\n")
    out.write("    public static let text = #\"\"\"\n")
    for line in text.split("\n"):
        out.write("        " + line + "\n")
    out.write("        \"\"\"#\n}\n")

