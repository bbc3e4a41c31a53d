import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Blocking TCP with every step bounded by one deadline, for the small clients that run on a
/// thread of their own (`BlockingCall`): the NUT client (upsd) and the ONC RPC client (nfsw).
enum DeadlineSocket {
    /// A connected, non-blocking socket to `host:port` (each address tried in turn), or why
    /// none could be had by the deadline.
    static func connect(host: String, port: Int, deadline: ContinuousClock.Instant) -> Result<Int32, ConnectFailure> {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            return .failure(ConnectFailure(resolved: false, reason: "cannot resolve \(host): \(String(cString: gai_strerror(status)))"))
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var candidate: UnsafeMutablePointer<addrinfo>? = first
        while let info = candidate {
            candidate = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard fd >= 0 else { continue }
            if connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen, deadline: deadline, error: &lastError) { return .success(fd) }
            Glibc.close(fd)
        }
        return .failure(ConnectFailure(resolved: true, reason: lastError))
    }

    struct ConnectFailure: Error {
        /// The name resolved (the reason is about connecting, not resolving).
        var resolved: Bool
        var reason: String
    }

    /// A non-blocking connect bounded by the deadline; the socket stays non-blocking.
    static func connect(
        _ fd: Int32, _ address: UnsafeMutablePointer<sockaddr>?, _ length: socklen_t, deadline: ContinuousClock.Instant,
        error: inout String
    ) -> Bool {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        if Glibc.connect(fd, address, length) == 0 { return true }
        guard errno == EINPROGRESS else {
            error = String(cString: strerror(errno))
            return false
        }
        guard waitFor(fd, events: Int16(POLLOUT), deadline: deadline) else {
            error = "timed out"
            return false
        }
        var code: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &size)
        if code != 0 { error = String(cString: strerror(code)) }
        return code == 0
    }

    /// Whether `fd` became ready for `events` before the deadline.
    static func waitFor(_ fd: Int32, events: Int16, deadline: ContinuousClock.Instant) -> Bool {
        // Bounded: every round waits for the time left, and EINTR is the only retry.
        for _ in 0..<100 {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return false }
            let milliseconds = Int32(clamping: max(1, left.inMilliseconds))
            var descriptor = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&descriptor, 1, milliseconds)
            if ready > 0 { return true }
            if ready < 0 && errno == EINTR { continue }
            return false
        }
        return false
    }
}
