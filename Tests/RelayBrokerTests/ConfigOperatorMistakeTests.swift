import Foundation
import Testing
import RelayTestSupport
@testable import RelayBroker

/// Mistakes an operator makes in relay.toml that the parser used to accept
/// (wave 14 review): each must be refused at load, naming the key, instead
/// of surfacing later as a broker that locks every client out or stores its
/// data next to the config file.
@Suite("Broker configuration: operator mistakes")
struct ConfigOperatorMistakeTests {
    let minimalTLS = """
    [tls]
    certificate = "server.crt"
    private_key = "server.key"
    client_ca = "ca.crt"
    """

    func folder() throws -> TemporaryDirectory {
        let dir = try TemporaryDirectory(prefix: "relay-config-mistakes")
        try dir.createPlaceholders(["server.crt", "server.key", "ca.crt"])
        return dir
    }

    func refusal(_ text: String, in dir: TemporaryDirectory) -> ConfigError? {
        do {
            _ = try BrokerConfiguration.parse(text, file: dir.file("relay.toml"), baseDirectory: dir.path)
            return nil
        } catch {
            return error
        }
    }

    @Test("an empty [storage] path is refused (it used to make the config's own folder the store)")
    func emptyStoragePath() throws {
        let dir = try folder(); defer { dir.remove() }
        let error = try #require(refusal("\(minimalTLS)\n[storage]\npath = \"\"", in: dir))
        #expect(error.key == "storage.path", "\(error)")
        #expect(error.message.contains("empty"), "\(error)")
    }

    @Test("a [tls] file that does not exist is called missing, not 'missing or unreadable'")
    func missingFileSaysMissing() throws {
        let dir = try folder(); defer { dir.remove() }
        let text = minimalTLS.replacingOccurrences(of: "\"ca.crt\"", with: "\"no-such-ca.crt\"")
        let error = try #require(refusal(text, in: dir))
        #expect(error.key == "tls.client_ca" && error.message.contains("does not exist"), "\(error)")
        #expect(!error.message.contains("not readable"), "\(error)")
    }

    @Test("a duration's refusal says what is wrong with it: a quoted number without a unit, a negative number, one too long")
    func durationReasons() throws {
        let dir = try folder(); defer { dir.remove() }
        let quoted = try #require(refusal("[server]\nhello_timeout = \"5\"\n\(minimalTLS)", in: dir))
        #expect(quoted.key == "server.hello_timeout" && quoted.message.contains("unit") && quoted.message.contains("\"5s\""),
                "\(quoted)")
        let negative = try #require(refusal("[server]\nhello_timeout = -5\n\(minimalTLS)", in: dir))
        #expect(negative.message.contains("negative"), "\(negative)")
        let huge = try #require(refusal("[server]\nhello_timeout = \"9999999999d\"\n\(minimalTLS)", in: dir))
        #expect(huge.message.contains("too long"), "\(huge)")
    }

    @Test("a zero hello or handshake timeout is refused (every client would be closed at once)")
    func zeroTimeouts() throws {
        let dir = try folder(); defer { dir.remove() }
        let hello = try #require(refusal("[server]\nhello_timeout = \"0s\"\n\(minimalTLS)", in: dir))
        #expect(hello.key == "server.hello_timeout" && hello.message.contains("more than 0"), "\(hello)")
        let handshake = try #require(refusal("\(minimalTLS)\nhandshake_timeout = 0", in: dir))
        #expect(handshake.key == "tls.handshake_timeout" && handshake.message.contains("more than 0"), "\(handshake)")
    }

    @Test("sync_interval below 1 ms is refused, pointing at durability = \"fsync\" (it was clamped to 1 ms in silence)")
    func zeroSyncInterval() throws {
        let dir = try folder(); defer { dir.remove() }
        let zero = try #require(refusal("[storage]\ndurability = \"async\"\nsync_interval = \"0s\"\n\(minimalTLS)", in: dir))
        #expect(zero.key == "storage.sync_interval" && zero.message.contains("durability = \"fsync\""), "\(zero)")
        let tiny = try #require(refusal("[storage]\nsync_interval = \"500us\"\n\(minimalTLS)", in: dir))
        #expect(tiny.key == "storage.sync_interval", "\(tiny)")
        #expect(refusal("[storage]\nsync_interval = \"1ms\"\n\(minimalTLS)", in: dir) == nil)
    }

    @Test("a TLS file that is a directory or an empty string is refused, naming the key")
    func directoryOrEmptyTLSFile() throws {
        let dir = try folder(); defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.file("certs"), withIntermediateDirectories: true)
        let directory = try #require(refusal(minimalTLS.replacingOccurrences(of: "\"server.crt\"", with: "\"certs\""), in: dir))
        #expect(directory.key == "tls.certificate", "\(directory)")
        #expect(directory.message.contains("is a directory") && directory.message.contains(dir.file("certs")), "\(directory)")
        let empty = try #require(refusal(minimalTLS.replacingOccurrences(of: "\"ca.crt\"", with: "\"\""), in: dir))
        #expect(empty.key == "tls.client_ca" && empty.message.contains("empty"), "\(empty)")
    }

    @Test("an [audit] path that is a directory is refused, naming the key")
    func auditPathIsDirectory() throws {
        let dir = try folder(); defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.file("logs"), withIntermediateDirectories: true)
        let error = try #require(refusal("\(minimalTLS)\n[audit]\npath = \"logs\"", in: dir))
        #expect(error.key == "audit.path" && error.message.contains("is a directory"), "\(error)")
    }

    /// `config/relay.toml` names its files as `../dev/pki/…`. Foundation's
    /// `standardizedFileURL` resolves every symlink of a path holding `..`, so
    /// the broker kept the link's target of the moment it loaded, and the
    /// `[reload] watch` poller watched that old file: a rotation that swaps a
    /// link (`ln -sfn v2 current`, a Kubernetes `..data` swap) while the old
    /// version stays on disk was never noticed, a new CRL never applied.
    @Test("a path through a symlink keeps the link: swapping the link later changes the file the broker reads")
    func symlinkIsNotResolvedAtLoad() throws {
        let dir = try TemporaryDirectory(prefix: "relay-config-symlink"); defer { dir.remove() }
        let fm = FileManager.default
        for folder in ["cfg", "tls/v1", "tls/v2"] {
            try fm.createDirectory(atPath: dir.file(folder), withIntermediateDirectories: true)
        }
        for version in ["v1", "v2"] {
            for name in ["server.crt", "server.key", "ca.crt", "crl.pem"] {
                try Data(version.utf8).write(to: URL(fileURLWithPath: dir.file("tls/\(version)/\(name)")))
            }
        }
        try fm.createSymbolicLink(atPath: dir.file("tls/current"), withDestinationPath: "v1")
        for name in ["server.crt", "server.key", "ca.crt", "crl.pem"] {
            try fm.createSymbolicLink(atPath: dir.file("tls/\(name)"), withDestinationPath: "current/\(name)")
        }
        let text = """
        [tls]
        certificate = "../tls/server.crt"
        private_key = "../tls/server.key"
        client_ca = "../tls/ca.crt"
        crl = "../tls/crl.pem"
        """
        let config = try BrokerConfiguration.parse(text, file: dir.file("cfg/relay.toml"), baseDirectory: dir.file("cfg"))
        // The rotation: point the link at v2, keep v1 on disk.
        try fm.removeItem(atPath: dir.file("tls/current"))
        try fm.createSymbolicLink(atPath: dir.file("tls/current"), withDestinationPath: "v2")
        for path in config.watchedFiles.dropFirst() {
            let content = try String(contentsOfFile: path, encoding: .utf8)
            #expect(content == "v2", "\(path) still reads the file the link named at load")
        }
    }
}

extension ConfigOperatorMistakeTests {
    @Test("`..` after a real directory is folded into the path; after a link it is kept for the kernel")
    func dotDotFolding() throws {
        let dir = try TemporaryDirectory(prefix: "relay-config-dotdot"); defer { dir.remove() }
        let fm = FileManager.default
        for folder in ["etc/relay", "opt/conf", "etc/tls"] {
            try fm.createDirectory(atPath: dir.file(folder), withIntermediateDirectories: true)
        }
        try fm.createSymbolicLink(atPath: dir.file("etc/linked"), withDestinationPath: dir.file("opt/conf"))
        let parser = ConfigParser(file: "relay.toml", base: dir.file("etc/relay"), checkFiles: false)
        #expect(parser.resolve("../tls/./crl.pem") == dir.file("etc/tls/crl.pem"))
        #expect(parser.resolve("data") == dir.file("etc/relay/data"))
        #expect(parser.resolve("/abs//x.pem") == "/abs/x.pem")
        // etc/linked/.. is opt, not etc: the path keeps the `..`.
        let linked = ConfigParser(file: "relay.toml", base: dir.file("etc/linked"), checkFiles: false)
        #expect(linked.resolve("../tls/crl.pem") == dir.file("etc/linked") + "/../tls/crl.pem")
    }
}

extension ConfigOperatorMistakeTests {
    /// It passed --check-config, and the start then blamed "another process
    /// (another relayd?)" for the port relayd itself had just taken.
    @Test("[metrics] listen on the client port's address is refused, naming both keys")
    func metricsOnTheClientPort() throws {
        let dir = try folder(); defer { dir.remove() }
        let error = try #require(refusal("[server]\nlisten = \"127.0.0.1:7443\"\n\(minimalTLS)\n[metrics]\nlisten = \"127.0.0.1:7443\"", in: dir))
        #expect(error.key == "metrics.listen" && error.message.contains("server.listen"), "\(error)")
        #expect(refusal("[server]\nlisten = \"127.0.0.1:0\"\n\(minimalTLS)\n[metrics]\nlisten = \"127.0.0.1:0\"", in: dir) == nil)
    }
}
