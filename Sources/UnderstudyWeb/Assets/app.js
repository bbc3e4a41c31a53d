// Understudy WebManager: plain JavaScript, no framework, no network beyond this server.
// Live over the server's event stream (/api/v1/events); every operation is a POST of the
// REST API, the same command the clp* CLI sends, confirmed inline with that command shown.
"use strict";

const api = "/api/v1";
const state = {
  role: null, // "operator" | "viewer"
  user: null,
  csrf: sessionStorage.getItem("understudy.csrf") || "",
  snapshot: null, // the answering server's view (ClusterStatusSnapshot)
  fetchedAt: 0,
  views: {}, // server -> {snapshot, fetchedAt, error}
  viewsInFlight: false,
  destinations: {}, // another server -> {lines, fetchedAt} or {error, fetchedAt}: its alert destinations
  destinationsInFlight: false,
  destinationsAskedAt: 0,
  alerts: [],
  unseenErrors: 0,
  events: null,
  runningYAML: "",
  tab: "status",
};

const $ = (selector, root = document) => root.querySelector(selector);
const el = (tag, attributes = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};
const statusClass = (word) => "s-" + String(word || "Unknown").toLowerCase().replace(/\s+/g, "-");
const badge = (word, extra = "") => el("span", { class: `badge ${statusClass(word)} ${extra}` }, word || "Unknown");

// MARK: HTTP

async function call(method, path, body, timeoutMs = 0) {
  // X-Requested-With: a 401 comes without a Basic challenge, so the browser shows no
  // password dialog of its own.
  const headers = { Accept: "application/json", "X-Requested-With": "understudy-webmanager" };
  if (method !== "GET") {
    headers["Content-Type"] = "application/json";
    if (state.csrf) headers["X-CSRF-Token"] = state.csrf;
  }
  let response;
  const abort = new AbortController();
  const timer = timeoutMs > 0 ? setTimeout(() => abort.abort(), timeoutMs) : null;
  try {
    response = await fetch(api + path, {
      method, headers, credentials: "same-origin", body: body === undefined ? undefined : JSON.stringify(body),
      signal: abort.signal,
    });
  } catch (error) {
    const reason = abort.signal.aborted ? `no answer within ${timeoutMs / 1000} s` : error.message;
    return { ok: false, status: 0, message: "the server does not answer (" + reason + ")", data: null };
  } finally {
    if (timer) clearTimeout(timer);
  }
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  const message = data && data.result ? String(data.result.message || "") : "";
  if (response.status === 401 && path !== "/login") showLogin("Your session has ended: log in again.");
  return { ok: response.ok && message === "", status: response.status, message: message || (response.ok ? "" : "HTTP " + response.status), data };
}

// MARK: Login

function showLogin(reason) {
  if (state.events) { state.events.close(); state.events = null; }
  $("#app").hidden = true;
  $("#login").hidden = false;
  $("#logout").hidden = true;
  $("#user").textContent = "";
  $("#login-error").textContent = reason || "";
  setLive(false);
}

async function login(event) {
  event.preventDefault();
  $("#login-submit").disabled = true;
  const answer = await call("POST", "/login", { username: $("#login-user").value, password: $("#login-password").value });
  $("#login-submit").disabled = false;
  $("#login-password").value = "";
  if (!answer.ok) {
    $("#login-error").textContent = answer.status === 429 ? "Too many failed logins: wait a minute." : (answer.message || "Login failed.");
    return;
  }
  adoptSession(answer.data);
  start();
}

function adoptSession(data) {
  state.csrf = (data && (data.csrfToken || data.csrf)) || state.csrf;
  sessionStorage.setItem("understudy.csrf", state.csrf);
  state.role = (data && data.role) || "viewer";
  state.user = (data && data.user) || "";
  document.body.classList.toggle("viewer", state.role !== "operator");
  $("#user").textContent = `${state.user} (${state.role})`;
  $("#logout").hidden = false;
}

async function logout() {
  await call("POST", "/logout", {});
  sessionStorage.removeItem("understudy.csrf");
  // A fresh page: nothing of the last user's session (editor, alerts, views) stays on screen.
  location.reload();
}

// MARK: Status

async function refresh() {
  const answer = await call("GET", "/status");
  if (!answer.ok || !answer.data || !answer.data.status) {
    if (answer.status !== 401) notice(`Cannot read the status: ${answer.message}`, true);
    return;
  }
  state.snapshot = answer.data.status;
  state.fetchedAt = Date.now();
  render();
  refreshDestinations();
  await refreshViews();
}

// During a partition (or with a server cut off) each server answers with its own view.
async function refreshViews() {
  const snapshot = state.snapshot;
  if (!snapshot) return;
  const disagree = snapshot.servers.some((server) => server.status !== "Online") ||
    (snapshot.configurationMismatch || []).length > 0 || snapshot.isolated;
  $("#views").hidden = !disagree;
  if (!disagree) { state.views = {}; return; }
  // One round at a time, each request bounded: during a partition a cut-off server does not
  // answer, and requests piling up would hold back the page's own status reads.
  if (state.viewsInFlight) return;
  state.viewsInFlight = true;
  const others = snapshot.servers.filter((server) => !server.isLocal).map((server) => server.name);
  try {
    await Promise.all(others.map(async (name) => {
      const answer = await call("GET", "/status?server=" + encodeURIComponent(name), undefined, 3000);
      state.views[name] = answer.ok && answer.data && answer.data.status
        ? { snapshot: answer.data.status, fetchedAt: Date.now() }
        : { error: answer.message || "no answer", fetchedAt: Date.now() };
      if (state.views[name].snapshot) state.destinations[name] = { lines: state.views[name].snapshot.alertDestinations || [], fetchedAt: Date.now() };
    }));
  } finally {
    state.viewsInFlight = false;
  }
  renderViews();
}

function notice(text, bad) {
  const box = $("#notices");
  box.replaceChildren(el("div", { class: "notice" + (bad ? " bad" : "") }, text));
}

function render() {
  const snapshot = state.snapshot;
  if (!snapshot) return;
  $("#cluster-name").textContent = snapshot.cluster;
  const overall = overallStatus(snapshot);
  $("#cluster-status").replaceWith(Object.assign(badge(overall), { id: "cluster-status" }));
  renderViewInfo();
  renderNotices(snapshot);
  renderClusterActions(snapshot);
  $("#matrix").replaceChildren(...matrixRows(snapshot, true));
  renderServers(snapshot);
  renderResources(snapshot);
  renderMonitors(snapshot);
  renderDestinations(snapshot);
  if (!$("#views").hidden) renderViews();
}

function renderNotices(snapshot) {
  const notices = [];
  if (snapshot.isolated) notices.push(el("div", { class: "notice bad" }, `${snapshot.localServer} is cut off from the cluster: it holds no group until it rejoins.`));
  if (snapshot.configuration && snapshot.configuration.outsider) {
    notices.push(el("div", { class: "notice bad" }, `${snapshot.localServer} runs another configuration than its master (version ${snapshot.configuration.version}, ${snapshot.configuration.hash}): it takes no part in placement until it runs the cluster's.`));
  }
  for (const mismatch of snapshot.configurationMismatch || []) {
    const versions = `version ${mismatch.theirVersion ?? 0} ${mismatch.theirs} there, ${mismatch.ourVersion ?? 0} ${mismatch.ours} here`;
    notices.push(el("div", { class: "notice bad" }, `${mismatch.server} runs another configuration (${versions})` +
      (mismatch.excluded ? "; it takes no part in placement." : ".")));
  }
  for (const server of snapshot.unauthenticatedServers || []) {
    notices.push(el("div", { class: "notice bad" }, `${server} is present but its heartbeats fail authentication (another cluster key?): it is never judged down and its groups are not taken over. Give every server the same key file.`));
  }
  for (const server of snapshot.withoutStateServers || []) {
    notices.push(el("div", { class: "notice bad" }, `${server}'s heartbeats arrive but its state cannot be fetched over the control channel (a one-way cut, or its control port blocked?): it is never judged down and its groups are not taken over.`));
  }
  if (snapshot.suspended) notices.push(el("div", { class: "notice" }, "The cluster is suspended: monitors and failover are paused."));
  // One notice per failing destination, naming every server it fails on (the table has each one's error).
  const failing = new Map();
  for (const [server, line] of destinationLines(snapshot).filter(([, line]) => line.failing)) {
    const key = `${line.name} (${line.type})`;
    if (!failing.has(key)) failing.set(key, { name: line.name, servers: [], error: line.lastError });
    failing.get(key).servers.push(server);
  }
  for (const [key, entry] of failing) {
    notices.push(el("div", { class: "notice bad", dataset: { failingDestination: entry.name } },
      `Alert destination ${key} is failing on ${entry.servers.join(", ")}` + (entry.error ? `: ${entry.error}` : ".")));
  }
  const ratio = snapshot.timeoutRatio;
  if (ratio && ratio.ratio !== 1) {
    const until = ratio.expiresAt ? `until ${new Date(ratio.expiresAt).toLocaleString()}` : "until reset (clptoratio -i)";
    notices.push(el("div", { class: "notice" }, `Timeouts are extended ${ratio.ratio} times ${until}: a server is judged down after ${ratio.heartbeatTimeoutMilliseconds / 1000} s of silence.`));
  }
  $("#notices").replaceChildren(...notices);
}

function overallStatus(snapshot) {
  const groups = snapshot.groups.map((group) => group.status);
  if (groups.some((word) => word.endsWith("Failure"))) return "Error";
  if (snapshot.servers.some((server) => server.status !== "Online")) return "Caution";
  if ((snapshot.monitors || []).some((monitor) => monitor.status === "Error")) return "Error";
  if ((snapshot.monitors || []).some((monitor) => monitor.status === "Caution")) return "Caution";
  return "Normal";
}

function renderViewInfo() {
  const snapshot = state.snapshot;
  const age = ((Date.now() - state.fetchedAt) / 1000).toFixed(1);
  $("#view-info").textContent = `view of ${snapshot.localServer}${snapshot.master ? ", master " + snapshot.master : ""}, ${age} s ago`;
}

function serverNames(snapshot) { return snapshot.servers.map((server) => server.name); }

// The groups × servers matrix: each cell is the group's state on that server.
function matrixRows(snapshot, withActions) {
  const names = serverNames(snapshot);
  const head = el("tr", {}, el("th", {}, "Group"), el("th", {}, "Status"), names.map((name) => el("th", {}, name)),
    withActions ? el("th", { class: "operator-only" }, "Operations") : null);
  const rows = snapshot.groups.map((group) => el("tr", { dataset: { group: group.name } },
    el("th", {}, group.name),
    el("td", {}, badge(group.status), " ", el("span", { class: "muted current-server" }, group.current || "None")),
    names.map((name) => {
      const word = (group.perServer || {})[name] || "Offline";
      return el("td", { class: "cell" + (group.current === name ? " current" : ""), dataset: { server: name } }, badge(word));
    }),
    withActions ? el("td", { class: "actions operator-only" }, groupActions(group, names)) : null));
  return [head, ...rows];
}

function groupActions(group, names) {
  const running = group.current && group.status !== "Offline";
  const actions = [];
  if (!running) {
    for (const name of names) {
      actions.push(el("button", { onclick: () => confirmAction("groups", `Start ${group.name} on ${name}`,
        `clpgrp -s ${group.name} -h ${name}`, "POST", `/groups/${group.name}/start`, { target: name }) }, `start on ${name}`));
    }
  } else {
    actions.push(el("button", { onclick: () => confirmAction("groups", `Stop ${group.name}`, `clpgrp -t ${group.name}`,
      "POST", `/groups/${group.name}/stop`, {}) }, "stop"));
    for (const name of names.filter((name) => name !== group.current)) {
      actions.push(el("button", { class: "move", dataset: { target: name }, onclick: () => confirmAction("groups", `Move ${group.name} to ${name}`,
        `clpgrp -m ${group.name} -a ${name}`, "POST", `/groups/${group.name}/move`, { target: name }) }, `move to ${name}`));
    }
  }
  return actions;
}

function renderClusterActions(snapshot) {
  const box = $("#cluster-actions");
  const button = (label, command, path, danger) => el("button", { class: danger ? "danger" : "",
    onclick: () => confirmAction("cluster", label, command, "POST", path, {}) }, label);
  box.replaceChildren(
    el("span", { class: "muted" }, "Cluster:"),
    button("Start", "clpcl -s -a", "/cluster/start"),
    button("Stop", "clpcl -t -a", "/cluster/stop", true),
    snapshot.suspended ? button("Resume", "clpcl --resume", "/cluster/resume") : button("Suspend", "clpcl --suspend", "/cluster/suspend"),
    button("Shut down all servers", "clpstdn", "/cluster/shutdown", true),
    button("Reboot all servers", "clpstdn -r", "/cluster/reboot", true));
}

function renderServers(snapshot) {
  const cards = snapshot.servers.map((server) => el("div", { class: "card", dataset: { server: server.name } },
    // A server that is down is red, as in CLUSTERPRO's WebManager.
    el("h3", {}, server.name, badge(server.status, server.status === "Offline" ? "s-error" : ""), server.isMaster ? el("span", { class: "tag" }, "master") : null,
      server.isLocal ? el("span", { class: "tag" }, "answering") : null),
    el("ul", {},
      (server.heartbeats || []).map((path) => el("li", {}, el("span", {}, `${path.name} `, el("span", { class: "muted" }, path.type)), badge(path.status))),
      (server.networkPartition || []).map((np) => el("li", {}, el("span", {}, `${np.name} `, el("span", { class: "muted" }, np.type)), badge(np.status))),
      server.controlPath ? el("li", {}, el("span", { class: "muted" }, "control"), el("span", {}, server.controlPath)) : null),
    el("div", { class: "toolbar operator-only" },
      el("button", { onclick: () => confirmAction("servers", `Shut down ${server.name}`, `clpdown -h ${server.name}`, "POST", `/servers/${server.name}/shutdown`, {}) , class: "danger" }, "shut down"),
      el("button", { onclick: () => confirmAction("servers", `Reboot ${server.name}`, `clpdown -r -h ${server.name}`, "POST", `/servers/${server.name}/reboot`, {}) }, "reboot"))));
  $("#servers").replaceChildren(...cards);
}

function renderResources(snapshot) {
  const names = serverNames(snapshot);
  const head = el("tr", {}, el("th", {}, "Resource"), el("th", {}, "Type"), el("th", {}, "Group"), names.map((name) => el("th", {}, name)),
    el("th", { class: "operator-only" }, "Operations"));
  const rows = [];
  for (const group of snapshot.groups) {
    for (const resource of group.resources) {
      rows.push(el("tr", { dataset: { resource: resource.name } },
        el("th", {}, resource.name), el("td", {}, resource.type), el("td", {}, group.name),
        names.map((name) => el("td", { class: "cell" }, badge((resource.perServer || {})[name] || "Offline"))),
        el("td", { class: "actions operator-only" },
          group.current ? [
            el("button", { onclick: () => confirmAction("resources", `Start ${resource.name} on ${group.current}`, `clprsc -s ${resource.name} -h ${group.current}`,
              "POST", `/resources/${resource.name}/start`, { target: group.current }) }, "start"),
            el("button", { onclick: () => confirmAction("resources", `Stop ${resource.name}`, `clprsc -t ${resource.name} -h ${group.current}`,
              "POST", `/resources/${resource.name}/stop`, { target: group.current }) }, "stop"),
          ] : el("span", { class: "muted" }, "group not running"))));
    }
  }
  $("#resources").replaceChildren(head, ...rows);
}

function renderMonitors(snapshot) {
  const names = serverNames(snapshot);
  const head = el("tr", {}, el("th", {}, "Monitor"), el("th", {}, "Type"), el("th", {}, "Status"), names.map((name) => el("th", {}, name)),
    el("th", { class: "operator-only" }, "Operations"));
  const rows = (snapshot.monitors || []).map((monitor) => el("tr", { dataset: { monitor: monitor.name } },
    el("th", {}, monitor.name), el("td", {}, monitor.type), el("td", {}, badge(monitor.status), monitor.detail ? el("div", { class: "muted" }, monitor.detail) : null),
    names.map((name) => el("td", { class: "cell" }, badge((monitor.perServer || {})[name] || "Unknown"))),
    el("td", { class: "actions operator-only" },
      monitor.suspended
        ? el("button", { onclick: () => confirmAction("monitors", `Resume ${monitor.name}`, `clpmonctrl -r -m ${monitor.name}`, "POST", `/monitors/${monitor.name}/resume`, {}) }, "resume")
        : el("button", { onclick: () => confirmAction("monitors", `Suspend ${monitor.name}`, `clpmonctrl -s -m ${monitor.name}`, "POST", `/monitors/${monitor.name}/suspend`, {}) }, "suspend"),
      monitor.dummyFailure
        ? el("button", { onclick: () => confirmAction("monitors", `End the dummy failure of ${monitor.name}`, `clpmonctrl -n -m ${monitor.name}`, "POST", `/monitors/${monitor.name}/dummy-failure/stop`, {}) }, "end dummy failure")
        : el("button", { class: "danger", onclick: () => confirmAction("monitors", `Dummy failure of ${monitor.name}`, `clpmonctrl -e -m ${monitor.name}`, "POST", `/monitors/${monitor.name}/dummy-failure/start`, {}) }, "dummy failure"))));
  $("#monitors").replaceChildren(head, ...rows);
}

// MARK: Alert destinations: each server's, as its alert router counts them (since its daemon
// started). The answering server's come with every status (the event stream pushes a change
// of a counter); the other servers' are asked for, one bounded round at a time.

// [server, line] for every destination known: the answering server's first, then the others'.
function destinationLines(snapshot) {
  const out = (snapshot.alertDestinations || []).map((line) => [snapshot.localServer, line]);
  for (const server of serverNames(snapshot)) {
    const known = state.destinations[server];
    if (server === snapshot.localServer || !known || !known.lines) continue;
    for (const line of known.lines) out.push([server, line]);
  }
  return out;
}

async function refreshDestinations(force = false) {
  const snapshot = state.snapshot;
  if (!snapshot || state.destinationsInFlight) return;
  // Status events can come several times a second; the others' counters are asked at most
  // once a second (and every few seconds by the timer below).
  if (!force && Date.now() - state.destinationsAskedAt < 1000) return;
  state.destinationsInFlight = true;
  state.destinationsAskedAt = Date.now();
  const shown = () => JSON.stringify(Object.entries(state.destinations).map(([name, known]) => [name, known.lines, known.error]));
  const before = shown();
  try {
    await Promise.all(snapshot.servers.filter((server) => !server.isLocal).map(async (server) => {
      if (server.status !== "Online") {
        state.destinations[server.name] = { error: `${server.name} is ${server.status} in this view`, fetchedAt: Date.now() };
        return;
      }
      const answer = await call("GET", "/status?server=" + encodeURIComponent(server.name), undefined, 3000);
      state.destinations[server.name] = answer.ok && answer.data && answer.data.status
        ? { lines: answer.data.status.alertDestinations || [], fetchedAt: Date.now() }
        : { error: answer.message || "no answer", fetchedAt: Date.now() };
    }));
  } finally {
    state.destinationsInFlight = false;
  }
  // Only what changed is drawn again (the rest of the page keeps its buttons and focus).
  if (shown() !== before && state.snapshot) {
    renderNotices(state.snapshot);
    renderDestinations(state.snapshot);
  }
}

function renderDestinations(snapshot) {
  const head = el("tr", {}, ["Server", "Destination", "Type", "State", "Delivered", "Failed", "Retried", "Dropped", "Queued", "Last error"]
    .map((title) => el("th", {}, title)));
  const rows = [];
  for (const server of serverNames(snapshot)) {
    const lines = server === snapshot.localServer
      ? { lines: snapshot.alertDestinations || [] }
      : state.destinations[server] || { error: "asking…" };
    if (lines.error) {
      rows.push(el("tr", { dataset: { server } }, el("th", {}, server), el("td", { class: "muted", colspan: 9 }, `not known: ${lines.error}`)));
      continue;
    }
    for (const line of lines.lines) {
      const count = (value, bad) => el("td", { class: "number" + (bad && value > 0 ? " bad" : "") }, String(value ?? 0));
      rows.push(el("tr", { class: line.failing ? "failing" : "", dataset: { server, destination: line.name } },
        el("th", {}, server), el("td", {}, line.name), el("td", {}, line.type),
        el("td", { class: "state" }, line.failing ? badge("Failing") : badge("Working")),
        count(line.delivered, false), count(line.failed, true), count(line.retried, false), count(line.dropped, true), count(line.queued, false),
        el("td", { class: "message" + (line.failing ? " error" : " muted") }, line.lastError || "")));
    }
  }
  $("#destinations").replaceChildren(head, ...rows);
  $("#destinations-note").textContent = !rows.some((row) => row.dataset.destination)
    ? "No alert destinations known: events go to the alert log only."
    : "Counted since each server's daemon started. A destination is failing from the first alert it gave up after every retry until one goes through.";
}

function renderViews() {
  const list = [];
  const own = state.snapshot;
  const entries = [[own.localServer, { snapshot: own, fetchedAt: state.fetchedAt }], ...Object.entries(state.views)];
  for (const [name, view] of entries) {
    const age = ((Date.now() - view.fetchedAt) / 1000).toFixed(1);
    const card = el("div", { class: "card", dataset: { view: name } },
      el("h3", {}, `View of ${name}`, el("span", { class: "muted" }, `${age} s ago`)));
    if (view.error) {
      card.append(el("p", { class: "error" }, `No answer: ${view.error}`));
    } else {
      const snapshot = view.snapshot;
      card.append(el("p", { class: "muted" }, `master ${snapshot.master || "none"}; sees ${snapshot.servers.filter((server) => server.status === "Online").map((server) => server.name).join(", ") || "nobody"}`));
      card.append(el("div", { class: "scroll" }, el("table", { class: "matrix" }, ...matrixRows(snapshot, false))));
    }
    list.push(card);
  }
  $("#view-list").replaceChildren(...list);
}

// MARK: Operations: an inline confirmation that shows the clp* command, never a modal.

function confirmAction(slot, label, command, method, path, body) {
  if (state.role !== "operator") return;
  const box = $(`#confirm-${slot}`);
  const result = el("span", { class: "result muted" });
  const go = el("button", { class: "primary confirm-go" }, "Confirm");
  const cancel = el("button", { onclick: () => box.replaceChildren() }, "Cancel");
  go.addEventListener("click", async () => {
    go.disabled = true;
    result.textContent = "sending…";
    const answer = await call(method, path, body);
    result.textContent = answer.ok ? "accepted" : `refused: ${answer.message}`;
    result.className = "result " + (answer.ok ? "muted" : "error");
    go.remove();
    cancel.textContent = "Close";
    refresh();
  });
  box.replaceChildren(el("div", { class: "confirm", role: "group" }, el("strong", {}, label + "?"),
    el("span", {}, "Same as ", el("code", {}, command)), go, cancel, result));
  go.focus();
}

// MARK: Alerts

async function loadAlerts() {
  const answer = await call("GET", "/alerts?scope=cluster&limit=2000");
  if (!answer.ok || !answer.data) return;
  state.alerts = answer.data.alerts || [];
  const missing = answer.data.unreachable || [];
  $("#alert-missing").textContent = missing.length ? `Not shown: the alerts of ${missing.join(", ")} (no answer).` : "";
  renderAlerts();
}

function renderAlerts() {
  const server = $("#alert-server").value, level = $("#alert-level").value;
  const module = $("#alert-module").value.trim().toLowerCase(), text = $("#alert-text").value.trim().toLowerCase();
  const servers = new Set(state.alerts.map((alert) => alert.server));
  const select = $("#alert-server");
  for (const name of servers) {
    if (![...select.options].some((option) => option.value === name)) select.append(el("option", { value: name }, name));
  }
  const rows = state.alerts
    .filter((alert) => (!server || alert.server === server) && (!level || String(alert.level).toUpperCase() === level) &&
      (!module || String(alert.module).toLowerCase().includes(module)) && (!text || String(alert.message).toLowerCase().includes(text)))
    .sort((a, b) => String(b.time).localeCompare(String(a.time)))
    .slice(0, 2000)
    .map((alert) => el("tr", { class: "level-" + ({ ERROR: "error", WARN: "warning" }[String(alert.level).toUpperCase()] || "info") }, el("td", {}, alert.time), el("td", {}, alert.server), el("td", {}, alert.level),
      el("td", {}, `${alert.module} ${alert.id ?? alert.eventID ?? ""}`), el("td", { class: "message" }, alert.message)));
  $("#alerts").replaceChildren(el("tr", {}, el("th", {}, "Time"), el("th", {}, "Server"), el("th", {}, "Level"), el("th", {}, "Event"), el("th", {}, "Message")), ...rows);
  $("#alert-count").textContent = state.unseenErrors > 0 ? String(state.unseenErrors) : "";
}

// MARK: Live updates

function setLive(on) {
  const live = $("#live");
  live.className = "live " + (on ? "on" : "off");
  live.textContent = on ? "live" : "reconnecting";
}

function connectEvents() {
  if (state.events) state.events.close();
  const events = new EventSource(api + "/events");
  state.events = events;
  events.onopen = () => { setLive(true); refresh(); };
  events.onerror = () => setLive(false);
  events.addEventListener("status", (message) => {
    try {
      const data = JSON.parse(message.data);
      const snapshot = data.status || data;
      if (snapshot && snapshot.servers && snapshot.localServer) {
        state.snapshot = snapshot;
        state.fetchedAt = Date.now();
        render();
        refreshDestinations();
        refreshViews();
        return;
      }
    } catch (_) { /* a bare notification: read the status */ }
    refresh();
  });
  events.addEventListener("alert", (message) => {
    try {
      const alert = JSON.parse(message.data);
      state.alerts.push(alert.alert || alert);
      if (String(alert.level || (alert.alert || {}).level).toUpperCase() === "ERROR" && state.tab !== "alerts") state.unseenErrors += 1;
      renderAlerts();
    } catch (_) { /* ignore a malformed line */ }
  });
}

// MARK: Config mode

function renderGutter(badLines = new Set()) {
  const lines = $("#yaml").value.split("\n").length;
  const gutter = $("#gutter");
  gutter.replaceChildren(...Array.from({ length: lines }, (_, index) => {
    const number = index + 1;
    return el("span", { class: badLines.has(number) ? "bad" : "", dataset: { line: number } }, String(number) + "\n");
  }));
  gutter.scrollTop = $("#yaml").scrollTop;
}

function goToLine(line) {
  const area = $("#yaml");
  const lines = area.value.split("\n");
  const start = lines.slice(0, line - 1).reduce((sum, text) => sum + text.length + 1, 0);
  area.focus();
  area.setSelectionRange(start, start + (lines[line - 1] || "").length);
  area.scrollTop = Math.max(0, (line - 5) * parseFloat(getComputedStyle(area).lineHeight));
}

async function loadRunningConfig() {
  const answer = await call("GET", "/config");
  if (!answer.ok || !answer.data) { $("#config-state").textContent = `Cannot read the configuration: ${answer.message}`; return; }
  state.runningYAML = answer.data.yaml || "";
  $("#yaml").value = state.runningYAML;
  $("#config-state").textContent = `Running configuration${answer.data.version ? " version " + answer.data.version : ""}.`;
  clearConfigResults();
  renderGutter();
}

function clearConfigResults() {
  $("#config-errors").replaceChildren();
  $("#config-changes").replaceChildren();
  $("#config-diff").replaceChildren();
  $("#confirm-config").replaceChildren();
}

// Checks the editor's text: errors at their lines, the diff, the reflection method of each change.
async function checkConfig() {
  clearConfigResults();
  const answer = await call("POST", "/config/check", { yaml: $("#yaml").value });
  const data = answer.data || {};
  const errors = data.errors || [];
  const bad = new Set(errors.filter((error) => error.severity !== "warning").map((error) => error.line).filter(Boolean));
  renderGutter(bad);
  $("#config-errors").replaceChildren(...errors.map((error) => el("li", {
    class: error.severity === "warning" ? "" : "error", onclick: () => error.line && goToLine(error.line),
  }, `${error.line ? "line " + error.line + ": " : ""}${error.keyPath ? error.keyPath + ": " : ""}${error.message}`)));
  if (!answer.ok && errors.length === 0) {
    $("#config-errors").replaceChildren(el("li", { class: "error" }, answer.message));
    return { ok: false };
  }
  const changes = data.changes || [];
  if (data.reflection || changes.length) {
    $("#config-changes").replaceChildren(
      el("p", {}, el("strong", {}, "To apply: "), data.reflection ? data.reflection.text || data.reflection : "nothing to do"),
      el("ul", { class: "changes" }, changes.map((change) => el("li", {}, `${change.text || change.description || change.path}`,
        change.method ? el("span", { class: "muted" }, ` — ${change.method.text || change.method}`) : null))));
  }
  $("#config-diff").replaceChildren(...diffLines(state.runningYAML, $("#yaml").value));
  return { ok: answer.ok && !errors.some((error) => error.severity !== "warning"), data };
}

// A line diff (longest common subsequence, bounded to keep the page responsive).
function diffLines(before, after) {
  const a = before.split("\n"), b = after.split("\n");
  if (a.length * b.length > 4_000_000) return [el("span", {}, "(too large to compare here)")];
  const table = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) for (let j = b.length - 1; j >= 0; j--)
    table[i][j] = a[i] === b[j] ? table[i + 1][j + 1] + 1 : Math.max(table[i + 1][j], table[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) { i++; j++; continue; }
    if (j < b.length && (i >= a.length || table[i][j + 1] >= table[i + 1][j])) out.push(el("span", { class: "add" }, `+${j + 1}: ${b[j++]}\n`));
    else out.push(el("span", { class: "del" }, `-${i + 1}: ${a[i++]}\n`));
  }
  return out.length ? out : [el("span", { class: "muted" }, "No change.")];
}

async function applyConfig() {
  const checked = await checkConfig();
  if (!checked.ok) return;
  const box = $("#confirm-config");
  const result = el("span", { class: "result muted" });
  const go = el("button", { class: "primary confirm-go" }, "Apply to every server");
  go.addEventListener("click", async () => {
    go.disabled = true;
    result.textContent = "applying…";
    const answer = await call("POST", "/config/apply", { yaml: $("#yaml").value });
    result.textContent = answer.ok ? `applied${answer.data && answer.data.version ? " (version " + answer.data.version + ")" : ""}` : `refused: ${answer.message}`;
    result.className = "result " + (answer.ok ? "muted" : "error");
    if (answer.ok) { state.runningYAML = $("#yaml").value; go.remove(); }
  });
  box.replaceChildren(el("div", { class: "confirm" }, el("strong", {}, "Apply this configuration?"),
    el("span", {}, "Same as ", el("code", {}, "understudy config apply cluster.yaml")), go,
    el("button", { onclick: () => box.replaceChildren() }, "Cancel"), result));
}

// The forms write YAML into the editor, at the end of their section; the operator reviews it.
function insertIntoSection(section, snippet) {
  const area = $("#yaml");
  const lines = area.value.replace(/\s+$/, "").split("\n");
  let start = lines.findIndex((line) => line.startsWith(section + ":"));
  if (start < 0) { lines.push(section + ":"); start = lines.length - 1; }
  let end = start + 1;
  while (end < lines.length && (lines[end] === "" || /^[\s#-]/.test(lines[end]))) end++;
  lines.splice(end, 0, ...snippet.split("\n"));
  area.value = lines.join("\n") + "\n";
  renderGutter();
  goToLine(end + 1);
}

function addGroup(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const name = form.get("name");
  const servers = String(form.get("servers")).split(/[\s,]+/).filter(Boolean);
  insertIntoSection("groups", [
    `  - name: ${name}`, `    servers: [${servers.join(", ")}]`, "    resources:",
    `      - {name: ${name}-fip, type: fip, address: ${form.get("address")}}`,
    `      - {name: ${name}-exec, type: exec, start: ${form.get("start")}, stop: ${form.get("stop")}}`,
  ].join("\n"));
  event.target.reset();
}

function addMonitor(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const type = form.get("type");
  const key = { genw: "script", ipw: "addresses", diskw: "device", pidw: "target" }[type];
  const target = type === "ipw" ? `[${form.get("target")}]` : form.get("target");
  insertIntoSection("monitors", `  - {name: ${form.get("name")}, type: ${type}, ${key}: ${target}, interval: ${form.get("interval")}, recovery: {target: ${form.get("recovery")}}}`);
  event.target.reset();
}

// MARK: Tabs and start

function selectTab(name) {
  state.tab = name;
  for (const button of document.querySelectorAll("nav#tabs button")) button.setAttribute("aria-selected", String(button.dataset.tab === name));
  for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== "tab-" + name;
  window.scrollTo(0, 0);
  if (name === "alerts") { state.unseenErrors = 0; loadAlerts(); }
  if (name === "config" && !$("#yaml").value) loadRunningConfig();
}

async function start() {
  $("#login").hidden = true;
  $("#app").hidden = false;
  await refresh();
  connectEvents();
  loadAlerts();
}

document.addEventListener("DOMContentLoaded", async () => {
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  for (const button of document.querySelectorAll("nav#tabs button")) button.addEventListener("click", () => selectTab(button.dataset.tab));
  for (const id of ["#alert-server", "#alert-level", "#alert-module", "#alert-text"]) $(id).addEventListener("input", renderAlerts);
  $("#config-reload").addEventListener("click", loadRunningConfig);
  $("#config-check").addEventListener("click", checkConfig);
  $("#config-apply").addEventListener("click", applyConfig);
  $("#form-group").addEventListener("submit", addGroup);
  $("#form-monitor").addEventListener("submit", addMonitor);
  $("#yaml").addEventListener("input", () => renderGutter());
  $("#yaml").addEventListener("scroll", () => { $("#gutter").scrollTop = $("#yaml").scrollTop; });
  setInterval(() => { if (state.snapshot) renderViewInfo(); }, 1000);
  // The other servers' alert destinations: no event stream of theirs reaches this page.
  setInterval(() => { if (state.snapshot && state.tab === "status" && !document.hidden) refreshDestinations(true); }, 3000);
  // An existing session (cookie) answers /session; otherwise log in.
  const session = await call("GET", "/session");
  if (session.ok && session.data) { adoptSession(session.data); start(); } else showLogin("");
});
