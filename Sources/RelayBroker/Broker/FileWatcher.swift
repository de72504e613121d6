/// With `[reload] watch = true`: polls the config and TLS files every
/// second and reloads when one changed (rotation without SIGHUP). Off by
/// default, so a half-finished edit never goes live by itself.
///
/// One edit, one reload: after a change is seen, the files must stay
/// unchanged for ``settleNanos`` before the reload runs, so a file written in
/// place in several writes, or a certificate and its key copied one after
/// the other, is read once, complete. Each path is followed through its
/// symlinks and compared by content (``WatchedFile``), so a Kubernetes
/// `..data` swap and an in-place rewrite both count.
enum FileWatcher {
    static let pollNanos: UInt64 = 1_000_000_000
    static let settleNanos: UInt64 = 1_000_000_000
    /// A file that never stops changing is reloaded after this many settle intervals anyway.
    static let maxSettleRounds = 30

    static func watch(broker: Broker) async {
        func observe() -> [String: WatchedFile] {
            var out: [String: WatchedFile] = [:]
            for path in broker.context.configuration.watchedFiles { out[path] = WatchedFile.observe(path) }
            return out
        }
        func changed(_ now: [String: WatchedFile], since last: [String: WatchedFile]) -> Bool {
            guard Set(now.keys) == Set(last.keys) else { return true }
            return now.contains { path, file in last[path].map(file.differs(from:)) ?? true }
        }
        var watching: Bool { broker.context.configuration.reload.watch }
        // nil while watching is off; the baseline is taken when it is turned on.
        var last: [String: WatchedFile]? = watching ? observe() : nil
        while !Task.isCancelled {
            try? await Task.sleep(nanoseconds: pollNanos)
            guard watching else { last = nil; continue }
            let now = observe()
            guard let before = last else { last = now; continue }
            guard changed(now, since: before) else { continue }
            var settled = now
            for _ in 0..<maxSettleRounds {
                try? await Task.sleep(nanoseconds: settleNanos)
                guard !Task.isCancelled else { return }
                let again = observe()
                if !changed(again, since: settled) { break }
                settled = again
            }
            broker.reload(trigger: .fileChange)
            // Keep what was seen before the reload for files already watched:
            // a file changed while the reload read it (a cert without its new
            // key yet) differs at the next poll and triggers another reload
            // instead of staying refused. Files the new configuration added
            // start from their current state.
            last = observe().reduce(into: [:]) { out, entry in out[entry.key] = settled[entry.key] ?? entry.value }
        }
    }
}
