import Foundation
import NIOCore
import RelayCore
import RelayStore
import RelayWire

enum AdminServiceError: Error {
    /// The calling session closed before its answer was sent.
    case callerGone
    /// A reply did not fit the caller's frame limit and was not sent.
    case unsendable
}

/// A refusal an operation ends with: its code and what to do.
struct AdminRefusal: Error {
    var code: RelayErrorCode
    var message: String
}

/// Runs one authorized admin operation off the event loops and sends its
/// ADMINREPLY (or, for a backup, a stream of them) to the caller.
struct AdminService: Sendable {
    let broker: BrokerContext
    let caller: AdminCaller
    let replies: SessionProxy

    /// How many messages a durable's lag count reads at most (it reads the
    /// log: a bounded cost per listing); beyond it `lag_capped` is true.
    static let lagScanLimit: UInt64 = 1_000_000

    func run(_ operation: AdminOperation, arguments: [String: any Sendable], requestID: UInt32) async {
        let reply: AdminReply
        do {
            if operation == .backup { return try await backup(requestID: requestID) }
            if operation == .disconnect { return try await disconnect(arguments, requestID: requestID) }
            let body = try await perform(operation, arguments)
            var buffer = ByteBuffer()
            buffer.writeBytes(body)
            reply = AdminReply(requestID: requestID, body: buffer)
        } catch let refusal as AdminRefusal {
            reply = AdminReply(requestID: requestID, refusal: refusal.code, message: refusal.message)
        } catch let error as StoreError {
            reply = AdminReply(requestID: requestID, refusal: error.relayErrorCode, message: "the store failed: \(error)")
        } catch {
            reply = AdminReply(requestID: requestID, refusal: .internalError, message: "\(operation.rawValue) failed: \(error)")
        }
        if case .some(let code) = reply.errorCode {
            broker.logger.warning("admin operation refused", metadata: [
                "operation": "\(operation.rawValue)", "principal": "\(caller.principal)", "code": "\(code.name)",
                "reason": "\(reply.message)"])
        }
        _ = try? await replies.adminReply(reply).get()
    }

    private func perform(_ operation: AdminOperation, _ arguments: [String: any Sendable]) async throws -> Data {
        let encoder = AdminJSON.encoder()
        switch operation {
        case .status: return try encoder.encode(try await status())
        case .connections: return try encoder.encode(AdminList(items: try await snapshots().map(\.connection)))
        case .subscriptions: return try encoder.encode(AdminList(items: try await snapshots().flatMap(\.subscriptions)))
        case .durables: return try encoder.encode(AdminList(items: try await durables()))
        case .topics: return try encoder.encode(AdminList(items: try capability((any TopicAdministration).self, for: .topics)
                .topicStatistics().map(Self.topic)))
        case .purge: return try encoder.encode(try purge(arguments))
        case .durableDelete: return try encoder.encode(try await deleteDurable(arguments))
        case .disconnect:
            throw AdminRefusal(code: .internalError, message: "disconnect answers before it closes, not in perform")
        case .reload:
            guard let outcome = broker.admin.reload() else {
                throw AdminRefusal(code: .adminNotSupported, message: "this broker has no reload entry point (an embedded broker)")
            }
            switch outcome {
            case .applied: return try encoder.encode(AdminOutcome(operation: "reload", result: "applied"))
            // The reason the log and audit trail get: an operator reloading a remote broker sees only this reply.
            case .refused(let reason): return try encoder.encode(AdminOutcome(operation: "reload", result: "refused", reason: reason))
            }
        case .backup:
            throw AdminRefusal(code: .internalError, message: "backup is streamed, not answered in one reply")
        }
    }

    /// The store's admin capability `operation` needs (`any
    /// DurableCursorAdministration`, ...), or the typed refusal for a backend
    /// without it, with what the backend says to use instead.
    private func capability<Capability>(_ type: Capability.Type, for operation: AdminOperation) throws -> Capability {
        if let capability = broker.store as? Capability { return capability }
        let instead = (broker.store as? any AdministrationAlternatives)?.alternative(to: operation.rawValue)
        throw AdminRefusal(code: .adminNotSupported,
                           message: "\(operation.rawValue) is not supported by this storage backend (\(Swift.type(of: broker.store)))"
                               + (instead.map { ": \($0)" } ?? ""))
    }

    private func snapshots() async throws -> [SessionSnapshot] {
        // Every session's loop is asked at once; the answers are awaited together.
        let pending = broker.liveSessions().compactMap { ($0 as? SessionProxy)?.adminSnapshot() }
        var out: [SessionSnapshot] = []
        for future in pending {
            if let snapshot = try await future.get() { out.append(snapshot) }
        }
        return out.sorted { $0.connection.id < $1.connection.id }
    }

    // MARK: Listings

    private func status() async throws -> AdminStatus {
        let sessions = try await snapshots()
        let liveIn = sessions.reduce(UInt64(0)) { $0 &+ $1.connection.messagesIn }
        let liveOut = sessions.reduce(UInt64(0)) { $0 &+ $1.connection.messagesOut }
        let rates = broker.admin.rates(liveIn: liveIn, liveOut: liveOut)
        let usage = try? broker.store.usage()
        let configuration = broker.configuration
        let loaded = broker.admin.configuration
        let validity = broker.tls.current.validity
        return AdminStatus(
            version: RelayVersion.current, startedAt: AdminJSON.timestamp(broker.admin.startedAt),
            uptimeSeconds: Date().timeIntervalSince(broker.admin.startedAt), configPath: configuration.sourceFile,
            configDigest: loaded.digest, configLoadedAt: AdminJSON.timestamp(loaded.loadedAt),
            dataDirectory: configuration.storage.path, storeUsedBytes: usage?.usedBytes, storeLimitBytes: usage?.maxBytes,
            storeMessages: usage?.messages, connections: sessions.count, messagesInTotal: rates.totalIn,
            messagesOutTotal: rates.totalOut, messagesInPerSecond: rates.inPerSecond, messagesOutPerSecond: rates.outPerSecond,
            tlsCertificateNotAfter: validity.certificateNotAfter.map { AdminJSON.timestamp($0) },
            crlNextUpdate: validity.earliestCRL.map { AdminJSON.timestamp($0.nextUpdate) }, crlIssuer: validity.earliestCRL?.issuer)
    }

    private func durables() async throws -> [AdminDurable] {
        let administration = try capability((any DurableCursorAdministration).self, for: .durables)
        let cursors = try administration.durableCursors()
        var live: [AdminState.DurableKey: (principal: String, filter: String)] = [:]
        for snapshot in try await snapshots() {
            for durable in snapshot.durables {
                live[AdminState.DurableKey(owner: durable.owner, name: durable.name)] = (snapshot.connection.principal, durable.filter)
            }
        }
        let now = UInt64(Date().timeIntervalSince1970 * 1e9)
        return try cursors.map { record in
            let attached = live[AdminState.DurableKey(owner: record.owner, name: record.name)]
            let seen = broker.admin.durableActivity(owner: record.owner, name: record.name)
            let filterText = attached?.filter ?? record.filter ?? seen?.filter
            // Unknown filter (stored before filters were, not attached since):
            // every stored message after the cursor.
            let filter = filterText.flatMap { try? TopicFilter($0) } ?? (try? TopicFilter(">"))
            let lag = try filter.map { try administration.backlog(after: record.cursor, filter: $0, limit: Self.lagScanLimit) }
                ?? DurableBacklog(messages: 0, capped: false, oldestTimestamp: nil)
            return AdminDurable(
                name: record.name, owner: Hex.encode(record.owner.digest), principal: attached?.principal ?? seen?.principal,
                filter: filterText, attached: attached != nil, cursor: record.cursor, lagMessages: lag.messages,
                lagCapped: lag.capped, lagSeconds: lag.oldestTimestamp.map { Double(now &- min(now, $0)) / 1e9 } ?? 0,
                lastAck: seen?.lastAck.map(AdminJSON.timestamp))
        }
    }

    static func topic(_ stats: TopicStatistics) -> AdminTopic {
        AdminTopic(topic: stats.topic, messages: stats.messages, bytes: stats.bytes, firstSequence: stats.firstSequence,
                   lastSequence: stats.lastSequence, firstTime: stats.firstTimestamp.map { AdminJSON.timestamp(nanoseconds: $0) },
                   lastTime: stats.lastTimestamp.map { AdminJSON.timestamp(nanoseconds: $0) })
    }

    // MARK: Changes

    private func purge(_ arguments: [String: any Sendable]) throws -> AdminOutcome {
        guard let text = AdminArguments.string(arguments, "filter") else {
            throw AdminRefusal(code: .invalidAdminRequest, message: "purge needs a 'filter' argument (a topic or filter)")
        }
        guard AdminArguments.flag(arguments, "confirm") else {
            throw AdminRefusal(code: .invalidAdminRequest, message: "purge deletes messages for good: it needs \"confirm\": true (relayctl purge --yes)")
        }
        let filter: TopicFilter
        do { filter = try TopicFilter(text) } catch {
            throw AdminRefusal(code: .invalidFilter, message: "'\(text)' is not a topic or filter: \(error)")
        }
        let operations = broker.adminOperations
        let result = try capability((any TopicAdministration).self, for: .purge)
            .purge(filter, stoppingWhen: { operations.stopRequested })
        guard !result.stopped else {
            let deleted = result.messages == 0 ? "deleted nothing"
                : "had deleted \(result.messages) of its oldest messages (in batches, each committed)"
            broker.logger.warning("purge stopped by the shutdown",
                                  metadata: ["filter": "\(text)", "messages": "\(result.messages)",
                                             "principal": "\(caller.principal)"])
            throw AdminRefusal(code: .serverShuttingDown, message: "the broker is shutting down: the purge of '\(text)' "
                + "was stopped and \(deleted); run it again after the restart to delete the rest")
        }
        broker.logger.notice("messages purged", metadata: ["filter": "\(text)", "messages": "\(result.messages)",
                                                          "principal": "\(caller.principal)"])
        return AdminOutcome(operation: "purge", result: "purged", messages: result.messages, bytes: result.bytes,
                            topics: result.topics)
    }

    private func deleteDurable(_ arguments: [String: any Sendable]) async throws -> AdminOutcome {
        guard let name = AdminArguments.string(arguments, "name"), let ownerText = AdminArguments.string(arguments, "owner") else {
            throw AdminRefusal(code: .invalidAdminRequest, message: "durable_delete needs 'name' and 'owner' (the owner digest relayctl durables shows)")
        }
        guard let digest = Hex.decode(ownerText), let owner = DurableOwner(digest: digest) else {
            throw AdminRefusal(code: .invalidAdminRequest, message: "owner '\(ownerText)' is not a 64-digit hex owner digest")
        }
        let administration = try capability((any DurableCursorAdministration).self, for: .durableDelete)
        // Claimed for the deletion, so no session attaches it meanwhile.
        guard broker.claimDurable(owner: owner, name: name) == .claimed else {
            throw AdminRefusal(code: .durableInUse, message: "durable '\(name)' is attached to a session; disconnect it first")
        }
        defer { broker.releaseDurable(owner: owner, name: name) }
        guard try await administration.deleteDurableCursor(owner: owner, name: name) else {
            throw AdminRefusal(code: .adminTargetNotFound, message: "no durable '\(name)' of owner \(ownerText)")
        }
        broker.admin.durableForgotten(owner: owner, name: name)
        return AdminOutcome(operation: "durable_delete", result: "deleted")
    }

    /// Ends the named session with ERR `disconnected_by_operator` and
    /// answers. The caller's own session is answered first: the reply
    /// written after its ERR found it closed, and §4.15 answers every ADMIN.
    private func disconnect(_ arguments: [String: any Sendable], requestID: UInt32) async throws {
        guard let id = AdminArguments.integer(arguments, "id") else {
            throw AdminRefusal(code: .invalidAdminRequest, message: "disconnect needs 'id', a connection id from relayctl connections")
        }
        for session in broker.liveSessions() {
            guard let proxy = session as? SessionProxy, let snapshot = try await proxy.adminSnapshot().get(),
                  snapshot.connection.id == UInt64(clamping: id) else { continue }
            var body = ByteBuffer()
            body.writeBytes(try AdminJSON.encoder().encode(AdminOutcome(operation: "disconnect", result: "disconnected")))
            let answer = AdminReply(requestID: requestID, body: body)
            let own = snapshot.connection.id == caller.connectionID
            if own { _ = try? await replies.adminReply(answer).get() }
            proxy.terminate(code: .disconnectedByOperator, message: "disconnected by an operator (\(caller.principal))")
            if !own { _ = try? await replies.adminReply(answer).get() }
            return
        }
        throw AdminRefusal(code: .adminTargetNotFound, message: "no connection with id \(id)")
    }

    // MARK: Backup

    /// Streams a compacted copy: ADMINREPLY frames with `more` set carry the
    /// bytes, each sent once the previous one was taken by the channel; the
    /// last reply (more clear) carries the outcome with the byte count.
    private func backup(requestID: UInt32) async throws {
        let administration: any StoreBackup
        do { administration = try capability((any StoreBackup).self, for: .backup) } catch let refusal as AdminRefusal {
            _ = try? await replies.adminReply(AdminReply(requestID: requestID, refusal: refusal.code, message: refusal.message)).get()
            return
        }
        // Room for the frame's own fields within the caller's limit.
        let chunk = max(512, min(256 << 10, caller.frameLimit - 64))
        let replies = self.replies
        let operations = broker.adminOperations
        let result: Result<Int, any Error> = await withCheckedContinuation { continuation in
            // A thread of its own: the copy and the waits block.
            Thread.detachNewThread {
                continuation.resume(returning: Result {
                    try administration.backup(chunkSize: chunk) { bytes in
                        // The session ended the stream at SIGTERM already; this ends the copy.
                        if operations.stopRequested { throw AdminServiceError.callerGone }
                        var buffer = ByteBuffer()
                        buffer.writeBytes(bytes)
                        try replies.adminReply(AdminReply(requestID: requestID, body: buffer, more: true)).wait()
                    }
                })
            }
        }
        let reply: AdminReply
        switch result {
        case .success(let bytes):
            broker.logger.notice("backup streamed", metadata: ["bytes": "\(bytes)", "principal": "\(caller.principal)"])
            var body = ByteBuffer()
            body.writeBytes(try AdminJSON.encoder().encode(AdminOutcome(operation: "backup", result: "complete",
                                                                        bytes: UInt64(bytes))))
            reply = AdminReply(requestID: requestID, body: body)
        case .failure(AdminServiceError.callerGone):
            return
        case .failure(AdminServiceError.unsendable):
            reply = AdminReply(requestID: requestID, refusal: .payloadTooLarge, message:
                "a backup chunk did not fit this connection's max_frame_size of \(caller.frameLimit) bytes; the copy is incomplete, "
                    + "announce a larger max_frame_size in HELLO (relayctl announces \(FrameLayout.maximumMaxFrameSize))")
        case .failure(let error):
            reply = AdminReply(requestID: requestID, refusal: .storageFailure, message: "backup failed: \(error)")
        }
        _ = try? await replies.adminReply(reply).get()
    }
}
