extension BrokerConfiguration {
    /// Applies the command-line overrides `--listen` and `--data-dir`.
    public func applying(listen: String?, dataDirectory: String?) throws(ConfigError) -> BrokerConfiguration {
        var copy = self
        if let listen {
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]),
                  (0...65535).contains(port), colon != listen.startIndex else {
                throw ConfigError(file: "<command line>", key: "--listen", message: "expected HOST:PORT such as 127.0.0.1:7443, got \"\(listen)\"")
            }
            var host = String(listen[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            copy.server.host = host
            copy.server.port = port
        }
        if let dataDirectory {
            // "" became the working directory: the store beside whatever relayd was started in.
            guard !dataDirectory.isEmpty else {
                throw ConfigError(file: "<command line>", key: "--data-dir", message: "is empty; name the data directory, or leave the flag out to use [storage] path")
            }
            copy.storage.path = dataDirectory.hasPrefix("/") ? dataDirectory
                : FileManagerPath.absolute(dataDirectory)
        }
        return copy
    }
}

import Foundation

enum FileManagerPath {
    static func absolute(_ relative: String) -> String {
        URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(relative).standardizedFileURL.path
    }
}
