import ArgumentParser
import Foundation
import UnderstudyNode

/// `understudy witness --listen ADDR:PORT --cluster NAME=KEYFILE … | --cluster-dir DIR`: the
/// witness server of `witnesshb` and `httpnp`, for one or several clusters.
struct WitnessCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "witness",
        abstract: "Run the witness server (HTTP) for witnesshb heartbeats and httpnp partition resolution.",
        discussion: """
            Each cluster is named as in its cluster.yaml (cluster.name) and authenticated with its \
            secret-file. Requests are authenticated (HMAC-SHA256) and replay-protected and carry \
            no secret; with --tls-certificate and --tls-key the witness speaks HTTPS only (servers \
            set tls: true and ca-file on their witnesshb/httpnp entries). \
            The witness keeps no state on disk: after a start it grants no survival until twice the \
            clusters' heartbeat timeout has passed. SIGTERM or SIGINT stops it.
            """)

    @Option(name: .long, help: "Address and port to listen on: 0.0.0.0:8780, [::]:8780, 192.0.2.10:80.")
    var listen: String
    @Option(name: .customLong("cluster"), help: "A cluster and its key file: NAME=KEYFILE (repeatable).")
    var clusters: [String] = []
    @Option(name: .customLong("cluster-dir"), help: "A folder of key files, one per cluster: NAME.key.")
    var clusterDirectory: String?
    @Option(name: .customLong("tls-certificate"), help: "PEM certificate chain of the witness (HTTPS; needs --tls-key).")
    var tlsCertificate: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key of that certificate (keep it mode 600).")
    var tlsKey: String?

    func run() async throws {
        guard let (host, port) = Self.parseListen(listen) else {
            printError("understudy witness: --listen: expected ADDRESS:PORT (e.g. 0.0.0.0:8780 or [::]:8780), got \"\(listen)\"")
            throw ExitCode(2)
        }
        var tls: WitnessServerTLS?
        switch (tlsCertificate, tlsKey) {
        case (nil, nil):
            break
        case (let certificate?, let key?):
            do {
                tls = try TLSContexts.server(certificateFile: certificate, keyFile: key)
            } catch {
                printError("understudy witness: \(error)")
                throw ExitCode(2)
            }
        default:
            printError("understudy witness: --tls-certificate and --tls-key go together")
            throw ExitCode(2)
        }
        var keys: [String: ClusterKey] = [:]
        var sources: [(String, String)] = []
        for entry in clusters {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                printError("understudy witness: --cluster: expected NAME=KEYFILE, got \"\(entry)\"")
                throw ExitCode(2)
            }
            sources.append((String(entry[..<equals]), String(entry[entry.index(after: equals)...])))
        }
        if let clusterDirectory {
            let files: [String]
            do {
                files = try FileManager.default.contentsOfDirectory(atPath: clusterDirectory).filter { $0.hasSuffix(".key") }.sorted()
            } catch {
                printError("understudy witness: --cluster-dir \(clusterDirectory): \(error.localizedDescription)")
                throw ExitCode(2)
            }
            for file in files { sources.append((String(file.dropLast(4)), clusterDirectory + "/" + file)) }
        }
        for (name, path) in sources {
            guard !name.isEmpty, name.utf8.count <= 255, !name.contains("/") else {
                printError("understudy witness: bad cluster name \"\(name)\" (for \(path))")
                throw ExitCode(2)
            }
            guard keys[name] == nil else {
                printError("understudy witness: cluster \(name) is given twice")
                throw ExitCode(2)
            }
            do {
                keys[name] = try ClusterKey.load(from: path)
            } catch {
                printError("understudy witness: cluster \(name): \(error)")
                throw ExitCode(2)
            }
        }
        guard !keys.isEmpty else {
            printError("understudy witness: no cluster: give --cluster NAME=KEYFILE or --cluster-dir DIR")
            throw ExitCode(2)
        }
        let log: @Sendable (String) -> Void = { message in
            let stamp = ISO8601DateFormatter().string(from: Date())
            FileHandle.standardError.write(Data("\(stamp) understudy witness: \(message)\n".utf8))
        }
        let bootID = UInt64(max(0, Date().timeIntervalSince1970 * 1_000_000))
        let service = WitnessService(keys: keys, bootID: bootID, log: log)
        let server: WitnessServer
        do {
            server = try await WitnessServer.start(host: host, port: port, service: service, tls: tls)
        } catch {
            printError("understudy witness: cannot listen on \(listen): \(error)")
            throw ExitCode(1)
        }
        let clusterList = keys.sorted { $0.key < $1.key }.map { "\($0.key) (key \($0.value.fingerprint))" }.joined(separator: ", ")
        log(
            "listening on \(tls == nil ? "" : "https://")\(host):\(server.port ?? port) for \(clusterList); granting nothing until the clusters' quiet period has passed"
        )
        var signals: [DispatchSourceSignal] = []
        for signalNumber in [SIGTERM, SIGINT] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                log("stopping")
                Task { await server.close() }
            }
            source.resume()
            signals.append(source)
        }
        await server.wait()
        signals.forEach { $0.cancel() }
    }

    /// `ADDRESS:PORT` or `[IPv6]:PORT`.
    static func parseListen(_ text: String) -> (String, Int)? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else { return nil }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (0...65535).contains(port) else { return nil }
        return (String(host), port)
    }
}
