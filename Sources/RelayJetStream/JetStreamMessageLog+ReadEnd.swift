import RelayStore

extension JetStreamMessageLog {
    /// Where a read continues after a filtered direct get found nothing at or
    /// after `next`: past the stream's last sequence when the leader agrees
    /// nothing on `subject` lies there, or nil when it does not.
    ///
    /// Why the leader is asked: with `allow_direct` every replica answers
    /// direct gets, and one that is behind the leader (a node just restarted,
    /// or a follower after the leader's loss) says "nothing" for messages it
    /// has not received yet. Trusting it skipped a committed message for a
    /// subscriber that moved to another edge (ClusterTests/failover, seen
    /// once in two runs). The last sequence is read first and the count
    /// after it, so a message committed in between is counted, never skipped.
    func endOfRead(after next: UInt64, subject: String) throws(StoreError) -> UInt64? {
        let last = try state().lastSequence
        guard last >= next else { return next }
        return try count(subject, from: next) == 0 ? last + 1 : nil
    }
}
