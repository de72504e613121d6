import Foundation

/// What the kernel holds in the receive queues of a listener's established
/// connections (`/proc/net/tcp`, IPv4): bytes that reached a process's
/// sockets but that it has not read. For a test that freezes a server
/// (SIGSTOP) and must know that a client's writes have arrived there (the
/// event), not guess it with a sleep.
public enum SocketQueues {
    /// The sum of `rx_queue` over established IPv4 connections whose local
    /// port is `port`; nil when /proc/net/tcp cannot be read.
    public static func unreadBytes(localPort port: Int) -> Int? {
        // Read to EOF: /proc files report size 0, which a size-based read takes literally.
        guard let file = FileHandle(forReadingAtPath: "/proc/net/tcp"),
              let data = try? file.readToEnd(), (try? file.close()) != nil else { return nil }
        let text = String(decoding: data, as: UTF8.self)
        var total = 0
        // "sl local_address rem_address st tx_queue:rx_queue ...", hex fields.
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count > 4, fields[3] == "01",  // 01: ESTABLISHED
                  let local = fields[1].split(separator: ":").last, Int(local, radix: 16) == port,
                  let rx = fields[4].split(separator: ":").last, let bytes = Int(rx, radix: 16) else { continue }
            total += bytes
        }
        return total
    }
}
