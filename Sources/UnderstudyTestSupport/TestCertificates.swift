import Foundation

/// Self-signed certificates made with the `openssl` command (Debian package `openssl`), for
/// tests of TLS endpoints. The docs' setup uses the same command.
public enum TestCertificates {
    public static let openssl = Prerequisite.command("openssl", package: "openssl")

    /// A self-signed certificate (`<name>.pem`) and its key (`<name>.key`) in `folder`,
    /// valid for the given IP addresses and DNS names.
    public static func selfSigned(
        in folder: String, name: String, ipAddresses: [String] = ["127.0.0.1"], dnsNames: [String] = ["localhost"]
    ) throws -> (certificate: String, key: String) {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let certificate = folder + "/" + name + ".pem"
        let key = folder + "/" + name + ".key"
        let names = ipAddresses.map { "IP:\($0)" } + dnsNames.map { "DNS:\($0)" }
        let made = Shell.run([
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-subj", "/CN=\(name)", "-addext", "subjectAltName=\(names.joined(separator: ","))", "-keyout", key, "-out", certificate,
        ])
        guard made.ok else { throw CertificateError(message: "openssl req failed: \(made.output)") }
        return (certificate, key)
    }

    public struct CertificateError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }
}
