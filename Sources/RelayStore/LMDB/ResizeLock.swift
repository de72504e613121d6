import Foundation

/// A shared/exclusive lock that prefers the exclusive side.
///
/// Every transaction (read or write) holds it shared; growing the map
/// (`mdb_env_set_mapsize`, which LMDB allows only while no transaction of this
/// process is active) holds it exclusive. Writer preference matters: with a
/// steady stream of short replay reads a reader-preferring lock (glibc's
/// default rwlock) could postpone a resize forever while appends fail.
final class ResizeLock: @unchecked Sendable {
    // All fields are guarded by `condition`'s mutex.
    private let condition = NSCondition()
    private var sharedHolders = 0
    private var exclusiveHeld = false
    private var exclusiveWaiting = 0

    func lockShared() {
        condition.lock()
        while exclusiveHeld || exclusiveWaiting > 0 { condition.wait() }
        sharedHolders += 1
        condition.unlock()
    }

    func unlockShared() {
        condition.lock()
        sharedHolders -= 1
        if sharedHolders == 0 && exclusiveWaiting > 0 { condition.broadcast() }
        condition.unlock()
    }

    func lockExclusive() {
        condition.lock()
        exclusiveWaiting += 1
        while exclusiveHeld || sharedHolders > 0 { condition.wait() }
        exclusiveWaiting -= 1
        exclusiveHeld = true
        condition.unlock()
    }

    func unlockExclusive() {
        condition.lock()
        exclusiveHeld = false
        condition.broadcast()
        condition.unlock()
    }
}
