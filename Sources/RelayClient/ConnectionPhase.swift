import NIOCore
import RelayWire

/// What a ``ConnectionCore`` is doing, each phase holding the data that
/// exists only in it: an attempt's generation, channel and HELLO timer while
/// connecting; the channel and the broker's ``SessionInfo`` once welcomed;
/// the retry timer while waiting; the final error once closed. Nothing of it
/// is copied onto the core, so nothing can disagree with it.
///
/// A value with no I/O of its own: each transition returns what the core must
/// act on (a channel to close, a timer to cancel), and the core performs it.
/// `ConnectionPhaseTests` drive it without a socket.
///
/// Generations: every attempt gets the next number, and every event of a
/// channel is tagged with the generation it was opened for, so an event of
/// an earlier attempt (a late close, a frame read after the close) never acts
/// on a later one. Only the live attempt's events are taken: while waiting
/// to reconnect, and once closed, there is none.
struct ConnectionPhase {
    /// One attempt, from the TCP connect to WELCOME.
    struct Attempt {
        let generation: UInt64
        /// Set once TCP is up and HELLO is on its way.
        var channel: (any Channel)?
        /// Closes the attempt when WELCOME does not come in time.
        var helloTimeout: Scheduled<Void>?
    }

    /// A connection the broker welcomed. A class so that matching the phase
    /// copies one reference: every written frame reads ``frameLimit``, and
    /// copying the channel and SessionInfo's strings out of the phase on each
    /// read was 9% of a subscriber's CPU.
    final class Link {
        let generation: UInt64
        let channel: any Channel
        let session: SessionInfo

        init(generation: UInt64, channel: any Channel, session: SessionInfo) {
            self.generation = generation
            self.channel = channel
            self.session = session
        }
    }

    enum State {
        /// Not started.
        case idle
        case connecting(Attempt)
        case connected(Link)
        /// The attempt `after` ended; `retry` starts the next one.
        case waiting(after: UInt64, retry: Scheduled<Void>?)
        /// For good: closed by the owner (nil) or by an error retrying cannot fix.
        case closed(RelayClientError?)
    }

    /// What ``lose(generation:)`` took down, for the core to release.
    struct Lost {
        /// The attempt's channel, or the welcomed connection's.
        var channel: (any Channel)?
        var helloTimeout: Scheduled<Void>?
        /// True when the broker had welcomed it: publishes in flight go back in the queue.
        var wasConnected: Bool
    }

    private(set) var state: State = .idle

    // MARK: Questions

    /// True when `generation` is the live attempt's (connecting or connected).
    func isCurrent(_ generation: UInt64) -> Bool {
        switch state {
        case .connecting(let attempt): attempt.generation == generation
        case .connected(let link): link.generation == generation
        case .idle, .waiting, .closed: false
        }
    }

    /// The welcomed connection, if there is one.
    var link: Link? {
        if case .connected(let link) = state { return link }
        return nil
    }

    /// True while the broker's WELCOME holds (``State/connected(_:)``).
    var isConnected: Bool {
        if case .connected = state { return true }
        return false
    }

    /// The broker's frame size limit once welcomed; the protocol default before.
    var frameLimit: Int {
        if case .connected(let link) = state { return link.session.maxFrameSize }
        return FrameLayout.defaultMaxFrameSize
    }

    /// The live attempt's channel, welcomed or not.
    var liveChannel: (any Channel)? {
        switch state {
        case .connecting(let attempt): attempt.channel
        case .connected(let link): link.channel
        case .idle, .waiting, .closed: nil
        }
    }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    // MARK: Transitions

    /// Starts the next attempt, from ``State/idle`` or ``State/waiting(after:retry:)``;
    /// returns its generation, or nil in any other phase (nothing changes).
    mutating func beginAttempt() -> UInt64? {
        let generation: UInt64
        switch state {
        case .idle: generation = 1
        case .waiting(let after, _): generation = after + 1
        case .connecting, .connected, .closed: return nil
        }
        state = .connecting(Attempt(generation: generation))
        return generation
    }

    /// TCP is up for attempt `generation`; false when that attempt is no longer live.
    mutating func transportUp(_ channel: any Channel, generation: UInt64) -> Bool {
        guard case .connecting(var attempt) = state, attempt.generation == generation else { return false }
        attempt.channel = channel
        state = .connecting(attempt)
        return true
    }

    /// HELLO went out; `timeout` closes the attempt if WELCOME does not come.
    /// False (and the caller cancels `timeout`) when the attempt is no longer live.
    mutating func helloSent(timeout: Scheduled<Void>, generation: UInt64) -> Bool {
        guard case .connecting(var attempt) = state, attempt.generation == generation else { return false }
        attempt.helloTimeout = timeout
        state = .connecting(attempt)
        return true
    }

    /// WELCOME for attempt `generation`: connected. Returns the new link and
    /// the HELLO timer to cancel; nil when the attempt is not live or its
    /// transport never came up (nothing changes).
    mutating func welcome(_ session: SessionInfo, generation: UInt64) -> (link: Link, helloTimeout: Scheduled<Void>?)? {
        guard case .connecting(let attempt) = state, attempt.generation == generation,
              let channel = attempt.channel else { return nil }
        let link = Link(generation: generation, channel: channel, session: session)
        state = .connected(link)
        return (link, attempt.helloTimeout)
    }

    /// Attempt (or connection) `generation` ended: waiting, with no retry
    /// scheduled yet (``retryScheduled(_:)`` sets it; ``close(_:)`` may follow
    /// instead). Nil for an attempt that is not live: an old one, or one
    /// already handled.
    mutating func lose(generation: UInt64) -> Lost? {
        let lost: Lost
        switch state {
        case .connecting(let attempt) where attempt.generation == generation:
            lost = Lost(channel: attempt.channel, helloTimeout: attempt.helloTimeout, wasConnected: false)
        case .connected(let link) where link.generation == generation:
            lost = Lost(channel: link.channel, helloTimeout: nil, wasConnected: true)
        default:
            return nil
        }
        state = .waiting(after: generation, retry: nil)
        return lost
    }

    /// The next attempt is scheduled; false (and the caller cancels `retry`)
    /// unless waiting.
    mutating func retryScheduled(_ retry: Scheduled<Void>) -> Bool {
        guard case .waiting(let after, _) = state else { return false }
        state = .waiting(after: after, retry: retry)
        return true
    }

    /// Closed for good. Returns the phase it leaves, for the core to release
    /// (send BYE on a link, close a channel, cancel a timer); nil when it was
    /// already closed (the first error stays).
    mutating func close(_ error: RelayClientError?) -> State? {
        if case .closed = state { return nil }
        let previous = state
        state = .closed(error)
        return previous
    }
}
