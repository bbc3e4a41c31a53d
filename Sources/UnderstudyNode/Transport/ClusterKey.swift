import Crypto

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The shared secret that authenticates every heartbeat datagram and control frame.
///
/// The key material is the content of the `secret-file` without trailing whitespace, used
/// as-is as the HMAC-SHA256 key (the hex text written by `generate(to:)` is not decoded, so
/// the same file works whatever its encoding). The material never leaves this type except
/// into HMAC computations: `description` is redacted and there is no accessor for it.
public struct ClusterKey: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public static let minimumLength = 16
    /// A key file is a few dozen bytes; anything much larger is the wrong file.
    public static let maximumFileSize = 64 * 1024
    public static let generatedKeyLength = 32

    private let storage: KeyStorage
    var symmetricKey: SymmetricKey { storage.key }
    /// Short non-secret identifier (SHA-256 of a label and the key, 8 bytes in hex) so
    /// operators can compare keys between servers without revealing them.
    public let fingerprint: String

    /// Builds a key from raw material (tests and tools); at least `minimumLength` bytes.
    public init(material: [UInt8]) throws(ClusterKeyError) {
        try self.init(material: material, source: "(in-memory key)")
    }

    private init(material: [UInt8], source: String) throws(ClusterKeyError) {
        guard material.count >= Self.minimumLength else {
            throw ClusterKeyError(path: source, reason: .tooShort(byteCount: material.count))
        }
        storage = KeyStorage(key: SymmetricKey(data: material))
        var hasher = SHA256()
        hasher.update(data: Array("understudy cluster key fingerprint\0".utf8))
        hasher.update(data: material)
        fingerprint = hasher.finalize().prefix(8).map(Self.hexPair).joined()
    }

    public var description: String { "ClusterKey(fingerprint: \(fingerprint))" }
    public var debugDescription: String { description }

    // MARK: Loading

    /// Loads the key from `path`, refusing files that are missing, unreadable, not regular,
    /// too short, or readable/writable by group or others.
    public static func load(from path: String) throws(ClusterKeyError) -> ClusterKey {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            let code = errno
            if code == ENOENT { throw ClusterKeyError(path: path, reason: .missing) }
            throw ClusterKeyError(path: path, reason: .unreadable(Self.errnoText(code)))
        }
        defer { close(descriptor) }

        // fstat on the opened descriptor: the checked file is the file we read.
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw ClusterKeyError(path: path, reason: .unreadable(Self.errnoText(errno)))
        }
        guard (status.st_mode & S_IFMT) == S_IFREG else {
            throw ClusterKeyError(path: path, reason: .notRegularFile)
        }
        let permissionBits = UInt32(status.st_mode) & 0o777
        guard permissionBits & 0o077 == 0 else {
            throw ClusterKeyError(path: path, reason: .insecurePermissions(mode: permissionBits))
        }
        guard Int(status.st_size) <= maximumFileSize else {
            throw ClusterKeyError(path: path, reason: .tooLarge(byteCount: Int(status.st_size)))
        }

        var content = [UInt8](repeating: 0, count: maximumFileSize + 1)
        var filled = 0
        while filled < content.count {
            let count = content.withUnsafeMutableBytes { buffer in
                read(descriptor, buffer.baseAddress.map { $0 + filled }, buffer.count - filled)
            }
            if count == 0 { break }
            if count < 0 {
                if errno == EINTR { continue }
                let code = errno
                Self.wipe(&content)
                throw ClusterKeyError(path: path, reason: .unreadable(Self.errnoText(code)))
            }
            filled += count
        }
        defer { Self.wipe(&content) }
        guard filled <= maximumFileSize else {
            throw ClusterKeyError(path: path, reason: .tooLarge(byteCount: filled))
        }

        var end = filled
        while end > 0, Self.isTrailingWhitespace(content[end - 1]) { end -= 1 }
        return try ClusterKey(material: Array(content[0..<end]), source: path)
    }

    // MARK: Generating

    /// Writes a new key (32 random bytes, hex-encoded, newline-terminated) to `path` with
    /// mode 0600 and returns it. The file appears atomically and complete; an existing file
    /// is replaced only when `overwrite` is true.
    @discardableResult
    public static func generate(to path: String, overwrite: Bool = false) throws(ClusterKeyError) -> ClusterKey {
        let material = SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
        let hexText = Array((material.map(Self.hexPair).joined() + "\n").utf8)
        let key = try ClusterKey(material: Array(hexText.dropLast()), source: path)

        let temporaryPath = path + ".tmp-\(getpid())-\(SecureRandom.bytes(4).map(Self.hexPair).joined())"
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ClusterKeyError(path: path, reason: .writeFailed(Self.errnoText(errno)))
        }
        var temporaryExists = true
        defer { if temporaryExists { unlink(temporaryPath) } }
        do {
            defer { close(descriptor) }
            // The umask may only remove bits; fchmod makes the mode exactly 0600.
            guard fchmod(descriptor, 0o600) == 0 else {
                throw ClusterKeyError(path: path, reason: .writeFailed(Self.errnoText(errno)))
            }
            var written = 0
            while written < hexText.count {
                let count = hexText.withUnsafeBytes { buffer in
                    write(descriptor, buffer.baseAddress.map { $0 + written }, buffer.count - written)
                }
                if count < 0 {
                    if errno == EINTR { continue }
                    throw ClusterKeyError(path: path, reason: .writeFailed(Self.errnoText(errno)))
                }
                written += count
            }
            guard fsync(descriptor) == 0 else {
                throw ClusterKeyError(path: path, reason: .writeFailed(Self.errnoText(errno)))
            }
        }

        if overwrite {
            guard rename(temporaryPath, path) == 0 else {
                throw ClusterKeyError(path: path, reason: .writeFailed(Self.errnoText(errno)))
            }
            temporaryExists = false
        } else {
            // link(2) fails with EEXIST instead of replacing: no clobbering, no partial file.
            guard link(temporaryPath, path) == 0 else {
                let code = errno
                if code == EEXIST { throw ClusterKeyError(path: path, reason: .alreadyExists) }
                throw ClusterKeyError(path: path, reason: .writeFailed(Self.errnoText(code)))
            }
        }
        Self.syncParentDirectory(of: path)
        return key
    }

    // MARK: Helpers

    private static func syncParentDirectory(of path: String) {
        let directory: String
        if let slash = path.lastIndex(of: "/") {
            directory = slash == path.startIndex ? "/" : String(path[..<slash])
        } else {
            directory = "."
        }
        let descriptor = open(directory, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    private static func wipe(_ bytes: inout [UInt8]) {
        for index in bytes.indices { bytes[index] = 0 }
    }

    private static func isTrailingWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: " ")
            || byte == UInt8(ascii: "\t") || byte == 0x0B || byte == 0x0C
    }

    static func hexPair(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
    }

    private static func errnoText(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}

/// SymmetricKey is an immutable value (its bytes are never mutated after creation) but is not
/// marked Sendable in swift-crypto 3.x; this box states that sharing it is safe.
private final class KeyStorage: @unchecked Sendable {
    let key: SymmetricKey
    init(key: SymmetricKey) { self.key = key }
}

/// Why a cluster key could not be loaded or written. The description names the file and says
/// how to fix it; it never contains key material.
public struct ClusterKeyError: Error, Equatable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        case missing
        case unreadable(String)
        case notRegularFile
        case insecurePermissions(mode: UInt32)
        case tooShort(byteCount: Int)
        case tooLarge(byteCount: Int)
        case alreadyExists
        case writeFailed(String)
    }

    public let path: String
    public let reason: Reason

    public init(path: String, reason: Reason) {
        self.path = path
        self.reason = reason
    }

    public var description: String {
        switch reason {
        case .missing:
            return "cluster key file \(path) does not exist; generate one with `understudy keygen` and copy it to every server"
        case .unreadable(let why):
            return "cannot read cluster key file \(path): \(why)"
        case .notRegularFile:
            return "cluster key file \(path) is not a regular file"
        case .insecurePermissions(let mode):
            let octal = String(mode, radix: 8)
            return "cluster key file \(path) is accessible by group or others (mode 0\(octal)); run `chmod 600 \(path)`"
        case .tooShort(let count):
            return
                "cluster key file \(path) holds \(count) bytes of key material, at least \(ClusterKey.minimumLength) are required; generate one with `understudy keygen`"
        case .tooLarge(let count):
            return
                "cluster key file \(path) is \(count) bytes long, more than a key file can be (at most \(ClusterKey.maximumFileSize)); check the secret-file setting"
        case .alreadyExists:
            return "cluster key file \(path) already exists; remove it first to replace the key"
        case .writeFailed(let why):
            return "cannot write cluster key file \(path): \(why)"
        }
    }
}
