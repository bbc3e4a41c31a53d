import Foundation
import Synchronization
import Testing
import UnderstudyEngine
import UnderstudyModel
import UnderstudyTestSupport

@testable import UnderstudyNode

/// The witness over HTTPS: a server certificate checked against the configured CA file and
/// the witness's address or name; plain HTTP to an HTTPS witness, a foreign certificate and a
/// wrong name all fail (the path is down, the resolution lost), never fall back to plain text.
@Suite("Witness over TLS")
struct WitnessTLSTests {
    let key = TransportTestSupport.key

    func resolve() -> WitnessMessage.Request {
        .resolve(cluster: "c1", heartbeatTimeout: .seconds(3), servers: ["node1", "node2"], view: ["node1", "node2"])
    }

    /// Each client is a new boot of node1 (the witness refuses an older boot than it saw).
    func client(port: Int, tls: WitnessTLS?) -> WitnessClient {
        WitnessClient(
            endpoint: WitnessEndpoint(host: "127.0.0.1", port: port, tls: tls), cluster: "c1", me: "node1", key: key,
            bootID: Self.nextBoot.add(1, ordering: .relaxed).newValue)
    }
    static let nextBoot = Atomic<UInt64>(0)

    @Test(
        "HTTPS witness: the right CA and address verify; plain HTTP, a foreign CA or a wrong name fail", .requires(TestCertificates.openssl)
    )
    func httpsExchange() async throws {
        let folder = NSTemporaryDirectory() + "understudy-witness-tls-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let witnessPair = try TestCertificates.selfSigned(in: folder, name: "witness", dnsNames: ["witness.example"])
        // Names only: the address connected to is in no IP entry.
        let namedPair = try TestCertificates.selfSigned(in: folder, name: "named", ipAddresses: [], dnsNames: ["witness.example"])
        let foreign = try TestCertificates.selfSigned(in: folder, name: "foreign")
        let service = WitnessService(keys: ["c1": key], bootID: 7, started: ContinuousClock.now - .seconds(3600))
        let server = try await WitnessServer.start(
            host: "127.0.0.1", port: 0, service: service,
            tls: try TLSContexts.server(certificateFile: witnessPair.certificate, keyFile: witnessPair.key))
        let named = try await WitnessServer.start(
            host: "127.0.0.1", port: 0, service: service,
            tls: try TLSContexts.server(certificateFile: namedPair.certificate, keyFile: namedPair.key))
        defer {
            Task {
                await server.close()
                await named.close()
            }
        }
        let port = try #require(server.port)
        let namedPort = try #require(named.port)

        // Checked against the IP entry of the address connected to.
        let answer = try await client(port: port, tls: WitnessTLS(caFile: witnessPair.certificate)).exchange(
            resolve(), timeout: .seconds(3))
        #expect(answer.verdict == .granted)
        // Checked against a DNS name of the certificate.
        let byName = try await client(port: namedPort, tls: WitnessTLS(caFile: namedPair.certificate, serverName: "witness.example"))
            .exchange(resolve(), timeout: .seconds(3))
        #expect(byName.verdict == .granted)

        await #expect(throws: WitnessExchangeError.self) {
            try await client(port: port, tls: nil).exchange(resolve(), timeout: .seconds(2))
        }
        await #expect(throws: WitnessExchangeError.self) {
            try await client(port: port, tls: WitnessTLS(caFile: foreign.certificate)).exchange(resolve(), timeout: .seconds(2))
        }
        await #expect(throws: WitnessExchangeError.self) {
            try await client(port: namedPort, tls: WitnessTLS(caFile: namedPair.certificate, serverName: "other.example"))
                .exchange(resolve(), timeout: .seconds(2))
        }
        await #expect(throws: WitnessExchangeError.self) {
            try await client(port: namedPort, tls: WitnessTLS(caFile: namedPair.certificate)).exchange(resolve(), timeout: .seconds(2))
        }
        await server.close()
        await named.close()
    }

    @Test("a CA file that is missing or holds no certificate is a clear error on every exchange")
    func unreadableCAFile() async throws {
        let folder = NSTemporaryDirectory() + "understudy-witness-tls-ca-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "not a certificate\n".write(toFile: folder + "/garbage.pem", atomically: true, encoding: .utf8)
        for file in [folder + "/missing.pem", folder + "/garbage.pem"] {
            do {
                _ = try await client(port: 9, tls: WitnessTLS(caFile: file)).exchange(resolve(), timeout: .seconds(1))
                Issue.record("an exchange with an unusable CA file succeeded")
            } catch let error as WitnessExchangeError {
                #expect(error.reason.contains(file), "\(error)")
            }
        }
    }

    @Test("a server certificate file that is not PEM is refused with its name")
    func badServerCertificate() throws {
        let folder = NSTemporaryDirectory() + "understudy-witness-tls-bad-\(getpid())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try "garbage\n".write(toFile: folder + "/cert.pem", atomically: true, encoding: .utf8)
        #expect {
            _ = try TLSContexts.server(certificateFile: folder + "/cert.pem", keyFile: folder + "/key.pem")
        } throws: { error in
            (error as? WitnessExchangeError)?.reason.contains("cert.pem") == true
        }
    }
}
