import Crypto
import Foundation
import UnderstudyNode
import _CryptoExtras

/// A salted, slow password hash: PBKDF2-HMAC-SHA256, written as
/// `pbkdf2-sha256$ROUNDS$SALT$HASH` (salt and hash in base64). Never the password itself.
public struct PasswordHash: Sendable, Equatable, CustomStringConvertible {
    public static let scheme = "pbkdf2-sha256"
    /// OWASP's figure for PBKDF2-HMAC-SHA256 (2023): 600,000 rounds.
    public static let defaultRounds = 600_000
    /// Fewer rounds than this are refused when reading a users file.
    public static let minimumRounds = 100_000
    static let saltBytes = 16
    static let hashBytes = 32

    public let rounds: Int
    public let salt: [UInt8]
    public let hash: [UInt8]

    public var description: String {
        "\(Self.scheme)$\(rounds)$\(Data(salt).base64EncodedString())$\(Data(hash).base64EncodedString())"
    }

    /// Hashes `password` with a fresh random salt.
    public static func make(password: String, rounds: Int = defaultRounds) throws -> PasswordHash {
        let salt = SecureRandom.bytes(saltBytes)
        return PasswordHash(rounds: rounds, salt: salt, hash: try derive(password: password, salt: salt, rounds: rounds))
    }

    init(rounds: Int, salt: [UInt8], hash: [UInt8]) {
        self.rounds = rounds
        self.salt = salt
        self.hash = hash
    }

    /// Parses the text form; nil with a reason when it is not one.
    public static func parse(_ text: String) -> Result<PasswordHash, PasswordHashError> {
        let parts = text.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == scheme else {
            return .failure(PasswordHashError("expected \(scheme)$ROUNDS$SALT$HASH (written by `understudy user`), not a password"))
        }
        guard let rounds = Int(parts[1]), rounds >= minimumRounds, rounds <= 100_000_000 else {
            return .failure(PasswordHashError("rounds must be a number from \(minimumRounds) to 100000000, got \"\(parts[1].prefix(12))\""))
        }
        guard let salt = Data(base64Encoded: String(parts[2])), salt.count >= 8, salt.count <= 64 else {
            return .failure(PasswordHashError("the salt is not base64 of 8 to 64 bytes"))
        }
        guard let hash = Data(base64Encoded: String(parts[3])), hash.count == hashBytes else {
            return .failure(PasswordHashError("the hash is not base64 of \(hashBytes) bytes"))
        }
        return .success(PasswordHash(rounds: rounds, salt: Array(salt), hash: Array(hash)))
    }

    /// True when `password` hashes to this hash (compared in constant time). Slow on
    /// purpose: call it off the cooperative thread pool (`PasswordVerifier`).
    public func verify(_ password: String) -> Bool {
        guard let candidate = try? Self.derive(password: password, salt: salt, rounds: rounds) else { return false }
        return Self.constantTimeEqual(candidate, hash)
    }

    static func derive(password: String, salt: [UInt8], rounds: Int) throws -> [UInt8] {
        let key = try KDF.Insecure.PBKDF2.deriveKey(
            from: Array(password.utf8), salt: salt, using: .sha256, outputByteCount: hashBytes, unsafeUncheckedRounds: rounds)
        return key.withUnsafeBytes { Array($0) }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

public struct PasswordHashError: Error, Equatable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
