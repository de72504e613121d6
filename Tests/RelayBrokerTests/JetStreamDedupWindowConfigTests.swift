import Foundation
import RelayTestSupport
import Testing
@testable import RelayBroker

/// docs/cluster.md, "Dedup window and the retry budget": on the jetstream
/// backend `[storage] dedup_window` is the stream's duplicate window, and an
/// edge retries a publish with the same Nats-Msg-Id for up to
/// `publish_timeout`, plus the last attempt's ack wait (2 s). A window no
/// longer than that budget lets a retry arrive after JetStream forgot the
/// first attempt's id, storing the message twice, so such a config is refused
/// at load (start, `--check-config`, reload) with what to change.
@Suite("JetStream dedup window config")
struct JetStreamDedupWindowConfigTests {
    func parse(dedupWindow: String?, publishTimeout: String?, backend: String = "jetstream") throws -> BrokerConfiguration {
        try JetStreamConfigFixture.parse(storage: dedupWindow.map { "dedup_window = \"\($0)\"" } ?? "",
                                         jetstream: publishTimeout.map { "publish_timeout = \"\($0)\"" } ?? "",
                                         backend: backend)
    }

    @Test("a dedup_window not longer than publish_timeout + 2 s is refused on jetstream, naming both keys and the minimum")
    func windowShorterThanRetryBudgetRefused() throws {
        for (window, timeout) in [("10s", nil), ("12s", "10s"), ("5s", "4s"), ("30s", "30s")] as [(String, String?)] {
            do {
                let config = try parse(dedupWindow: window, publishTimeout: timeout)
                Issue.record("accepted dedup_window \(window) with publish_timeout \(timeout ?? "default"): \(config.storage.dedupWindowNanos)")
            } catch let error as ConfigError {
                #expect(error.key == "storage.dedup_window", "\(error)")
                #expect(error.message.contains("publish_timeout"), "\(error)")
                #expect(error.message.contains("longer than"), "\(error)")
            }
        }
    }

    @Test("the defaults, a window above the budget, and any window on lmdb are accepted")
    func windowAboveBudgetAccepted() throws {
        let defaults = try parse(dedupWindow: nil, publishTimeout: nil)
        #expect(defaults.storage.dedupWindowNanos == 120_000_000_000)
        let short = try parse(dedupWindow: "13s", publishTimeout: "10s")
        #expect(short.storage.dedupWindowNanos == 13_000_000_000)
        let lmdb = try parse(dedupWindow: "5s", publishTimeout: nil, backend: "lmdb")
        #expect(lmdb.storage.dedupWindowNanos == 5_000_000_000)
    }
}
