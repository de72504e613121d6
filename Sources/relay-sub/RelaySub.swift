import ArgumentParser
import Foundation
import RelayCore
import NIOConcurrencyHelpers
import RelayCLISupport
import RelayClient

/// `relay-sub`: print messages from a Relay broker.
struct RelaySub: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay-sub",
        abstract: "Subscribe to topics on a Relay broker and print the messages.",
        discussion: """
        Each message shows who published it, as the broker verified from the \
        publisher's certificate.

        Examples:
          relay-sub --server 127.0.0.1:7443 --cert billing.pem --key billing.key --ca ca.pem --topic 'orders.>'
          relay-sub --profile prod --topic 'orders.*.created' --from earliest --count 10 --format json
          relay-sub --topic sensors.t1 --from last:5 --timeout 30 --format raw > readings.txt
          relay-sub --topic 'orders.>' --durable billing-worker --from earliest

        --from takes earliest, latest (the default), seq:N, time:RFC3339 (e.g. \
        time:2024-05-01T12:00:00Z), time:-D (D ago, e.g. time:-1h) or last:N. \
        --since D is time:-D; D is a whole number with s, m, h or d. A --durable \
        subscription resumes after the last message it printed, across runs: an \
        existing durable ignores --from/--since (the broker's notice says so), and \
        reusing its name with another --topic is refused (durable_filter_mismatch).

        A subscription the broker refuses for now (durable_in_use: the --durable \
        is attached to another connection; storage_unavailable: a cluster edge \
        cannot reach its shared log yet) is retried 8 times over about 25 s, \
        with one line on stderr per retry, before the refusal ends relay-sub. \
        A --durable that an operator deletes while relay-sub is attached \
        (durable_deleted) ends relay-sub with exit 64 and one line naming it; \
        run relay-sub again to start a new durable of that name.

        \(RelayExit.helpText)
        """,
        version: RelayVersion.description)

    @OptionGroup var client: ClientOptions
    @OptionGroup var keepalive: KeepaliveOption

    @Option(name: .long, help: ArgumentHelp("A topic filter to subscribe to (repeatable); '*' matches one token, '>' the rest.",
                                            valueName: "filter"))
    var topic: [String]

    @Option(name: .long, help: ArgumentHelp("Where to start: earliest, latest, seq:N, time:RFC3339, time:-D, last:N.", valueName: "position"))
    var from: String = "latest"

    @Option(name: .long, help: ArgumentHelp("Start this long ago: 30s, 5m, 1h, 2d (same as --from time:-D).", valueName: "duration"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("Keep a durable cursor with this name (one --topic only).", valueName: "name"))
    var durable: String?

    @Option(name: .long, help: "Exit after this many messages.")
    var count: Int?

    @Option(name: .long, help: "Exit after this many seconds: 0 when connected then, 69 when the broker could not be reached or still could not serve the subscription (storage_unavailable), 64 when the --durable was still attached to another connection.")
    var timeout: Double?

    @Option(name: .long, help: "Output: pretty (default), json (one object per line) or raw (payload and a newline).")
    var format: MessageFormat = .pretty

    func validate() throws {
        guard !topic.isEmpty else { throw ValidationError("give at least one --topic") }
        if durable != nil, topic.count > 1 { throw ValidationError("--durable takes exactly one --topic") }
        if since != nil, from != "latest" { throw ValidationError("give --since or --from, not both") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if let timeout, !(timeout > 0) { throw ValidationError("--timeout must be a positive number of seconds") }
    }

    func run() async throws {
        let start = try since.map { try parseSince($0) } ?? parseStartPosition(from, now: currentTimeNanoseconds())
        var configuration = try client.configuration(clientName: "relay-sub", keepalive: keepalive.keepalive)
        // A refused SUB that time may end (a durable held by another
        // connection, a cluster edge without its stream leader): the client
        // retries for about 25 s; say so at every retry.
        let refused = NIOLockedValueBox<SubscribeRetry?>(nil)
        configuration.onSubscribeRetry = { retry in
            refused.withLockedValue { $0 = retry }
            printError("relay-sub: \(retry)")
        }
        let reporter = ConnectionReporter(program: "relay-sub")
        // Time up while connected: a normal end (below). While the broker cannot be reached: exit 69.
        reporter.startWatchdog(timeout: timeout, server: configuration.server) { !reporter.isConnected }
        if let timeout { Self.stopWaitingForRetries(after: timeout, refused: refused) }
        let subscriber = Subscriber(connection: try await reporter.connect(configuration, timeout: timeout))
        var subscriptions: [RelaySubscription] = []
        for filter in topic {
            let subscription = try await subscriber.subscribe(filter: filter, from: start, durable: durable)
            // The broker's notice (an existing durable ignored --from/--since)
            // goes to stderr, so stdout stays messages only.
            if let notice = subscription.notice { printError("relay-sub: \(notice)") }
            subscriptions.append(subscription)
        }
        // The wait is over: say so, after the lines that announced it.
        if let retry = refused.withLockedValue({ state -> SubscribeRetry? in defer { state = nil }; return state }) {
            let retries = "\(retry.attempt) retr\(retry.attempt == 1 ? "y" : "ies")"
            if retry.code == .durableInUse, let name = retry.durableName {
                printError("relay-sub: durable \"\(name)\" attached after \(retries)")
            } else {
                printError("relay-sub: subscribed to \(retry.filter) after \(retries)")
            }
        }
        let received = NIOLockedValueBox(0)
        let format = self.format, count = self.count, timeout = self.timeout, durable = self.durable
        let outcome: Result<Void, RelayClientError> = await withTaskGroup(of: Result<Void, RelayClientError>?.self) { group in
            for subscription in subscriptions {
                group.addTask {
                    do {
                        for try await message in subscription {
                            let done = received.withLockedValue { n -> Bool? in
                                if let count, n >= count { return nil }
                                n += 1
                                writeOut(format.render(message))
                                return count.map { n >= $0 } ?? false
                            }
                            guard let done else { return .success(()) }
                            subscription.ack(message)
                            if done { return .success(()) }
                        }
                        return .failure(RelayClientError(category: .connection,
                                                         message: "the subscription to \(subscription.filter) ended"))
                    } catch let error as RelayClientError {
                        return .failure(Self.explained(error, durable: durable))
                    } catch {
                        return .failure(RelayClientError(category: .connection, message: "\(error)"))
                    }
                }
            }
            if let timeout {
                group.addTask {
                    try? await Task.sleep(nanoseconds: UInt64(timeout * 1_000_000_000))
                    return .success(())
                }
            }
            let first = await group.next() ?? .success(())
            group.cancelAll()
            return first ?? .success(())
        }
        await subscriber.connection.close()
        let total = received.withLockedValue { $0 }
        if timeout != nil || count != nil { printError("relay-sub: received \(total) message(s)") }
        try outcome.get()
    }
}

extension RelaySub {
    /// A subscription the broker ended because an operator deleted its
    /// durable (`durable_deleted`, e.g. `relayctl durable delete` through
    /// another cluster edge): one line naming the durable and what to do.
    /// The exit code stays the library's (64, usage): relay-sub does not
    /// subscribe again by itself, and systemd's `RestartPreventExitStatus=64`
    /// keeps a restart from starting a new durable behind the operator's back.
    static func explained(_ error: RelayClientError, durable: String?) -> RelayClientError {
        guard error.code == .durableDeleted, let durable else { return error }
        var explained = error
        explained.message = "durable \"\(durable)\" was deleted by an operator (relayctl durable delete, through this "
            + "broker or another cluster edge) while relay-sub was attached; its cursor is gone. Run relay-sub again to "
            + "start a new durable \"\(durable)\" from --from (default latest), or use another --durable name (durable_deleted)"
        return explained
    }

    /// Time up while a SUB is still refused and retried: exit with that
    /// refusal instead of waiting out the client's retries: 64 for a durable
    /// attached elsewhere (only the user can end that), 69 for a broker that
    /// cannot serve the subscription yet (storage_unavailable).
    static func stopWaitingForRetries(after timeout: Double, refused: NIOLockedValueBox<SubscribeRetry?>) {
        Task.detached {
            try? await Task.sleep(nanoseconds: UInt64(timeout * 1_000_000_000))
            guard let retry = refused.withLockedValue({ $0 }) else { return }
            if retry.code == .durableInUse {
                let error = RelayClientError.broker(rawCode: retry.rawCode, message: retry.brokerMessage,
                                                    operation: "subscribe to \(retry.filter)")
                CLIRunner.fail("durable \"\(retry.durableName ?? "")\" was still attached to another connection when --timeout "
                               + "\(timeout) s ran out; stop the other subscriber of it or use another --durable name",
                               code: error.exitCode)
            }
            let name = retry.code?.name ?? "code 0x\(String(retry.rawCode, radix: 16))"
            let said = retry.brokerMessage.isEmpty ? "" : ": \(retry.brokerMessage)"
            CLIRunner.fail("the broker still could not serve the subscription to \(retry.filter) when --timeout \(timeout) s "
                           + "ran out (\(name)\(said)); check the broker's log and its storage backend, or raise --timeout",
                           code: RelayExit.unavailable.rawValue)
        }
    }
}
