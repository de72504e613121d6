import Foundation
import RelayTestSupport
import Testing
@testable import RelayClient

@Suite("Client settings precedence")
struct ClientSettingsTests {
    func profileFile(_ dir: TemporaryDirectory) throws -> String {
        let path = dir.file("client.toml")
        try """
        [profile.default]
        server = "profile-host:1"
        cert = "certs/default.crt"
        key = "/abs/default.key"
        ca = "ca.crt"

        [profile.ops]
        server = "ops-host:2"
        cert = "ops.crt"
        key = "ops.key"
        ca = "ops-ca.crt"
        """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("flags beat environment, environment beats the profile")
    func precedence() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let path = try profileFile(dir)
        let settings = try ClientSettings.resolve(
            flags: .init(server: "flag-host:3"),
            environment: ["RELAY_SERVER": "env-host:4", "RELAY_CERT": "/env.crt"],
            profile: nil, profilePath: path)
        #expect(settings.server == "flag-host:3")
        #expect(settings.certificate == "/env.crt")
        #expect(settings.privateKey == "/abs/default.key")
        #expect(settings.ca == dir.file("ca.crt"))
        #expect(settings.hostAndPort?.host == "flag-host" && settings.hostAndPort?.port == 3)
    }

    @Test("a named profile is used; relative paths are relative to the profile file")
    func namedProfile() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let settings = try ClientSettings.resolve(flags: .init(), environment: [:], profile: "ops", profilePath: try profileFile(dir))
        #expect(settings == ClientSettings(server: "ops-host:2", certificate: dir.file("ops.crt"),
                                           privateKey: dir.file("ops.key"), ca: dir.file("ops-ca.crt")))
    }

    @Test("a missing setting names every way to provide it")
    func missing() {
        #expect {
            try ClientSettings.resolve(flags: .init(server: "h:1"), environment: [:], profile: nil, profilePath: "/nonexistent")
        } throws: { error in
            let text = String(describing: error)
            return text.contains("--cert") && text.contains("RELAY_CERT") && text.contains("profile")
        }
    }

    @Test("an unknown profile, a bad server and an unknown profile key are errors")
    func invalid() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let path = try profileFile(dir)
        #expect(throws: ClientSettingsError.self) {
            try ClientSettings.resolve(flags: .init(), environment: [:], profile: "nope", profilePath: path)
        }
        #expect(throws: ClientSettingsError.self) {
            try ClientSettings.resolve(flags: .init(server: "no-port"), environment: [:], profile: nil, profilePath: path)
        }
        try "[profile.default]\nservr = \"x:1\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ClientSettingsError.self) {
            try ClientSettings.resolve(flags: .init(), environment: [:], profile: nil, profilePath: path)
        }
    }

    @Test("a profile file TOMLKit's parser would abort on is refused with its line, not a crash")
    func malformedProfileIsAnError() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let path = dir.file("client.toml")
        for text in ["[profile.default]\nserver = \"h:1\"\n[!]\n", "x = [}\n", "when = 1979-05-27TM-7:32:00Z\n"] {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            #expect {
                try ClientSettings.resolve(flags: .init(), environment: [:], profile: nil, profilePath: path)
            } throws: { error in
                String(describing: error).contains("line")
            }
        }
    }

    /// `server = 7443` (no quotes) was read as no server at all: "no server
    /// given: … add `server = …` to profile", about a key that is there.
    @Test("a profile value of the wrong type is refused naming the key, not taken as absent")
    func wrongTypeInProfile() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let path = dir.file("client.toml")
        for key in ["server", "cert", "key", "ca"] {
            try "[profile.default]\n\(key) = 7443\n".write(toFile: path, atomically: true, encoding: .utf8)
            do {
                _ = try ClientSettings.resolve(flags: .init(server: "h:1", certificate: "c", privateKey: "k", ca: "a"),
                                               environment: [:], profile: nil, profilePath: path)
                Issue.record("\(key) = 7443 was accepted")
            } catch {
                #expect(error.description.contains("\(key)") && error.description.contains("string"), "\(error)")
            }
        }
    }
}
