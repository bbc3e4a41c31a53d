import Foundation
import NIOCore
import NIOSSL
import UnderstudyModel

/// TLS from PEM files: the witness (HTTPS) and the daemon's web server. For the witness, the requests are authenticated and replay-protected with
/// the cluster key whether or not TLS is on; TLS adds confidentiality of the cluster and
/// server names and views, and proves the witness's identity before a byte is sent.
public enum TLSContexts {
    /// A server TLS configuration (TLS 1.2 or newer) from a PEM certificate chain (the
    /// server's own first) and its unencrypted PEM key; the error names the file at fault.
    /// Shared by the witness and the daemon's web server.
    public static func serverConfiguration(certificateFile: String, keyFile: String) throws(WitnessExchangeError)
        -> TLSConfiguration
    {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateFile)
        } catch {
            throw WitnessExchangeError("cannot read the certificate file \(certificateFile) (PEM): \(error)")
        }
        guard !chain.isEmpty else { throw WitnessExchangeError("no PEM certificate in \(certificateFile)") }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        } catch {
            throw WitnessExchangeError("cannot read the private key file \(keyFile) (PEM, unencrypted): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        return configuration
    }

    /// The witness's server context.
    public static func server(certificateFile: String, keyFile: String) throws(WitnessExchangeError) -> WitnessServerTLS {
        let configuration = try serverConfiguration(certificateFile: certificateFile, keyFile: keyFile)
        do {
            return WitnessServerTLS(context: try NIOSSLContext(configuration: configuration))
        } catch {
            throw WitnessExchangeError("cannot use \(certificateFile) with \(keyFile): \(error)")
        }
    }

    /// A client context trusting `tls.caFile` (or the system's roots) and TLS 1.2 or newer.
    public static func client(_ tls: WitnessTLS) throws(WitnessExchangeError) -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile = tls.caFile {
            let certificates: [NIOSSLCertificate]
            do {
                certificates = try NIOSSLCertificate.fromPEMFile(caFile)
            } catch {
                throw WitnessExchangeError("cannot read the witness's CA file \(caFile): \(error)")
            }
            guard !certificates.isEmpty else { throw WitnessExchangeError("no PEM certificate in \(caFile)") }
            configuration.trustRoots = .certificates(certificates)
        }
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw WitnessExchangeError("cannot set up TLS to the witness: \(error)")
        }
    }
}

/// The witness server's TLS context (made by `TLSContexts.server`).
public struct WitnessServerTLS: Sendable {
    let context: NIOSSLContext
}

/// What a client needs to speak HTTPS to one witness: the context and the name its
/// certificate must carry (nil: the address connected to, which must be an IP SAN).
struct WitnessTLSClient: Sendable {
    let context: NIOSSLContext
    let serverHostname: String?

    init(_ tls: WitnessTLS, host: String) throws(WitnessExchangeError) {
        context = try TLSContexts.client(tls)
        if let name = tls.serverName {
            serverHostname = name
        } else {
            // SNI and name checks take a host name; an address is checked against the
            // certificate's IP SANs by the address connected to.
            serverHostname = (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
        }
    }
}
