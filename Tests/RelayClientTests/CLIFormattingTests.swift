import Foundation
import RelayCLISupport
import RelayClient
import RelayCore
import RelayTLS
import Testing

@Suite("CLI parsing, formatting and error words")
struct CLIFormattingTests {
    @Test("--from parses earliest, latest, seq:N, time:RFC3339 and last:N and refuses anything else as usage")
    func startPositions() throws {
        #expect(try parseStartPosition("earliest") == .earliest)
        #expect(try parseStartPosition("latest") == .latest)
        #expect(try parseStartPosition("seq:42") == .sequence(42))
        #expect(try parseStartPosition("last:5") == .last(5))
        #expect(try parseStartPosition("time:1970-01-01T00:00:01Z") == .time(1_000_000_000))
        #expect(try parseStartPosition("time:1970-01-01T00:00:01.5Z") == .time(1_500_000_000))
        for bad in ["", "seq:0", "last:0", "seq:x", "time:yesterday", "tomorrow"] {
            #expect(throws: RelayClientError.self) { try parseStartPosition(bad) }
        }
    }

    @Test("RFC 3339 timestamps are UTC with nanoseconds")
    func rfc3339() {
        #expect(RFC3339.format(nanoseconds: 1_714_564_800_123_456_789) == "2024-05-01T12:00:00.123456789Z")
        #expect(RFC3339.format(nanoseconds: 0) == "1970-01-01T00:00:00.000000000Z")
    }

    @Test("JSON strings escape quotes, backslashes and control characters")
    func quoting() {
        #expect(JSONText.quoted("a\"b\\c\nd\u{1}") == #""a\"b\\c\nd\u0001""#)
    }

    @Test("TLS alerts map to plain words: revoked, unknown CA, expired, certificate required; all exit 77")
    func tlsWords() {
        let cases: [(String, String)] = [
            ("certificate revoked", "it was revoked (TLS alert certificate_revoked)"),
            ("unknown ca", "does not trust this certificate's CA (TLS alert unknown_ca)"),
            ("certificate expired", "it has expired or is not yet valid (TLS alert certificate_expired)"),
            ("certificate required", "requires a client certificate and none was sent"),
        ]
        for (alert, words) in cases {
            let error = RelayClientError.tls(.alertReceived(code: 0, description: alert), server: "h:1")
            #expect(error.message.contains(words))
            #expect(error.exitCode == 77)
            #expect(!error.isRetryable)
        }
    }

    @Test("broker codes map to categories: identity_refused and not_authorized denied, invalid_topic usage, shutting down retryable")
    func brokerCodes() {
        let refused = RelayClientError.broker(rawCode: RelayErrorCode.identityRefused.rawValue, message: "")
        #expect(refused.category == .denied && refused.exitCode == 77)
        #expect(refused.message.contains("the broker's policy grants this certificate nothing"))
        #expect(RelayClientError.broker(rawCode: RelayErrorCode.notAuthorized.rawValue, message: "").exitCode == 77)
        #expect(RelayClientError.broker(rawCode: RelayErrorCode.invalidTopic.rawValue, message: "").exitCode == 64)
        #expect(RelayClientError.broker(rawCode: RelayErrorCode.serverShuttingDown.rawValue, message: "").isRetryable)
        #expect(RelayClientError.broker(rawCode: 0x7777, message: "").message.contains("30583"))
    }

    @Test("backoff doubles from the initial delay up to the maximum, with bounded jitter")
    func backoff() {
        let policy = ReconnectPolicy(initialDelay: .milliseconds(100), maximumDelay: .seconds(1), jitter: 0.2)
        #expect(policy.delay(attempt: 1) >= .milliseconds(100) && policy.delay(attempt: 1) <= .milliseconds(120))
        #expect(policy.delay(attempt: 3) >= .milliseconds(400) && policy.delay(attempt: 3) <= .milliseconds(480))
        #expect(policy.delay(attempt: 30) >= .seconds(1) && policy.delay(attempt: 30) <= .milliseconds(1200))
    }

    @Test("a missing TLS file is a usage error that names the file")
    func missingFiles() {
        let configuration = RelayClientConfiguration(host: "127.0.0.1", port: 1, certificatePath: "/nonexistent/c.pem",
                                                     privateKeyPath: "/nonexistent/c.key", caPath: "/nonexistent/ca.pem")
        do {
            _ = try RelayConnection(configuration: configuration)
            Issue.record("a connection was made from missing files")
        } catch {
            #expect(error.category == .usage)
            #expect(error.message.contains("/nonexistent/"))
        }
    }
}
