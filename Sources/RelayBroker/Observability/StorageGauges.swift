import Foundation
#if canImport(Glibc)
import Glibc
#endif
import RelayStore

extension BrokerContext {
    /// Records the store's size, limit, the data file system's free space
    /// and each durable's lag (``StorageSampler`` calls it every five seconds).
    func recordStorageGauges(_ usage: StorageUsage) {
        metrics.storageBytes.record(usage.usedBytes)
        metrics.storageMaxBytes.record(usage.maxBytes)
        var stats = statvfs()
        if statvfs(configuration.storage.path, &stats) == 0 {
            metrics.storageFilesystemFreeBytes.record(Int(stats.f_bavail) * Int(stats.f_frsize))
        }
        // A shared log's listing is a request per cursor to the cluster, from
        // every edge every 5 s: a cluster edge exports the durables attached
        // to it, from the cursors it read and stored, against the stream's
        // last sequence (one request; docs/cluster.md).
        if store is any SharedMessageLog {
            if let known = store as? any KnownCursorReporting, let tail = try? store.lastSequence() {
                metrics.lagGauges.update(cursors: known.knownCursors(attachedDurables()), tail: tail, metrics: metrics)
            }
        } else if let administration = store as? any DurableCursorAdministration,
                  let cursors = try? administration.durableCursors(), let tail = try? store.lastSequence() {
            metrics.lagGauges.update(cursors: cursors, tail: tail, metrics: metrics)
        }
    }
}
