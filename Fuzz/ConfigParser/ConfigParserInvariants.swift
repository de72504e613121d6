// Shared by the relay-fuzz-config-parser target and the corpus replay test
// (Tests/RelayBrokerTests/ConfigCorpus/ links to this file): one set of checks.
import RelayBroker
import RelayCore

/// One input is the config text. It goes through
/// `BrokerConfiguration.parse` (the function `load(path:)` calls after
/// reading the file) with file checks off, so the parser itself is fuzzed and
/// not the file system.
///
/// Invariants, besides "never crashes, never leaks, never reads out of
/// bounds" (ASan in the fuzz build):
/// - a failure is a ``ConfigError`` naming the file and saying something;
/// - an accepted configuration satisfies every range the parser promises
///   (a value outside them would reach the broker unchecked);
/// - its policy compiles, and TLS is never below 1.2.
enum ConfigParserInvariants {
    static let file = "fuzz.toml"

    /// Every broken invariant for `input`; empty when all hold.
    static func violations(_ input: UnsafeRawBufferPointer) -> [String] {
        // Invalid UTF-8 becomes U+FFFD; String(contentsOfFile:) would refuse it anyway.
        let text = String(decoding: input, as: UTF8.self)
        do {
            let config = try BrokerConfiguration.parse(text, file: file, baseDirectory: "/fuzz", checkFiles: false)
            return violations(accepted: config)
        } catch {
            var out: [String] = []
            if error.file != file { out.append("a config error names \(error.file), not the file") }
            if error.message.isEmpty { out.append("a config error without a message (key \(error.key))") }
            return out
        }
    }

    static func violations(accepted config: BrokerConfiguration) -> [String] {
        var out: [String] = []
        func require(_ condition: Bool, _ message: @autoclosure () -> String) {
            if !condition { out.append(message()) }
        }
        require((0...65535).contains(config.server.port), "port \(config.server.port) accepted")
        require(!config.server.host.isEmpty, "an empty listen host accepted")
        require(config.tls.minVersion == "1.3" || config.tls.minVersion == "1.2",
                "TLS min_version \(config.tls.minVersion) accepted")
        require(!config.tls.certificate.isEmpty && !config.tls.privateKey.isEmpty && !config.tls.clientCA.isEmpty,
                "a [tls] section without certificate, key or client CA accepted")
        let paths = [config.tls.certificate, config.tls.privateKey, config.storage.path] + config.tls.clientCA + config.tls.crl
        require(paths.allSatisfy { $0.hasPrefix("/") }, "a relative path survived resolution: \(paths)")
        require(config.storage.maxSize >= 1 << 20, "storage.max_size \(config.storage.maxSize) accepted")
        let limits = config.limits
        require((1...1_000_000).contains(limits.maxConnections), "max_connections \(limits.maxConnections) accepted")
        require((1024...(64 << 20)).contains(limits.maxFrameSize), "max_frame_size \(limits.maxFrameSize) accepted")
        require(limits.maxPayload >= 1 && limits.maxPayload <= limits.maxFrameSize - 1024,
                "max_payload \(limits.maxPayload) accepted with max_frame_size \(limits.maxFrameSize)")
        require((0...1024).contains(limits.maxHeaders), "max_headers \(limits.maxHeaders) accepted")
        require(limits.subscriptionBuffer >= 16, "subscription_buffer \(limits.subscriptionBuffer) accepted")
        for rule in config.retention {
            require((try? TopicFilter(rule.filter)) != nil, "retention filter \(rule.filter) accepted")
            require(rule.maxAgeNanos != nil || rule.maxMessages != nil || rule.maxBytes != nil,
                    "a retention rule without a limit accepted")
        }
        for nanos in [config.server.helloTimeoutNanos, config.tls.handshakeTimeoutNanos, config.storage.syncIntervalNanos] {
            require(nanos >= 0, "a negative duration (\(nanos) ns) accepted")
        }
        require((try? config.makePolicy()) != nil, "the parser accepted an [acl] whose policy does not compile")
        return out
    }
}
