import ArgumentParser
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The demo's service: a tiny HTTP responder answering every request with a server's name.
/// It exits when its parent (the daemon that started it) dies, as a real service dies with
/// its machine.
struct DemoResponder: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo-responder", abstract: "Answer HTTP requests with a name (the demo's service).", shouldDisplay: false)

    @Option(name: .long) var address: String = "127.0.0.100"
    @Option(name: .long) var port: Int = 8080
    @Option(name: .long) var name: String

    func run() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard listener >= 0 else { throw failure("socket") }
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var socketAddress = sockaddr_in()
        socketAddress.sin_family = sa_family_t(AF_INET)
        socketAddress.sin_port = in_port_t(UInt16(port).bigEndian)
        guard inet_pton(AF_INET, address, &socketAddress.sin_addr) == 1 else {
            throw ValidationError("\(address) is not an IPv4 address")
        }
        let bound = withUnsafePointer(to: &socketAddress) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 64) == 0 else { throw failure("bind \(address):\(port)") }
        FileHandle.standardOutput.write(Data("demo-responder \(name) listening on \(address):\(port)\n".utf8))
        FileHandle.standardOutput.synchronizeFile()

        // Die with the daemon: poll the parent.
        let parent = getppid()
        Thread.detachNewThread {
            while getppid() == parent { usleep(100_000) }
            Glibc.exit(0)
        }
        let body = "\(name)\n"
        let response =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)"
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { continue }
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            // Read the request head (bounded), then answer and close.
            var buffer = [UInt8](repeating: 0, count: 8192)
            var received = 0
            while received < buffer.count {
                let count = buffer.withUnsafeMutableBytes { raw -> Int in
                    guard let base = raw.baseAddress else { return -1 }
                    return read(client, base + received, raw.count - received)
                }
                if count <= 0 { break }
                received += count
                if buffer[0..<received].windowContainsHeaderEnd() { break }
            }
            _ = response.withCString { write(client, $0, strlen($0)) }
            close(client)
        }
    }

    func failure(_ what: String) -> Error {
        ValidationError("\(what): \(String(cString: strerror(errno)))")
    }
}

extension ArraySlice where Element == UInt8 {
    func windowContainsHeaderEnd() -> Bool {
        guard count >= 4 else { return false }
        let end = [UInt8]("\r\n\r\n".utf8)
        return self.indices.dropLast(3).contains { index in Array(self[index..<index + 4]) == end }
    }
}
