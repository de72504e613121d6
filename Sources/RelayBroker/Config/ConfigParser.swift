import Foundation
import RelayCore
import RelayPolicy
import TOMLKit

extension BrokerConfiguration {
    /// Reads and validates a config file. Relative paths inside it are
    /// resolved against the file's folder; referenced files must exist.
    public static func load(path given: String) throws(ConfigError) -> BrokerConfiguration {
        // Absolute from here on: the start line, `relayctl status` and the
        // reload audit name the file so a remote operator can find it, and a
        // reload reads the same file whatever the working directory is then.
        // Only the working directory is prefixed; symlinks stay as given.
        let path = given.hasPrefix("/") || given.isEmpty ? given : FileManager.default.currentDirectoryPath + "/" + given
        let text: String
        if ConfigParser.isDirectory(path) {
            throw ConfigError(file: path, key: "", message: "is a directory, not a config file; pass the TOML file with --config")
        }
        // The start and `relayctl config check` check the file first (CLIRunner);
        // this is what a reload meets, where --config cannot be given again.
        guard FileManager.default.fileExists(atPath: path) else {
            throw ConfigError(file: path, key: "", message: "the config file does not exist (moved or deleted?); put it back at this path, which relayd reads at every reload")
        }
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw ConfigError(file: path, key: "", message: "relayd's user (uid \(getuid())) cannot read the config file; check its owner and mode (ls -l)")
        }
        guard let data = FileManager.default.contents(atPath: path), let decoded = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, key: "", message: "the config file is not UTF-8 text; save it as UTF-8 (TOML requires it)")
        }
        text = decoded
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(text, file: path, baseDirectory: folder)
    }

    /// Parses TOML text. `baseDirectory` resolves relative paths.
    public static func parse(_ text: String, file: String, baseDirectory: String,
                             checkFiles: Bool = true) throws(ConfigError) -> BrokerConfiguration {
        let table: TOMLTable
        if let problem = TOMLPreflight.problem(in: text) {  // constructs TOMLKit would abort on
            throw ConfigError(file: file, key: "", message: "TOML syntax error at line \(problem.line): \(problem.message)")
        }
        do {
            table = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw ConfigError(file: file, key: "", message: "TOML syntax error at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)")
        } catch {
            throw ConfigError(file: file, key: "", message: "TOML syntax error: \(error)")
        }
        var parser = ConfigParser(file: file, base: baseDirectory, checkFiles: checkFiles)
        return try parser.parse(TOMLReader(file: file, path: "", table: table))
    }
}

/// Turns the TOML tree into a ``BrokerConfiguration``, one section a method.
struct ConfigParser {
    let file: String
    let base: String
    let checkFiles: Bool

    init(file: String, base: String, checkFiles: Bool) {
        self.file = file
        self.base = base
        self.checkFiles = checkFiles
    }

    mutating func parse(_ root: TOMLReader) throws(ConfigError) -> BrokerConfiguration {
        var root = root
        var config = BrokerConfiguration()
        config.sourceFile = file
        if var t = try root.table("server") { try parseServer(&t, into: &config.server); try t.finish() }
        guard var tls = try root.table("tls") else {
            throw ConfigError(file: file, key: "tls", message: "missing [tls] section; relayd only serves mutual TLS and needs certificate, private_key and client_ca")
        }
        try parseTLS(&tls, into: &config.tls); try tls.finish()
        if var t = try root.table("storage") { try parseStorage(&t, into: &config.storage); try t.finish() }
        if config.storage.path.isEmpty { config.storage.path = resolve("data") }
        for var t in try root.tables("retention") { config.retention.append(try parseRetention(&t)); try t.finish() }
        try checkRetentionForBackend(config)
        if var t = try root.table("limits") { try parseLimits(&t, into: &config.limits); try t.finish() }
        if var t = try root.table("metrics") {
            if let listen = try t.string("listen") {
                if listen.isEmpty {
                    config.metrics.listen = nil
                } else {
                    let address = try hostPort(listen, reader: t, key: "listen")
                    if address.port != 0 && address.port == config.server.port && address.host == config.server.host {
                        throw t.error("listen", "\(listen) is server.listen's address too; give the metrics listener another port (or \"\" to turn it off)")
                    }
                    config.metrics.listen = address.text
                }
            }
            if let v = try t.int("max_connections", min: 1, max: 100_000) { config.metrics.maxConnections = Int(v) }
            if let v = try t.duration("request_timeout") {
                guard v > 0 else { throw t.error("request_timeout", "must be more than 0") }
                config.metrics.requestTimeoutNanos = v
            }
            try t.finish()
        }
        if var t = try root.table("log") {
            if let format = try t.string("format") {
                guard let f = BrokerConfiguration.LogFormat(rawValue: format) else {
                    throw t.error("format", "expected \"logfmt\" or \"json\", got \"\(format)\"")
                }
                config.log.format = f
            }
            if let level = try t.string("level") {
                let levels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
                guard levels.contains(level) else { throw t.error("level", "expected one of \(levels.joined(separator: ", "))") }
                config.log.level = level
            }
            if let connections = try t.bool("connections") { config.log.connections = connections }
            try t.finish()
        }
        if var t = try root.table("audit") {
            if let p = try t.string("path") { config.audit.path = p.isEmpty ? nil : resolve(p) }
            if let p = config.audit.path, checkFiles, Self.isDirectory(p) {
                throw t.error("path", "\(p) is a directory; name the trail's file in it, e.g. \(p)/audit.jsonl")
            }
            if let p = try t.string("key_file") {
                guard !p.isEmpty else { throw t.error("key_file", "is empty; name the audit key file (omit the key for audit.key in the data directory)") }
                config.audit.keyFile = resolve(p)
            }
            if let k = config.audit.keyFile, checkFiles, Self.isDirectory(k) {
                throw t.error("key_file", "\(k) is a directory; name the key file in it, e.g. \(k)/audit.key")
            }
            if let size = try t.size("max_file_size") {
                guard size == 0 || size >= 64 << 10 else { throw t.error("max_file_size", "must be 0 (never rotate) or at least 64KiB") }
                config.audit.maxFileSize = size
            }
            if let ns = try t.duration("repeat_interval") {
                guard ns >= 100_000_000 else { throw t.error("repeat_interval", "must be at least 100ms") }
                config.audit.repeatIntervalNanos = ns
            }
            try t.finish()
        }
        if var t = try root.table("reload") {
            if let watch = try t.bool("watch") { config.reload.watch = watch }
            try t.finish()
        }
        if var t = try root.table("acl") { try parseACL(&t, into: &config.acl); try t.finish() }
        try root.finish()
        _ = try config.makePolicy()  // refuse a policy that does not compile, naming the rule and key
        return config
    }

    private func parseServer(_ t: inout TOMLReader, into s: inout BrokerConfiguration.Server) throws(ConfigError) {
        if let listen = try t.string("listen") {
            let hp = try hostPort(listen, reader: t, key: "listen")
            s.host = hp.host
            s.port = hp.port
        }
        if let ns = try t.duration("hello_timeout") {
            guard ns > 0 else { throw t.error("hello_timeout", "must be more than 0 (0 closes every client before its HELLO)") }
            s.helloTimeoutNanos = ns
        }
    }

    private func parseTLS(_ t: inout TOMLReader, into tls: inout BrokerConfiguration.TLS) throws(ConfigError) {
        guard let cert = try t.string("certificate") else { throw t.error("certificate", "missing; set it to the server certificate chain (PEM)") }
        guard let key = try t.string("private_key") else { throw t.error("private_key", "missing; set it to the server private key (PEM)") }
        guard let cas = try t.strings("client_ca"), !cas.isEmpty else {
            throw t.error("client_ca", "missing; set it to the CA bundle(s) that sign client certificates")
        }
        tls.certificate = try existingFile(cert, reader: t, key: "certificate")
        tls.privateKey = try existingFile(key, reader: t, key: "private_key")
        tls.clientCA = try cas.map { (p) throws(ConfigError) in try existingFile(p, reader: t, key: "client_ca") }
        if let crls = try t.strings("crl") {
            tls.crl = try crls.map { (p) throws(ConfigError) in try existingFile(p, reader: t, key: "crl") }
        }
        if let v = try t.string("crl_missing") {
            guard v == "refuse" || v == "allow-intermediate" else {
                throw t.error("crl_missing", "expected \"refuse\" (default: refuse a chain with an intermediate CA whose issuer's CRL is not loaded) or \"allow-intermediate\", got \"\(v)\"")
            }
            tls.crlMissing = v
        }
        if let v = try t.string("min_version") {
            guard v == "1.3" || v == "1.2" else { throw t.error("min_version", "expected \"1.3\" or \"1.2\"; older versions are not supported") }
            tls.minVersion = v
        }
        if let ns = try t.duration("handshake_timeout") {
            guard ns > 0 else { throw t.error("handshake_timeout", "must be more than 0 (0 fails every handshake)") }
            tls.handshakeTimeoutNanos = ns
        }
    }

    private func parseStorage(_ t: inout TOMLReader, into s: inout BrokerConfiguration.Storage) throws(ConfigError) {
        if let p = try t.string("path") {
            // "" resolved to the config's own folder: the store, its lock and the audit key landed beside relay.toml.
            guard !p.isEmpty else { throw t.error("path", "is empty; name the data directory (omit the key for `data` next to the config file)") }
            s.path = resolve(p)
        }
        if let d = try t.string("durability") {
            guard let durability = BrokerConfiguration.Durability(rawValue: d) else {
                throw t.error("durability", "expected \"fsync\" (ack after the data is on disk) or \"async\" (periodic sync), got \"\(d)\"")
            }
            s.durability = durability
        }
        if let size = try t.size("max_size") {
            guard size >= 1 << 20 else { throw t.error("max_size", "must be at least 1MiB") }
            s.maxSize = size
        }
        if let ns = try t.duration("sync_interval") {
            // The store's sync timer cannot run faster; 0 used to be clamped to 1 ms in silence.
            guard ns >= 1_000_000 else {
                throw t.error("sync_interval", "must be at least 1ms; for a disk sync before every PUBACK use durability = \"fsync\" (the default)")
            }
            s.syncIntervalNanos = ns
        }
        if let ns = try t.duration("dedup_window") {
            guard ns >= 1_000_000_000 else {
                throw t.error("dedup_window", "must be at least 1s; it is how long a retried publish is still recognised")
            }
            s.dedupWindowNanos = ns
        }
        if let tail = try t.size("page_cache_tail") {
            guard tail >= 1 << 20 else {
                throw t.error("page_cache_tail", "must be at least 1MiB (omit it to keep every written page cached)")
            }
            s.pageCacheTail = Int(tail)
        }
        try parseStorageBackend(&t, into: &s)
    }

    private func parseRetention(_ t: inout TOMLReader) throws(ConfigError) -> BrokerConfiguration.Retention {
        guard let filter = try t.string("filter") else { throw t.error("filter", "missing; the topic filter this rule applies to, e.g. \">\"") }
        do { _ = try TopicFilter(filter) } catch { throw t.error("filter", "invalid filter \"\(filter)\": \(error)") }
        let rule = BrokerConfiguration.Retention(filter: filter, maxAgeNanos: try t.duration("max_age"),
                                                 maxMessages: try t.int("max_messages", min: 1),
                                                 maxBytes: try t.size("max_bytes"))
        if rule.maxAgeNanos == nil && rule.maxMessages == nil && rule.maxBytes == nil {
            throw t.error("", "a retention rule needs at least one of max_age, max_messages, max_bytes")
        }
        return rule
    }

    private func parseLimits(_ t: inout TOMLReader, into l: inout BrokerConfiguration.Limits) throws(ConfigError) {
        if let v = try t.int("max_connections", min: 1, max: 1_000_000) { l.maxConnections = Int(v) }
        if let v = try t.size("max_frame_size") {
            guard v >= 1024 && v <= 64 << 20 else { throw t.error("max_frame_size", "must be between 1KiB and 64MiB") }
            l.maxFrameSize = Int(v)
        }
        if let v = try t.size("max_payload") {
            guard v >= 1 && v <= 64 << 20 else { throw t.error("max_payload", "must be between 1B and 64MiB") }
            l.maxPayload = Int(v)
        }
        if let v = try t.int("max_headers", min: 0, max: 1_024) { l.maxHeaders = Int(v) }
        if let v = try t.int("max_subscriptions", min: 1, max: 1_000_000) { l.maxSubscriptionsPerConnection = Int(v) }
        if let v = try t.int("max_in_flight", min: 1, max: 1_000_000) { l.maxInFlightPublishes = Int(v) }
        if let v = try t.int("subscription_buffer", min: 16, max: 10_000_000) { l.subscriptionBuffer = Int(v) }
        if let v = try t.size("live_buffer_budget") {
            guard BrokerConfiguration.Limits.liveBufferBudgetRange.contains(v) else {
                throw t.error("live_buffer_budget", "\(v) bytes is outside 1MiB to 1TiB; it bounds the live-buffer bytes of all "
                    + "connections together (e.g. \"1GiB\", the default)")
            }
            l.liveBufferBudget = Int(v)
        }
        if let v = try t.duration("write_stall_timeout") {
            guard v > 0 else { throw t.error("write_stall_timeout", "must be more than 0") }
            l.writeStallTimeoutNanos = v
        }
        if let v = try t.duration("shutdown_grace") {
            guard v > 0, v <= BrokerConfiguration.Limits.maximumShutdownGraceNanos else {
                throw t.error("shutdown_grace", "must be more than 0 and at most 1h; it is how long a SIGTERM waits for the "
                    + "answers of PUBs and ADMINs in flight (default \"10s\"; keep it under the supervisor's stop timeout, "
                    + "systemd's TimeoutStopSec)")
            }
            l.shutdownGraceNanos = v
        }
        if let v = try t.int("max_preauth_connections", min: 1, max: 1_000_000) { l.maxPreAuthConnections = Int(v) }
        if let v = try t.int("max_preauth_per_address", min: 1, max: 1_000_000) { l.maxPreAuthPerAddress = Int(v) }
        if let v = try t.int("max_durables", min: .min) {
            let ceiling = BrokerConfiguration.Limits.maxDurablesCeiling
            guard v >= 1 else {
                throw t.error("max_durables", "\(v) would refuse every new durable subscription; it must be 1 to \(ceiling) "
                    + "(the durable subscriptions one identity may hold)")
            }
            guard v <= Int64(ceiling) else {
                throw t.error("max_durables", "\(v) is above \(ceiling), the most relayd counts for each SUB of a new durable; "
                    + "it must be 1 to \(ceiling) durables per identity")
            }
            l.maxDurablesPerOwner = Int(v)
        }
        if l.maxPayload > l.maxFrameSize - 1024 {
            throw t.error("max_payload", "must leave at least 1KiB of max_frame_size for the frame header, topic and headers")
        }
    }

    private func parseACL(_ t: inout TOMLReader, into acl: inout BrokerConfiguration.ACL) throws(ConfigError) {
        acl.principal = try t.string("principal")
        for var r in try t.tables("rule") {
            guard let name = try r.string("name"), !name.isEmpty else { throw r.error("name", "missing; every rule needs a name for logs and explain") }
            var match: [String: [String]] = [:]
            if let m = try r.table("match") {
                var m = m
                for key in m.keys {
                    guard let values = try m.strings(key) else { continue }
                    match[key] = values
                }
                try m.finish()
            }
            var multiValue = MultiValue.refuse
            if let text = try r.string("multi_value") {
                guard let value = MultiValue(rawValue: text) else {
                    throw r.error("multi_value", "expected \"refuse\" (the default: refuse an identity with two values of a templated attribute) or \"all\" (grant one filter per value), got \"\(text)\"")
                }
                multiValue = value
            }
            let rule = BrokerConfiguration.ACLRule(
                name: name, match: match,
                publish: try r.strings("publish") ?? [], subscribe: try r.strings("subscribe") ?? [],
                denyPublish: try r.strings("deny_publish") ?? [], denySubscribe: try r.strings("deny_subscribe") ?? [],
                multiValue: multiValue, admin: try r.strings("admin") ?? [])
            try r.finish()
            acl.rules.append(rule)
        }
    }

    // MARK: helpers

    /// Joins a relative path to the config's folder without following
    /// symlinks: `standardizedFileURL` resolves every link of a path that
    /// holds `..` (the example config's `../dev/pki/…`), which froze a link's
    /// target of the moment of loading, so the `[reload] watch` poller never
    /// saw a rotation that swaps the link. `x/..` is dropped only when `x` is
    /// not a link (then it is the same directory either way); after a link,
    /// `..` stays for the kernel to resolve at each open.
    func resolve(_ path: String) -> String {
        let joined = path.hasPrefix("/") ? path : base + "/" + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/") where part != "." {
            if part == "..", let last = parts.last, last != "..",
               (try? FileManager.default.destinationOfSymbolicLink(atPath: "/" + parts.joined(separator: "/"))) == nil {
                parts.removeLast()
                continue
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    func existingFile(_ path: String, reader: TOMLReader, key: String) throws(ConfigError) -> String {
        guard !path.isEmpty else { throw reader.error(key, "the path is empty; name a PEM file") }
        let resolved = resolve(path)
        if checkFiles && Self.isDirectory(resolved) {
            throw reader.error(key, "\(resolved) is a directory; name a PEM file in it")
        }
        if checkFiles && !FileManager.default.isReadableFile(atPath: resolved) {
            guard FileManager.default.fileExists(atPath: resolved) else {
                throw reader.error(key, "file \(resolved) does not exist (relative paths are resolved against the config file's folder; for a development PKI run `relayctl pki init --dir DIR`)")
            }
            throw reader.error(key, "file \(resolved) exists but relayd's user (uid \(getuid())) cannot read it; check its owner and mode (ls -l), or run relayd as the user that owns it")
        }
        return resolved
    }

    static func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }

    private func hostPort(_ text: String, reader: TOMLReader, key: String) throws(ConfigError) -> (host: String, port: Int, text: String) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              port >= 0, port <= 65535 else {
            throw reader.error(key, "expected HOST:PORT such as \"127.0.0.1:7443\", got \"\(text)\"")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { throw reader.error(key, "the host is empty; use 127.0.0.1 or 0.0.0.0") }
        return (host, port, text)
    }
}
