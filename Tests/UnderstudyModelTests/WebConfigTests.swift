import Testing

@testable import UnderstudyModel

/// `cluster.web` and `cluster.ports.api`: defaults, and each mistake with its line and key.
@Suite("Config: web server")
struct WebConfigTests {
    func withWeb(_ lines: String) -> String {
        baseCluster.replacingOccurrences(of: "  name: c1\n", with: "  name: c1\n" + lines) + baseGroup
    }

    @Test func absentMeansNoWebServer() throws {
        let loaded = try load(baseCluster + baseGroup)
        #expect(loaded.config.cluster.web == nil)
        #expect(loaded.config.cluster.ports.api == nil)
        #expect(loaded.config.cluster.ports.http == 29003)
    }

    @Test func defaultsAndValues() throws {
        let loaded = try load(
            withWeb(
                """
                  ports: {api: 29009}
                  web:
                    certificate: tls/web.crt
                    key: /etc/understudy/web.key
                    listen: heartbeat-addresses
                    session-timeout: 10m
                    client-addresses: {operator: [10.0.0.0/24], viewer: [10.0.0.0/16, 192.168.1.7]}

                """), sourcePath: "/etc/understudy/cluster.yaml")
        let web = try #require(loaded.config.cluster.web)
        #expect(web.tls)
        #expect(web.certificate == "/etc/understudy/tls/web.crt")
        #expect(web.usersFile == "/etc/understudy/users.yaml")
        #expect(web.listen == .heartbeatAddresses)
        #expect(web.sessionTimeout == .seconds(600))
        #expect(web.maxBodySize == 64 * 1024)
        #expect(web.clientAddresses[.viewer] == ["10.0.0.0/16", "192.168.1.7"])
        #expect(loaded.config.cluster.ports.api == 29009)
    }

    @Test func plainHTTPNeedsNoCertificate() throws {
        let loaded = try load(withWeb("  web: {tls: false, listen: [127.0.0.1, \"::1\"]}\n"))
        #expect(loaded.config.cluster.web?.tls == false)
        #expect(loaded.config.cluster.web?.listen == .addresses(["127.0.0.1", "::1"]))
    }

    @Test func tlsWithoutCertificateNamesTheSection() {
        expectError(withWeb("  web:\n    listen: all\n"), line: 3, keyPath: "cluster.web", "HTTPS needs a certificate")
    }

    @Test func badListenAddress() {
        expectError(withWeb("  web: {tls: false, listen: [10.0.0.300]}\n"), line: 3, keyPath: "cluster.web.listen[0]", "not an IP address")
        expectError(withWeb("  web: {tls: false, listen: everywhere}\n"), line: 3, keyPath: "cluster.web.listen", "heartbeat-addresses")
    }

    @Test func badClientAddressAndRole() {
        expectError(
            withWeb("  web: {tls: false, client-addresses: {operator: [10.0.0.0/40]}}\n"), line: 3,
            keyPath: "cluster.web.client-addresses.operator[0]", "prefix length")
        expectError(
            withWeb("  web: {tls: false, client-addresses: {admin: [10.0.0.1]}}\n"), line: 3, keyPath: "cluster.web.client-addresses.admin",
            "unknown key")
    }

    @Test func apiPortMustDiffer() {
        expectError(withWeb("  ports: {http: 29003, api: 29003}\n"), line: 3, keyPath: "cluster.ports.api", "must differ")
    }

    @Test func bodyLimitAndTimeoutRanges() {
        expectError(withWeb("  web: {tls: false, max-body-size: 10}\n"), line: 3, keyPath: "cluster.web.max-body-size", "from 1024")
        expectError(
            withWeb("  web: {tls: false, session-timeout: 0s}\n"), line: 3, keyPath: "cluster.web.session-timeout", "greater than zero")
    }
}

/// `cluster.web.metrics`: who may scrape `GET /metrics` without a login.
@Suite("Config: web metrics access")
struct WebMetricsConfigTests {
    func withWeb(_ lines: String) -> String {
        baseCluster.replacingOccurrences(of: "  name: c1\n", with: "  name: c1\n" + lines) + baseGroup
    }

    @Test func defaultNeedsALogin() throws {
        let loaded = try load(withWeb("  web: {tls: false}\n"))
        #expect(loaded.config.cluster.web?.metricsUnauthenticatedFrom == [])
    }

    @Test func allowList() throws {
        let loaded = try load(withWeb("  web:\n    tls: false\n    metrics: {unauthenticated-from: [10.0.0.5, 192.168.0.0/24]}\n"))
        #expect(loaded.config.cluster.web?.metricsUnauthenticatedFrom == ["10.0.0.5", "192.168.0.0/24"])
    }

    @Test func badEntriesNamedWithLineAndKey() {
        expectError(
            withWeb("  web:\n    tls: false\n    metrics: {unauthenticated-from: [10.0.0.0/40]}\n"), line: 5,
            keyPath: "cluster.web.metrics.unauthenticated-from[0]")
        expectError(withWeb("  web:\n    tls: false\n    metrics: {open: true}\n"), line: 5, keyPath: "cluster.web.metrics.open")
    }
}
