import RelayStore

extension BrokerContext {
    /// How long the store remembers a producer key, in nanoseconds, as
    /// WELCOME announces it: read from the store's own configuration, so a
    /// client is told the window the store applies (`[storage] dedup_window`).
    var dedupWindowNanoseconds: UInt64 {
        let (seconds, attoseconds) = store.dedupWindow.maxAge.components
        guard seconds >= 0 else { return 0 }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let (total, carry) = whole.addingReportingOverflow(UInt64(max(0, attoseconds / 1_000_000_000)))
        return overflow || carry ? .max : total
    }
}
