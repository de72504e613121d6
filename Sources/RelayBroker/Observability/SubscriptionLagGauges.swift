import CoreMetrics
import Foundation
import NIOConcurrencyHelpers
import RelayCore
import RelayStore

/// `relay_subscription_lag{durable, owner}`: for each stored durable
/// cursor, how many sequences were committed after it (the tail minus the
/// cursor; messages on topics outside the durable's filter count too, so
/// this is an upper bound of what it still has to read). Sampled with the
/// storage gauges every 5 s from the store's durable listing.
///
/// Bounded cardinality: at most ``maxSeries`` durables are exported, the
/// most lagging first; a durable that is deleted or drops out of the top
/// has its series removed, so the registry never grows past the bound.
/// `owner` is the owner digest in hex (the durable's identity scope, see
/// `IdentityScope`), as `relayctl durables` shows it and `relayctl durable
/// delete` takes it. The listing is the store's ``DurableCursorAdministration``
/// (a log without one, or a shared log, exports no lag).
final class SubscriptionLagGauges: Sendable {
    static let maxSeries = 500

    struct Key: Hashable { var durable: String, owner: String }
    private let exported = NIOLockedValueBox<[Key: Gauge]>([:])

    /// Sets the gauges for `cursors` against the log's `tail`.
    func update(cursors: [DurableCursorRecord], tail: UInt64, metrics: BrokerMetrics) {
        let lags = cursors.map { entry in
            (key: Key(durable: entry.name, owner: Hex.encode(entry.owner.digest)), lag: tail > entry.cursor ? tail - entry.cursor : 0)
        }
        let top = lags.sorted { $0.lag > $1.lag }.prefix(Self.maxSeries)
        exported.withLockedValue { exported in
            let keep = Set(top.map(\.key))
            for (key, gauge) in exported where !keep.contains(key) {
                gauge.destroy()
                exported[key] = nil
            }
            for entry in top {
                let gauge = exported[entry.key] ?? metrics.lag(durable: entry.key.durable, owner: entry.key.owner)
                exported[entry.key] = gauge
                gauge.record(Int64(clamping: entry.lag))
            }
        }
    }
}
