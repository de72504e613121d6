import RelayStore

/// The answers of the log reads a session had made off its event loop (a
/// log whose reads wait on a service: docs/cluster.md, "Replay: runs of
/// direct gets"), back on the loop through ``SessionProxy``.
extension SessionHandler {
    /// A SUB's look-ups made off the loop were answered: it opens or is
    /// refused, then the frames read after it are handled, as one read
    /// batch (their PUBs go to the log together), and reading resumes.
    func startLookedUp(_ id: UInt32, _ answer: Result<StartAnswer, StoreError>) {
        catchUpWithReload()  // a reload while the SUB waited judges it and the held frames
        machine.startLookedUp(id, answer, io)
        handleFrames()
        machine.readBatchEnded(io)
        io.flush()
        settle()
    }

    /// A replay read made off the loop was answered (SessionStateMachine+ReadAhead).
    func replayRead(_ id: UInt32, _ read: ReplayRead, _ batch: Result<ReadBatch, StoreError>) {
        machine.replayRead(id, read, batch, io)
        io.flush()
        settle()
    }
}
