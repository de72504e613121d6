import Foundation
@testable import RelayJetStream
import Testing

/// The edge reads JetStream's answer to each publish itself (pipeline.h,
/// relay_pub_ack_parse) instead of nats.c's asynchronous-publish layer:
/// every shape of answer must give the outcome nats.c gave, since the retry
/// and error paths (exactly-once retries on "no responders", storage_full
/// on a full stream) decide on it (docs/performance-history.md, "Cluster edge (wave 8)").
@Suite("JetStream publish replies")
struct JetStreamPublishReplyTests {
    private func outcome(_ json: String, status: String? = nil) -> NATSConnection.PublishOutcome {
        NATSConnection.publishReplyOutcome(data: Array(json.utf8), statusHeader: status)
    }

    private func sequence(_ outcome: NATSConnection.PublishOutcome) -> (UInt64, Bool)? {
        guard case .acked(let sequence, let duplicate) = outcome else { return nil }
        return (sequence, duplicate)
    }

    private func error(_ outcome: NATSConnection.PublishOutcome) -> NATSError? {
        guard case .failed(let error) = outcome else { return nil }
        return error
    }

    @Test("an ack gives its stream sequence; a duplicate says so")
    func acks() throws {
        let plain = try #require(sequence(outcome(#"{"stream":"RELAY","seq":42}"#)))
        #expect(plain == (42, false))
        let duplicate = try #require(sequence(outcome(#"{"stream":"RELAY", "seq": 7, "duplicate": true}"#)))
        #expect(duplicate == (7, true))
        let withDomain = try #require(sequence(outcome(#"{"stream":"RELAY","domain":"hub","seq":18446744073709551615}"#)))
        #expect(withDomain == (UInt64.max, false))
    }

    @Test("a stream named like a key (seq, error, duplicate, stream) is a value, not that key")
    func streamNamedLikeAKey() throws {
        for name in ["seq", "error", "duplicate", "stream", "description"] {
            let ack = sequence(outcome(#"{"stream":"\#(name)","seq":9}"#))
            #expect(ack.map { $0 == (9, false) } == true, "stream \(name): \(String(describing: outcome(#"{"stream":"\#(name)","seq":9}"#)))")
        }
        let duplicate = sequence(outcome(#"{"stream":"duplicate", "seq": 3, "duplicate": true}"#))
        #expect(duplicate.map { $0 == (3, true) } == true)
    }

    @Test("a refusal gives JetStream's error code and description: a full stream is storage_full, not unavailable")
    func refusals() throws {
        let full = try #require(error(outcome(
            #"{"error":{"code":400,"err_code":10077,"description":"maximum bytes exceeded"},"stream":"RELAY","seq":0}"#)))
        #expect(full.jsCode == 10077)
        #expect(full.text == "maximum bytes exceeded")
        #expect(full.isStreamFull && !full.isUnavailable)
        let escaped = try #require(error(outcome(#"{"error":{"code":503,"err_code":10008,"description":"a \"quoted\" \\ text"}}"#)))
        #expect(escaped.text == #"a "quoted" \ text"#)
        #expect(escaped.isUnavailable, "10008 (cluster not available) is a cluster without quorum")
    }

    @Test("no responders (status 503, no data) is unavailable, so the append retries with the same id")
    func noResponders() throws {
        let failure = try #require(error(outcome("", status: "503")))
        #expect(failure.isUnavailable)
        #expect(failure.text.lowercased().contains("no responders"), "\(failure)")
    }

    @Test("an answer that is no ack is a failure that says what came, never an ack with sequence 0")
    func notAnAck() throws {
        for text in ["", "{}", "hello", #"{"stream":"RELAY"}"#, #"{"seq":5}"#] {
            let failure = error(outcome(text))
            #expect(failure != nil, "\(text) was taken for an ack")
            #expect(failure.map { !$0.isUnavailable && !$0.isStreamFull } == true, "\(text): \(String(describing: failure))")
        }
    }
}
