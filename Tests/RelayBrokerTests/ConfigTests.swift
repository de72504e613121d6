import Foundation
import Testing
import RelayTestSupport
@testable import RelayBroker

@Suite("Broker configuration")
struct ConfigTests {
    /// A folder with the files [tls] must point at (contents are not read here).
    func folder() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory()
        try dir.createPlaceholders(["server.crt", "server.key", "ca.crt", "crl.pem"])
        return dir
    }

    let minimalTLS = """
    [tls]
    certificate = "server.crt"
    private_key = "server.key"
    client_ca = "ca.crt"
    """

    func parse(_ text: String, in dir: TemporaryDirectory) throws -> BrokerConfiguration {
        try BrokerConfiguration.parse(text, file: dir.file("relay.toml"), baseDirectory: dir.path)
    }

    func expectError(_ text: String, in dir: TemporaryDirectory, key: String, contains fragment: String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
        do {
            _ = try parse(text, in: dir)
            Issue.record("expected a config error for key \(key)", sourceLocation: sourceLocation)
        } catch let error as ConfigError {
            #expect(error.key == key, sourceLocation: sourceLocation)
            #expect(error.description.contains(fragment), "\(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("a minimal config gets the documented defaults, paths resolved against its folder")
    func defaults() throws {
        let dir = try folder(); defer { dir.remove() }
        let config = try parse(minimalTLS, in: dir)
        #expect(config.server.host == "127.0.0.1" && config.server.port == 7443)
        #expect(config.tls.certificate == dir.file("server.crt"))
        #expect(config.tls.clientCA == [dir.file("ca.crt")])
        #expect(config.tls.minVersion == "1.3")
        #expect(config.storage.durability == .fsync)
        #expect(config.storage.path == dir.file("data"))
        #expect(config.metrics.listen == "127.0.0.1:9464")
        #expect(config.acl.rules.isEmpty)
    }

    @Test("every section parses")
    func full() throws {
        let dir = try folder(); defer { dir.remove() }
        let config = try parse("""
        [server]
        listen = "0.0.0.0:9000"
        hello_timeout = "3s"
        \(minimalTLS)
        crl = ["crl.pem"]
        min_version = "1.2"
        handshake_timeout = "750ms"
        [storage]
        path = "/var/lib/relay"
        durability = "async"
        max_size = "2GiB"
        sync_interval = "50ms"
        [[retention]]
        filter = "logs.>"
        max_age = "7d"
        max_bytes = "1GiB"
        [limits]
        max_connections = 100
        max_payload = "64KiB"
        [metrics]
        listen = ""
        [log]
        format = "json"
        level = "debug"
        [audit]
        path = "audit.jsonl"
        [acl]
        principal = "{subject.CN}"
        [[acl.rule]]
        name = "billing"
        match = { "subject.OU" = "billing", "san.dns" = ["a", "b*"] }
        publish = "billing.>"
        subscribe = ["billing.>", "shared.*"]
        deny_publish = ["billing.secret"]
        """, in: dir)
        #expect(config.server.host == "0.0.0.0" && config.server.port == 9000)
        #expect(config.server.helloTimeoutNanos == 3_000_000_000)
        #expect(config.tls.crl == [dir.file("crl.pem")] && config.tls.minVersion == "1.2")
        #expect(config.tls.handshakeTimeoutNanos == 750_000_000)
        #expect(config.storage.path == "/var/lib/relay" && config.storage.durability == .async)
        #expect(config.storage.maxSize == 2 << 30 && config.storage.syncIntervalNanos == 50_000_000)
        #expect(config.retention == [.init(filter: "logs.>", maxAgeNanos: 7 * 86_400_000_000_000, maxMessages: nil, maxBytes: 1 << 30)])
        #expect(config.limits.maxConnections == 100 && config.limits.maxPayload == 65_536)
        #expect(config.metrics.listen == nil)
        #expect(config.log.format == .json && config.log.level == "debug")
        #expect(config.audit.path == dir.file("audit.jsonl"))
        #expect(config.acl.principal == "{subject.CN}")
        #expect(config.acl.rules.count == 1)
        #expect(config.acl.rules.first?.match == ["subject.OU": ["billing"], "san.dns": ["a", "b*"]])
        #expect(config.acl.rules.first?.publish == ["billing.>"])
        #expect(config.acl.rules.first?.denyPublish == ["billing.secret"])
    }

    @Test("an unknown key is refused, naming it")
    func unknownKey() throws {
        let dir = try folder(); defer { dir.remove() }
        expectError("\(minimalTLS)\nverify_client = false", in: dir, key: "tls.verify_client", contains: "unknown key")
        expectError("\(minimalTLS)\n[storage]\ndurabilty = \"fsync\"", in: dir, key: "storage.durabilty", contains: "unknown key")
        expectError("\(minimalTLS)\n[surprise]\nx = 1", in: dir, key: "surprise", contains: "unknown key")
    }

    @Test("a wrong type is refused, naming the key")
    func wrongType() throws {
        let dir = try folder(); defer { dir.remove() }
        expectError("[server]\nlisten = 7443\n\(minimalTLS)", in: dir, key: "server.listen", contains: "expected a string")
        expectError("\(minimalTLS)\n[limits]\nmax_connections = \"many\"", in: dir, key: "limits.max_connections", contains: "expected an integer")
        expectError("\(minimalTLS)\n[storage]\ndurability = \"sometimes\"", in: dir, key: "storage.durability", contains: "\"fsync\"")
        expectError("\(minimalTLS)\n[storage]\nmax_size = \"lots\"", in: dir, key: "storage.max_size", contains: "size")
        expectError("\(minimalTLS)\nhandshake_timeout = \"soon\"", in: dir, key: "tls.handshake_timeout", contains: "duration")
        expectError("\(minimalTLS)\nmin_version = \"1.0\"", in: dir, key: "tls.min_version", contains: "1.3")
    }

    @Test("a missing file is refused, naming the key and the resolved path")
    func missingFile() throws {
        let dir = try folder(); defer { dir.remove() }
        expectError(minimalTLS.replacingOccurrences(of: "ca.crt", with: "nope.crt"), in: dir,
                    key: "tls.client_ca", contains: dir.file("nope.crt"))
        expectError("", in: dir, key: "tls", contains: "missing [tls]")
        expectError("[tls]\ncertificate = \"server.crt\"\nprivate_key = \"server.key\"", in: dir, key: "tls.client_ca", contains: "missing")
    }

    @Test("a missing file's message is for production: it names no development make target")
    func missingFileNamesNoMakeTarget() throws {
        let dir = try folder(); defer { dir.remove() }
        do {
            _ = try parse(minimalTLS.replacingOccurrences(of: "ca.crt", with: "nope.crt"), in: dir)
            Issue.record("a missing client CA file was accepted")
        } catch let error as ConfigError {
            #expect(!error.description.contains("make run"), "\(error)")
            #expect(error.description.contains("relayctl pki init"), "\(error)")
        }
    }

    @Test("a TOML syntax error names the line")
    func syntax() throws {
        let dir = try folder(); defer { dir.remove() }
        expectError("[tls\n", in: dir, key: "", contains: "line 1")
    }

    @Test("invalid retention filters and empty rules are refused")
    func retention() throws {
        let dir = try folder(); defer { dir.remove() }
        expectError("\(minimalTLS)\n[[retention]]\nfilter = \"a.>.b\"\nmax_age = \"1d\"", in: dir, key: "retention[0].filter", contains: "invalid filter")
        expectError("\(minimalTLS)\n[[retention]]\nfilter = \">\"", in: dir, key: "retention[0]", contains: "at least one")
    }

    @Test("reading a file that does not exist says so")
    func missingConfigFile() {
        #expect(throws: ConfigError.self) { try BrokerConfiguration.load(path: "/nonexistent/relay.toml") }
    }

    @Test("duration and size units")
    func units() {
        #expect(ConfigValues.duration("250ms") == 250_000_000)
        #expect(ConfigValues.duration("2h") == 7_200_000_000_000)
        #expect(ConfigValues.duration("-1s") == nil)
        #expect(ConfigValues.duration("fast") == nil)
        #expect(ConfigValues.size("4GiB") == 4 << 30)
        #expect(ConfigValues.size("10 MB") == 10_000_000)
        #expect(ConfigValues.size("123") == 123)
        #expect(ConfigValues.size("99999999999999TiB") == nil)
    }
}

@Suite("Broker configuration: ACL")
struct ConfigACLTests {
    @Test("a rule that does not compile is refused at load, naming the rule and the key")
    func badRule() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        try dir.createPlaceholders(["server.crt", "server.key", "ca.crt"])
        let text = """
        [tls]
        certificate = "server.crt"
        private_key = "server.key"
        client_ca = "ca.crt"
        [[acl.rule]]
        name = "ok"
        match = { "subject.OU" = "a" }
        publish = ["a.>"]
        [[acl.rule]]
        name = "bad"
        match = { "subject.XX" = "a" }
        publish = ["a.>"]
        """
        let result = Result { () throws(ConfigError) in
            try BrokerConfiguration.parse(text, file: "relay.toml", baseDirectory: dir.path)
        }
        guard case .failure(let error) = result else {
            Issue.record("expected an error")
            return
        }
        #expect(error.key.hasPrefix("acl.rule[1].match"))
        #expect(error.description.contains("relay.toml"))
    }
}
