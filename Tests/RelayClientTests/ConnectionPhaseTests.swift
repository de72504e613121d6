import NIOCore
import NIOEmbedded
@testable import RelayClient
import RelayWire
import Testing

/// The client connection's phases and their transitions, driven directly:
/// no broker, no socket (EmbeddedChannel stands in for the attempt's channel,
/// EmbeddedEventLoop's scheduled tasks for the timers). Each transition is
/// called outside `#expect`, whose closure cannot mutate the phase.
@Suite("ConnectionPhase")
struct ConnectionPhaseTests {
    static func session(maxFrameSize: Int) -> SessionInfo {
        SessionInfo(Welcome(maxFrameSize: UInt32(maxFrameSize), maxPayload: 1 << 20, maxHeaders: 32, maxInFlight: 64,
                            maxSubscriptions: 16, dedupWindow: 0, principal: "billing-service",
                            subject: "CN=billing-service,OU=billing", fingerprint: .zero))
    }

    /// A phase whose first attempt has its transport up on a new channel.
    static func transportUp(on loop: EmbeddedEventLoop) throws -> (ConnectionPhase, UInt64, EmbeddedChannel) {
        var phase = ConnectionPhase()
        let channel = EmbeddedChannel(loop: loop)
        let generationResult = phase.beginAttempt()
        let generation = try #require(generationResult)
        let taken = phase.transportUp(channel, generation: generation)
        #expect(taken)
        return (phase, generation, channel)
    }

    /// The same, welcomed.
    static func welcomed(on loop: EmbeddedEventLoop) throws -> (ConnectionPhase, UInt64, EmbeddedChannel) {
        let (up, generation, channel) = try transportUp(on: loop)
        var phase = up
        let welcome = phase.welcome(session(maxFrameSize: 65_536), generation: generation)
        #expect(welcome != nil)
        return (phase, generation, channel)
    }

    @Test("idle → connecting → connected: generations start at 1, the link owns channel and session, the HELLO timer is handed back")
    func connectAndWelcome() throws {
        let loop = EmbeddedEventLoop()
        var phase = ConnectionPhase()
        #expect(!phase.isCurrent(0) && !phase.isConnected && phase.link == nil)
        #expect(phase.frameLimit == FrameLayout.defaultMaxFrameSize)

        let generationResult = phase.beginAttempt()
        let generation = try #require(generationResult)
        #expect(generation == 1 && phase.isCurrent(1) && !phase.isConnected)
        let second = phase.beginAttempt()
        #expect(second == nil, "a second attempt cannot start while one is live")

        let channel = EmbeddedChannel(loop: loop)
        let wrongTransport = phase.transportUp(channel, generation: 2)
        #expect(!wrongTransport, "a transport of another generation is not taken")
        #expect(phase.liveChannel == nil)
        let transport = phase.transportUp(channel, generation: 1)
        #expect(transport)
        #expect(phase.liveChannel === channel)

        let sent = phase.helloSent(timeout: loop.scheduleTask(in: .seconds(10)) {}, generation: 1)
        #expect(sent)
        let wrongWelcome = phase.welcome(Self.session(maxFrameSize: 65_536), generation: 2)
        #expect(wrongWelcome == nil && !phase.isConnected)
        let welcome = phase.welcome(Self.session(maxFrameSize: 65_536), generation: 1)
        let (link, helloTimeout) = try #require(welcome)
        #expect(helloTimeout != nil, "WELCOME hands back the HELLO timer to cancel")
        #expect(phase.isConnected && phase.link === link && link.channel === channel && link.generation == 1)
        #expect(phase.frameLimit == 65_536, "the broker's limit, read from the session the phase holds")
        let again = phase.welcome(Self.session(maxFrameSize: 1), generation: 1)
        #expect(again == nil, "a second WELCOME changes nothing")
        #expect(phase.frameLimit == 65_536)
    }

    @Test("WELCOME before the transport is up is refused (no channel to own)")
    func welcomeWithoutTransport() throws {
        var phase = ConnectionPhase()
        let generationResult = phase.beginAttempt()
        let generation = try #require(generationResult)
        let welcome = phase.welcome(Self.session(maxFrameSize: 65_536), generation: generation)
        #expect(welcome == nil)
        #expect(!phase.isConnected && phase.isCurrent(generation))
    }

    @Test("losing the live connection: waiting, events of that generation are no longer current, the next attempt is generation + 1")
    func loseAndReconnect() throws {
        let loop = EmbeddedEventLoop()
        let (welcomed, first, channel) = try Self.welcomed(on: loop)
        var phase = welcomed

        let other = phase.lose(generation: first + 1)
        #expect(other == nil && phase.isConnected, "another generation's close is ignored")
        let lostResult = phase.lose(generation: first)
        let lost = try #require(lostResult)
        #expect(lost.wasConnected && lost.channel === channel && lost.helloTimeout == nil)
        #expect(!phase.isCurrent(first), "frames read after the close of `first` are not taken")
        #expect(!phase.isConnected && phase.link == nil && phase.frameLimit == FrameLayout.defaultMaxFrameSize)
        let twice = phase.lose(generation: first)
        #expect(twice == nil, "a second close of the same attempt is already handled")

        let scheduled = phase.retryScheduled(loop.scheduleTask(in: .seconds(1)) {})
        #expect(scheduled)
        guard case .waiting(let after, let retry) = phase.state else {
            Issue.record("expected waiting, got \(phase.state)")
            return
        }
        #expect(after == first && retry != nil)

        let secondResult = phase.beginAttempt()
        let second = try #require(secondResult)
        #expect(second == first + 1 && phase.isCurrent(second) && !phase.isCurrent(first))
    }

    @Test("losing an attempt before WELCOME hands back its channel and HELLO timer, not connected")
    func loseAttempt() throws {
        let loop = EmbeddedEventLoop()
        let (up, generation, channel) = try Self.transportUp(on: loop)
        var phase = up
        let sent = phase.helloSent(timeout: loop.scheduleTask(in: .seconds(10)) {}, generation: generation)
        #expect(sent)
        let lostResult = phase.lose(generation: generation)
        let lost = try #require(lostResult)
        #expect(!lost.wasConnected && lost.channel === channel && lost.helloTimeout != nil)
        let late = phase.helloSent(timeout: loop.scheduleTask(in: .seconds(10)) {}, generation: generation)
        #expect(!late, "a HELLO timer for an attempt that is gone is refused (the caller cancels it)")
    }

    @Test("close: from any phase once, handing back what to release; the first error stays; nothing starts afterwards")
    func close() throws {
        let loop = EmbeddedEventLoop()
        let (welcomed, generation, _) = try Self.welcomed(on: loop)
        var phase = welcomed

        let previousResult = phase.close(.closed)
        let previous = try #require(previousResult)
        guard case .connected(let link) = previous else {
            Issue.record("close should hand back the link to say BYE on, got \(previous)")
            return
        }
        #expect(link.generation == generation)
        #expect(phase.isClosed && !phase.isCurrent(generation) && phase.liveChannel == nil)
        let second = phase.close(.usage("later"))
        #expect(second == nil, "a second close changes nothing")
        guard case .closed(let error) = phase.state else {
            Issue.record("expected closed, got \(phase.state)")
            return
        }
        #expect(error?.message == RelayClientError.closed.message)
        let attempt = phase.beginAttempt()
        let lost = phase.lose(generation: generation)
        let retry = phase.retryScheduled(loop.scheduleTask(in: .seconds(1)) {})
        #expect(attempt == nil && lost == nil && !retry && phase.isClosed)
    }

    @Test("close while idle or waiting")
    func closeIdleOrWaiting() throws {
        let loop = EmbeddedEventLoop()
        var idle = ConnectionPhase()
        guard case .idle? = idle.close(nil) else {
            Issue.record("closing an idle phase hands back .idle")
            return
        }
        var waiting = ConnectionPhase()
        let generationResult = waiting.beginAttempt()
        let generation = try #require(generationResult)
        let ignored = waiting.lose(generation: generation)
        _ = try #require(ignored)
        let scheduled = waiting.retryScheduled(loop.scheduleTask(in: .seconds(1)) {})
        #expect(scheduled)
        guard case .waiting(_, let retry?)? = waiting.close(nil) else {
            Issue.record("closing while waiting hands back the retry timer to cancel")
            return
        }
        retry.cancel()
        #expect(waiting.isClosed)
    }
}
