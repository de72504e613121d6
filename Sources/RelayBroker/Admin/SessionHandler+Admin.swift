import Foundation
import NIOCore
import RelayCore
import RelayPolicy
import RelayStore
import RelayWire

/// What one session shows the admin listings, taken on its event loop.
struct SessionSnapshot: Sendable {
    var connection: AdminConnection
    var subscriptions: [AdminSubscription]
    /// The durables it has attached: (owner, name, filter).
    var durables: [(owner: DurableOwner, name: String, filter: String)]
}

/// Who called an admin operation, from the session's verified certificate.
struct AdminCaller: Sendable {
    var principal: String
    var fingerprint: String
    var serial: String
    var access: AdminAccess
    var connectionID: UInt64
    /// The largest frame the caller accepts (its HELLO).
    var frameLimit: Int
}

extension SessionHandler {
    /// ADMIN (§4.15): authorize from the session's permissions (a reload's
    /// new grants apply from the next call), audit the decision with the
    /// verified identity, then run the operation off the event loop. A
    /// refusal is an ADMINREPLY with a code; the session stays open.
    func handleAdmin(_ request: AdminRequest) {
        guard let session = machine.session, let proxy = io.proxy else { return }
        let caller = AdminCaller(principal: session.principal, fingerprint: session.identity.fingerprintSHA256.hex,
                                 serial: session.identity.serialNumber, access: session.permissions.admin,
                                 connectionID: io.connectionID, frameLimit: session.peerFrameLimit)
        func refuse(_ code: RelayErrorCode, _ message: String, audited result: String) {
            broker.audit?.record("admin", ["principal": caller.principal, "fingerprint": caller.fingerprint,
                                           "serial": caller.serial, "operation": request.operation,
                                           "result": result, "reason": message])
            io.write(.adminReply(AdminReply(requestID: request.requestID, refusal: code, message: message)))
        }
        guard let operation = AdminOperation(rawValue: request.operation) else {
            let known = AdminOperation.allCases.map(\.rawValue).joined(separator: ", ")
            return refuse(.invalidAdminRequest, "unknown admin operation '\(request.operation)'; this broker knows \(known)",
                          audited: "invalid")
        }
        guard caller.access >= operation.requiredAccess else {
            let needs = operation.requiredAccess
            return refuse(.notAuthorized, "\(operation.rawValue) needs admin \(needs) access; this identity has "
                + (caller.access == .none ? "none" : "\(caller.access) only")
                + " (an operator grants it with admin = [\"read\"\(needs == .write ? ", \"write\"" : "")] on an [[acl.rule]])",
                audited: "denied")
        }
        let arguments: [String: any Sendable]
        do {
            arguments = try AdminArguments.parse(request.body)
        } catch {
            return refuse(.invalidAdminRequest, "\(error)", audited: "invalid")
        }
        let unknown = arguments.keys.filter { !operation.argumentKeys.contains($0) }.sorted()
        guard unknown.isEmpty else {
            return refuse(.invalidAdminRequest, operation.unknownArgumentsText(unknown), audited: "invalid")
        }
        broker.audit?.record("admin", ["principal": caller.principal, "fingerprint": caller.fingerprint,
                                       "serial": caller.serial, "operation": operation.rawValue, "result": "allowed",
                                       "arguments": AdminArguments.summary(arguments)],
                            // Reads may be summarized; each change is written with its arguments (§4.15).
                            aggregated: operation.requiredAccess != .write)
        // A BYE read after this waits for its answer (§4.14), and so does a shutdown but for a backup.
        machine.adminStarted(requestID: request.requestID, backup: operation == .backup)
        let service = AdminService(broker: broker, caller: caller, replies: proxy)
        let requestID = request.requestID
        let running = broker.adminOperations
        running.started()
        Task.detached {
            await service.run(operation, arguments: arguments, requestID: requestID)
            running.ended()
        }
    }

    /// The listings' view of this session; nil before HELLO.
    func adminSnapshot() -> SessionSnapshot? {
        // A closed session keeps its subscriptions until tear-down: still shown.
        guard let session = machine.session ?? machine.establishedSession, let opened else { return nil }
        let remote = io.context?.channel.remoteAddress.map(PeerAddress.describe) ?? "unknown"
        let since = Date(timeIntervalSinceNow: -Double((NIODeadline.now() - opened.since).nanoseconds) / 1e9)
        var subscriptions: [AdminSubscription] = []
        var queued = io.outbound.readableBytes
        for id in session.subscriptions.ids.sorted() {
            guard let entry = session.subscriptions[id] else { continue }
            let delivery = entry.delivery
            queued += delivery.bufferedBytes
            subscriptions.append(AdminSubscription(
                connectionId: io.connectionID, principal: session.principal, subscriptionId: id,
                filter: delivery.filter.value, durable: entry.durableName, ackMode: "\(entry.ackMode)",
                nextSequence: delivery.nextSequence, credit: delivery.credit, bufferedMessages: delivery.bufferedCount))
        }
        let durables = attachedDurables(session)
        let connection = AdminConnection(
            id: io.connectionID, principal: session.principal, fingerprint: session.identity.fingerprintSHA256.hex,
            subject: session.identity.subject.rfc4514, remoteAddress: remote, connectedSince: AdminJSON.timestamp(since),
            messagesIn: io.messagesIn, messagesOut: io.messagesOut, subscriptions: subscriptions.count, bytesQueued: queued)
        return SessionSnapshot(connection: connection, subscriptions: subscriptions, durables: durables)
    }

    /// At tear-down: hands the message totals to the broker's and remembers
    /// the durables' filters, so `durables` can still show them once detached.
    /// Only durables with a cursor: `durables` lists stored cursors, and a
    /// durable never acknowledged (nor sent a MSG, with `ack_mode` none) has
    /// none. Remembering those too kept every name and filter a client
    /// attached and dropped, for ever (+47 MiB for 60 connections of 1,000
    /// fresh names, `DurableActivityBoundTests`).
    /// Only the durables are read here, not a whole ``adminSnapshot()``: its
    /// RFC 3339 timestamp (a new ISO8601DateFormatter each time) and address
    /// text were 15 % of relayd's CPU per connection in `relayctl bench
    /// connect`, for values tear-down throws away.
    func retireForAdmin() {
        // The same sessions as adminSnapshot(): none before HELLO.
        if let session = machine.session ?? machine.establishedSession, opened != nil {
            for durable in attachedDurables(session, withCursorOnly: true) {
                broker.admin.durableSeen(owner: durable.owner, name: durable.name,
                                         principal: session.principal, filter: durable.filter)
            }
        }
        broker.admin.sessionClosed(messagesIn: io.messagesIn, messagesOut: io.messagesOut)
        io.messagesIn = 0
        io.messagesOut = 0
    }

    /// The durables `session` has attached, by subscription id; with
    /// `withCursorOnly`, those with a cursor (resumed, or moved since).
    private func attachedDurables(_ session: ActiveSession, withCursorOnly: Bool = false)
        -> [(owner: DurableOwner, name: String, filter: String)] {
        let named = session.subscriptions.ids.sorted().compactMap { id -> (name: String, filter: String)? in
            guard let entry = session.subscriptions[id], let name = entry.durableName,
                  !withCursorOnly || entry.highestAck != nil else { return nil }
            return (name, entry.delivery.filter.value)
        }
        // The owner only when there is a durable (it is worked out on first use).
        guard !named.isEmpty, let owner = session.durableOwner else { return [] }
        return named.map { (owner, $0.name, $0.filter) }
    }

    /// Writes one ADMINREPLY now; the future completes when the channel took
    /// it (the back-pressure of a backup's stream of chunks), and fails when
    /// the reply could not be encoded within the client's frame limit (a
    /// backup chunk must then not be counted as sent). After the last reply
    /// of a request, a BYE waiting for it is sent.
    func writeAdminReply(_ reply: AdminReply) -> EventLoopFuture<Void>? {
        guard let context = io.context, !machine.isClosed,
              // A backup a shutdown ended already got its last reply: its stream stops here.
              machine.adminMayReply(requestID: reply.requestID, last: !reply.more) else { return nil }
        let encoded = io.write(.adminReply(reply))
        let buffer = io.outbound
        io.outbound = context.channel.allocator.buffer(capacity: 0)
        let written = context.writeAndFlush(NIOAny(buffer))
        if !reply.more {
            machine.adminAnswered(requestID: reply.requestID, io)
            settle()
        }
        guard encoded else {
            return context.eventLoop.makeFailedFuture(AdminServiceError.unsendable)
        }
        return written
    }
}

extension SessionProxy {
    func adminSnapshot() -> EventLoopFuture<SessionSnapshot?> {
        let promise = eventLoop.makePromise(of: SessionSnapshot?.self)
        onLoop { handler in promise.succeed(handler.adminSnapshot()) }
        return promise.futureResult
    }

    /// Sends `reply` on the session's loop; fails when the session is gone.
    func adminReply(_ reply: AdminReply) -> EventLoopFuture<Void> {
        let promise = eventLoop.makePromise(of: Void.self)
        onLoop { handler in
            guard let written = handler.writeAdminReply(reply) else {
                return promise.fail(AdminServiceError.callerGone)
            }
            written.cascade(to: promise)
        }
        return promise.futureResult
    }
}
