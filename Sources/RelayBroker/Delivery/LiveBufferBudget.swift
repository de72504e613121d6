import Synchronization

/// The live-buffer bytes of every connection together (`[limits]
/// live_buffer_budget`, ``RoutedMessage/approximateSize`` accounting). Each
/// connection's ``DeliveryBudget`` takes from it as well as from its own 64 MiB:
/// a subscription whose offer finds either exhausted drops its buffer and
/// reads from the store (everything routed is stored already), so nothing is
/// lost and 10,000 slow connections cannot hold 64 MiB each.
///
/// Shared by every event loop, so one atomic counter. Only the buffering path
/// touches it (a message offered to a buffer, taken from it, a buffer
/// dropped): a live message written at once (``SubscriptionDelivery/maySendLive(_:)``)
/// never does.
final class LiveBufferBudget: Sendable {
    let limit: Int
    private let used = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    /// The bytes held now.
    var bytes: Int { used.load(ordering: .relaxed) }

    /// Reserves `bytes`; false (nothing reserved) when that would pass the limit.
    func take(_ bytes: Int) -> Bool {
        var current = used.load(ordering: .relaxed)
        while current + bytes <= limit {
            let (exchanged, original) = used.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func release(_ bytes: Int) {
        used.subtract(bytes, ordering: .relaxed)
    }
}
