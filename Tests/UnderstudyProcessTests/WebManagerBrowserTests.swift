import Foundation
import Testing
import UnderstudyModel
import UnderstudyTestSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Issue 16: the WebManager in a real headless Chromium against three daemons over HTTPS:
/// log in, see the cluster, move a group and see the matrix follow without a reload, see an
/// alert destination that fails (a webhook to a closed loopback port) marked failing with its
/// counts on the server it fails on, kill -9 a daemon and see it go red and its group fail
/// over, change a monitor in config mode and apply it to every server, log in as a viewer,
/// and the page at a phone's size.
@Suite("Process: WebManager in a browser", .serialized)
struct WebManagerBrowserTests {
    static let operatorPassword = "0perator-Pa55-wm"
    static let viewerPassword = "v1ewer-Pa55-wm"

    func shot(_ browser: WebDriverSession, _ name: String) async {
        try? await browser.screenshot(to: TestArtifacts.path("webmanager-\(name).png"))
    }

    func logIn(_ browser: WebDriverSession, user: String, password: String) async throws {
        try await browser.waitUntil("the login form") { try await browser.findAll("#login-form").count == 1 }
        try await browser.waitUntil("the login form shown") {
            try await browser.holds("return !document.getElementById('login').hidden")
        }
        let name = try await browser.find("#login-user")
        try await browser.clear(name)
        try await browser.type(user, into: name)
        try await browser.type(password, into: try await browser.find("#login-password"))
        try await browser.click(try await browser.find("#login-submit"))
        try await browser.waitUntil("the status page after login", timeout: .seconds(15)) {
            try await browser.holds(
                "return !document.getElementById('app').hidden && document.querySelectorAll('#matrix tr[data-group]').length > 0")
        }
    }

    /// Clicks a control of the top toolbar with the page scrolled to the top (WebDriver scrolls
    /// an element to the very top of the window, under the sticky header).
    func clickAtTop(_ browser: WebDriverSession, _ selector: String) async throws {
        _ = try await browser.execute("window.scrollTo(0, 0)")
        try await browser.click(try await browser.find(selector))
    }

    func currentServer(_ browser: WebDriverSession, group: String) async throws -> String? {
        try await browser.textOf("#matrix tr[data-group='\(group)'] .current-server")
    }

    /// The cells of one alert destination's row in the page: state, delivered, failed,
    /// retried, dropped, queued, last error (empty while the row is not shown).
    func destinationRow(_ browser: WebDriverSession, server: String, destination: String) async throws -> [String] {
        let cells = try await browser.execute(
            "const r = document.querySelector(\"#destinations tr[data-server='\(server)'][data-destination='\(destination)']\"); return r ? [...r.querySelectorAll('td')].slice(2).map(td => td.textContent) : []"
        )
        return cells as? [String] ?? []
    }

    /// A loopback TCP port nothing listens on (bound, then closed again: a connection is refused).
    static func closedLoopbackPort() throws -> Int {
        let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard probe >= 0 else { throw POSIXError(.EMFILE) }
        defer { close(probe) }
        let address = try makeSocketAddress("127.0.0.1", 0)
        guard withSocketAddress(address, { bind(probe, $0, $1) }) == 0 else { throw POSIXError(.EADDRINUSE) }
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(probe, $0, &length) }
        }
        return Int(UInt16(bigEndian: bound.sin_port))
    }

    @Test(
        "log in, the matrix, move without reload, a failing alert destination, kill -9 turns red and fails over, config mode applies to every server, viewer, phone",
        .requires(WebDriverSession.chromium, TestCertificates.openssl))
    func operateInABrowser() async throws {
        var spec = ClusterSpec(subnet: 180)
        spec.groups = [.simple("grp1")]
        spec.monitors = """
              - name: genw1
                type: genw
                script: check.sh
                interval: 500ms
                timeout: 5s
                recovery: {target: local-server, final-action: none}

            """
        spec.web = """
                listen: heartbeat-addresses
                certificate: web.pem
                key: web.key

            """
        // clplogcmd's events go to a webhook nobody listens for (refused: it fails) and to a
        // command that takes them (it works), on every server.
        let refusedPort = try Self.closedLoopbackPort()
        spec.alerts = """
            alerts:
              destinations:
                - {name: chat, type: webhook, url: "http://127.0.0.1:\(refusedPort)/hook", timeout: 2s}
                - {name: agent, type: command, path: agent.sh, timeout: 5s}
              routes:
                - {match: {module: logcmd}, to: [chat, agent]}
              retry: {attempts: 2, backoff: 100ms, max-backoff: 100ms}

            """
        try await withCluster(spec) { cluster in
            _ = try TestCertificates.selfSigned(
                in: cluster.folder, name: "web", ipAddresses: spec.servers.map { spec.address(of: $0) }, dnsNames: [])
            try cluster.write("#!/bin/sh\nexit 0\n", to: cluster.folder + "/check.sh", mode: 0o755)
            try cluster.write("#!/bin/sh\nexit 0\n", to: cluster.folder + "/agent.sh", mode: 0o755)
            try await cluster.addWebUser("admin", role: "operator", password: Self.operatorPassword)
            try await cluster.addWebUser("watcher", role: "viewer", password: Self.viewerPassword)
            try cluster.start()
            _ = try await cluster.waitUntilFormed(group: "grp1", on: "node1")

            let browser = try await WebDriverSession.start()
            do {
                try await browser.navigate(to: "https://\(spec.address(of: "node1")):\(spec.httpPort)/")
                try await logIn(browser, user: "admin", password: Self.operatorPassword)
                #expect(try await browser.findAll("#servers .card").count == 3)
                #expect(try await browser.findAll("#matrix tr:first-child th").count == 2 + 3 + 1)
                #expect(try await currentServer(browser, group: "grp1") == "node1")
                await shot(browser, "1-status")

                // Move grp1 to node2: inline confirmation naming the clp command, then the matrix follows live.
                _ = try await browser.execute("window.understudyNoReload = true")
                try await browser.click(try await browser.find("#matrix tr[data-group='grp1'] button.move[data-target='node2']"))
                let confirmation = try await browser.textOf("#confirm-groups .confirm") ?? ""
                #expect(confirmation.contains("clpgrp -m grp1 -a node2"), "\(confirmation)")
                try await browser.click(try await browser.find("#confirm-groups .confirm-go"))
                try await browser.waitUntil("grp1 on node2 in the matrix", timeout: .seconds(30)) {
                    let current = try await currentServer(browser, group: "grp1")
                    let cell = try await browser.textOf("#matrix tr[data-group='grp1'] td.cell.current .badge")
                    return current == "node2" && cell == "Online"
                }
                #expect(try await browser.holds("return window.understudyNoReload === true"), "the page reloaded")
                await shot(browser, "2-moved")

                // clptoratio on a server: the notice appears live, and goes with the reset.
                let raised = try await cluster.cli(["clptoratio", "-r", "5", "-t", "2h"], on: "node3")
                #expect(raised.exitCode == 0, "\(raised)")
                try await browser.waitUntil("the timeout ratio notice", timeout: .seconds(15)) {
                    (try await browser.textOf("#notices") ?? "").contains("Timeouts are extended 5 times")
                }
                #expect(try await cluster.cli(["clptoratio", "-i"], on: "node3").exitCode == 0)
                try await browser.waitUntil("the notice gone after the reset", timeout: .seconds(15)) {
                    !((try await browser.textOf("#notices") ?? "").contains("Timeouts are extended"))
                }

                // Alert destinations: every server's, working before anything is sent.
                try await browser.waitUntil("every server's alert destinations", timeout: .seconds(15)) {
                    try await browser.findAll("#destinations tr[data-destination]").count == 6
                }
                #expect(try await destinationRow(browser, server: "node3", destination: "chat").first == "Working")
                // Two events on node1: its webhook gives both up (refused) and shows failing with
                // their count, live; the command took them. node2's and node3's stay working.
                for text in ["first for the webhook", "second for the webhook"] {
                    let logged = try await cluster.cli(["clplogcmd", "-m", text], on: "node1")
                    #expect(logged.exitCode == 0, "\(logged)")
                }
                try await browser.waitUntil("node1's webhook failing with 2 failures", timeout: .seconds(20)) {
                    let row = try await destinationRow(browser, server: "node1", destination: "chat")
                    return row.count == 7 && row[0] == "Failing" && row[2] == "2"
                }
                let chat = try await destinationRow(browser, server: "node1", destination: "chat")
                try #require(chat.count == 7, "\(chat)")
                #expect(chat[1] == "0" && chat[3] == "2" && chat[6].contains("127.0.0.1:\(refusedPort)"), "\(chat)")
                #expect(
                    try await browser.holds(
                        "return document.querySelector(\"#destinations tr[data-server='node1'][data-destination='chat']\").classList.contains('failing')"
                    ))
                #expect(
                    (try await browser.textOf("#notices [data-failing-destination='chat']") ?? "").hasPrefix(
                        "Alert destination chat (webhook) is failing on node1: "))
                try await browser.waitUntil("node1's command destination took both", timeout: .seconds(20)) {
                    let row = try await destinationRow(browser, server: "node1", destination: "agent")
                    return row.first == "Working" && row.count == 7 && row[1] == "2" && row[2] == "0"
                }
                #expect(try await destinationRow(browser, server: "node3", destination: "chat").first == "Working")
                // The page shows what the daemon counts.
                let counted = try #require(await cluster.status(on: "node1")?.alertDestinations?.first { $0.name == "chat" })
                #expect(counted.failing && counted.failed == 2, "\(counted)")
                // Another server's failing destination shows too (the page asks it for its counters).
                #expect(try await cluster.cli(["clplogcmd", "-m", "from node3"], on: "node3").exitCode == 0)
                try await browser.waitUntil("node3's webhook failing", timeout: .seconds(20)) {
                    let row = try await destinationRow(browser, server: "node3", destination: "chat")
                    return row.count == 7 && row[0] == "Failing" && row[2] == "1"
                }
                #expect(try await destinationRow(browser, server: "node2", destination: "chat").first == "Working")
                try await browser.waitUntil("one notice naming both servers", timeout: .seconds(10)) {
                    (try await browser.textOf("#notices [data-failing-destination='chat']") ?? "").hasPrefix(
                        "Alert destination chat (webhook) is failing on node1, node3: ")
                }
                #expect(try await browser.findAll("#notices [data-failing-destination]").count == 1)
                #expect(try await browser.holds("return window.understudyNoReload === true"), "the page reloaded")
                _ = try await browser.execute("document.getElementById('destinations').scrollIntoView()")
                await shot(browser, "2b-alert-destinations")
                _ = try await browser.execute("window.scrollTo(0, 0)")

                // kill -9 of node2: its card turns red, grp1 fails over, all without a reload.
                cluster.send(SIGKILL, to: "node2")
                try await browser.waitUntil("node2 shown down", timeout: .seconds(30)) {
                    try await browser.execute(
                        "const b = document.querySelector(\"#servers .card[data-server='node2'] h3 .badge\"); return b ? getComputedStyle(b).backgroundColor : ''"
                    ) as? String == "rgb(197, 34, 31)"
                }
                try await browser.waitUntil("grp1 failed over", timeout: .seconds(40)) {
                    let current = try await currentServer(browser, group: "grp1")
                    let status = try await browser.textOf("#matrix tr[data-group='grp1'] td:nth-child(2) .badge")
                    return current != nil && current != "node2" && current != "None" && status == "Online"
                }
                #expect(try await browser.holds("return window.understudyNoReload === true"), "the page reloaded")
                #expect(try await browser.findAll("#views:not([hidden]) .card").count >= 2, "no side-by-side views during the outage")
                await shot(browser, "3-failed-over")

                // The alert view: every server's log merged; the dead server named as missing.
                try await browser.click(try await browser.find("nav#tabs button[data-tab='alerts']"))
                try await browser.waitUntil("alerts of node1 and node3") {
                    try await browser.holds(
                        "const s = new Set([...document.querySelectorAll('#alerts tr td:nth-child(2)')].map(td => td.textContent)); return s.has('node1') && s.has('node3')"
                    )
                }
                #expect((try await browser.textOf("#alert-missing") ?? "").contains("node2"))
                _ = try await browser.execute(
                    "const s = document.getElementById('alert-server'); s.value = 'node3'; s.dispatchEvent(new Event('input'));")
                #expect(
                    try await browser.holds(
                        "const c = [...document.querySelectorAll('#alerts tr td:nth-child(2)')].map(td => td.textContent); return c.length > 0 && c.every(x => x === 'node3')"
                    ))
                await shot(browser, "3b-alerts")

                // Config mode: change the monitor's interval, see the diff and the reflection method, apply.
                try await browser.click(try await browser.find("nav#tabs button[data-tab='config']"))
                try await browser.waitUntil("the running configuration in the editor") {
                    (try await browser.execute("return document.getElementById('yaml').value") as? String ?? "").contains("genw1")
                }
                _ = try await browser.execute(
                    "const a = document.getElementById('yaml'); a.value = a.value.replace('interval: 500ms', 'interval: 700ms'); a.dispatchEvent(new Event('input'));"
                )
                try await clickAtTop(browser, "#config-check")
                try await browser.waitUntil("the reflection method") {
                    (try await browser.textOf("#config-changes") ?? "").contains("suspend and resume")
                }
                let diff = try await browser.textOf("#config-diff") ?? ""
                #expect(diff.contains("+") && diff.contains("700ms"), "\(diff)")
                await shot(browser, "4-config-check")
                try await clickAtTop(browser, "#config-apply")
                try await browser.waitUntil("the apply confirmation") {
                    try await browser.findAll("#confirm-config .confirm-go").count == 1
                }
                try await browser.click(try await browser.find("#confirm-config .confirm-go"))
                try await browser.waitUntil("applied", timeout: .seconds(30)) {
                    (try await browser.textOf("#confirm-config .result") ?? "").hasPrefix("applied")
                }
                await shot(browser, "5-applied")
                for server in ["node1", "node3"] {
                    let answer = try await CommandRunner.run(
                        "/usr/bin/curl",
                        [
                            "-sS", "--cacert", cluster.folder + "/web.pem", "-u", "admin:\(Self.operatorPassword)",
                            "https://\(spec.address(of: server)):\(spec.httpPort)/api/v1/config",
                        ], scratch: cluster.folder)
                    #expect(answer.standardOutput.contains("interval: 700ms"), "\(server): \(answer)")
                }

                // A page that fails validation shows the error at its line.
                _ = try await browser.execute(
                    "const a = document.getElementById('yaml'); a.value = a.value.replace('interval: 700ms', 'interval: soon'); a.dispatchEvent(new Event('input'));"
                )
                try await clickAtTop(browser, "#config-check")
                try await browser.waitUntil("the validation error") {
                    (try await browser.textOf("#config-errors") ?? "").contains("monitors[0].interval")
                }
                #expect(try await browser.findAll("#gutter .bad").count == 1)

                // A viewer sees no operation controls.
                try await browser.click(try await browser.find("#logout"))
                try await logIn(browser, user: "watcher", password: Self.viewerPassword)
                #expect(
                    try await browser.holds(
                        "return [...document.querySelectorAll('.operator-only')].filter(e => e.offsetParent !== null).length === 0"))

                // A phone: nothing wider than the screen but the tables' own scroll boxes.
                try await browser.setWindowSize(width: 390, height: 844)
                try await browser.waitUntil("the phone layout") {
                    try await browser.holds("return document.documentElement.scrollWidth <= window.innerWidth + 1")
                }
                await shot(browser, "6-phone")
            } catch {
                await shot(browser, "failure")
                let console = await browser.consoleMessages()
                if !console.isEmpty { Issue.record("browser console: \(console.joined(separator: "\n"))") }
                await browser.quit()
                throw error
            }
            await browser.quit()
        }
    }
}
