import CNATS
import Foundation
import NIOCore

/// Where relayd reaches NATS and the files it proves itself with.
public struct NATSEndpoint: Sendable, Equatable {
    public var servers: [String]
    public var caFile: String
    public var certificateFile: String
    public var privateKeyFile: String
    public var name: String

    public init(servers: [String], caFile: String, certificateFile: String, privateKeyFile: String, name: String = "relayd") {
        (self.servers, self.caFile, self.certificateFile, self.privateKeyFile, self.name) =
            (servers, caFile, certificateFile, privateKeyFile, name)
    }
}

/// What the publish path has done since the log opened: for tests and
/// diagnostics (how well appends are pipelined).
public struct JetStreamPublishStatistics: Sendable, Equatable {
    /// Publishes sent, retries included.
    public var publishes: UInt64 = 0
    /// Times the writer blocked for acknowledgements (one round trip each).
    public var ackWaits: UInt64 = 0
    /// The most publishes awaiting their ack at one time.
    public var peakInFlight: Int = 0
}

/// One message read back: its stream sequence, its subject (when the
/// server said it) and a copy of its data.
struct NATSStoredMessage {
    var sequence: UInt64
    var subject: String? = nil
    var data: ByteBuffer
}

/// The nats.c objects relayd holds: one connection, its JetStream context and
/// the cursor bucket. Every unsafe pointer of the JetStream backend lives in
/// this file, NATSBridge+Keys.swift (the cursor bucket), NATSBridge+Tail.swift
/// (the live tail's ordered consumer) and NATSBridge+Reads.swift (a replay's
/// runs of direct gets).
///
/// Lifetimes: `connection`, `js` and `kv` are created in ``connect(_:)`` and
/// destroyed only in `deinit`. Every method runs while the caller holds a
/// strong reference to `self`, so no call can run on a destroyed object;
/// ``close()`` only closes the connection (later calls fail with
/// NATS_CONNECTION_CLOSED, the objects stay valid). nats.c's connection, JS
/// context and KV store are thread-safe, so methods may run on any thread.
final class NATSConnection: @unchecked Sendable {
    // @unchecked: the pointers are set once in init and freed in deinit; nats.c synchronises their use.
    let connection: OpaquePointer  // internal for NATSBridge+Admin.swift, under these lifetime rules
    /// Internal (not private) for NATSBridge+Tail.swift, which shares these lifetime rules.
    let js: OpaquePointer
    private var kv: OpaquePointer?
    /// The bucket ``openBucket(_:replicas:)`` opened; cursor reads go to its
    /// stream's leader, cursor puts are publishes to its subjects (NATSBridge+Keys.swift).
    private(set) var bucketName: String?
    /// The live tail's ordered consumer while it is open, guarded by `tailLock`.
    var subscription: OpaquePointer?
    /// Signalled once the open consumer's handler has returned for the last time (guarded by `tailLock`).
    var tailFinished: DispatchSemaphore?
    let tailLock = NSLock()
    /// The pipelined publisher (pipeline.h, relay_pipeline): its own reply
    /// subscription, created with the connection and destroyed in deinit before it.
    private let pipeline: UnsafeMutablePointer<relay_pipeline>

    private init(connection: OpaquePointer, js: OpaquePointer, pipeline: UnsafeMutablePointer<relay_pipeline>) {
        self.connection = connection
        self.js = js
        self.pipeline = pipeline
    }

    static func connect(_ endpoint: NATSEndpoint, timeoutMs: Int64) throws(NATSError) -> NATSConnection {
        // strdup'd copies: `servers` must stay valid for the whole call; freed
        // right after it (natsOptions_SetServers copies them).
        let servers = endpoint.servers.map { strdup($0) }
        defer { servers.forEach { free($0) } }
        var cServers = servers.map { UnsafePointer($0) }
        var nc: OpaquePointer?
        let status = cServers.withUnsafeMutableBufferPointer { buffer in
            relay_nats_connect(&nc, buffer.baseAddress, Int32(buffer.count), endpoint.caFile, endpoint.certificateFile,
                               endpoint.privateKeyFile, endpoint.name, timeoutMs, 250)
        }
        guard status == NATS_OK, let nc else { throw NATSError("connect to \(endpoint.servers.joined(separator: ","))", status) }
        var js: OpaquePointer?
        let jsStatus = natsConnection_JetStream(&js, nc, nil)
        guard jsStatus == NATS_OK, let js else {
            natsConnection_Destroy(nc)  // ours alone: nothing else saw it
            throw NATSError("JetStream context", jsStatus)
        }
        var pipeline: UnsafeMutablePointer<relay_pipeline>?
        let pipelineStatus = relay_pipeline_create(&pipeline, nc)
        guard pipelineStatus == NATS_OK, let pipeline else {
            jsCtx_Destroy(js)  // ours alone, as nc
            natsConnection_Destroy(nc)
            throw NATSError("subscribe to the publish acknowledgements", pipelineStatus)
        }
        return NATSConnection(connection: nc, js: js, pipeline: pipeline)
    }

    deinit {
        // Order: the subscription first (its completion callback frees its
        // handler's box), then the bucket and context, then the connection
        // that owns their I/O.
        if let subscription { natsSubscription_Destroy(subscription) }
        if let kv { kvStore_Destroy(kv) }
        // No round is in progress (a round runs inside publishPipelined,
        // which holds `self`); the pipeline is freed once its reply
        // subscription's handler can no longer run (pipeline.h).
        relay_pipeline_destroy(pipeline)
        jsCtx_Destroy(js)
        natsConnection_Destroy(connection)
    }

    /// Closes the connection; later calls fail. Objects are freed in deinit.
    func close() {
        tailLock.withLock { if let subscription { natsSubscription_Unsubscribe(subscription) } }
        natsConnection_Close(connection)
    }

    var isConnected: Bool { natsConnection_Status(connection) == NATS_CONN_STATUS_CONNECTED }

    // MARK: Stream

    func ensureStream(name: String, subject: String, replicas: Int, duplicatesNs: Int64, maxBytes: Int64,
                      waitMs: Int64) throws(NATSError) {
        var code = jsErrCode(0)
        let status = relay_js_ensure_stream(js, name, subject, Int64(replicas), duplicatesNs, maxBytes, waitMs, &code)
        guard status == NATS_OK else { throw NATSError("create stream \(name)", status, jsCode: code) }
    }

    /// One record of a pipelined round.
    struct PublishRecord {
        var subject: String
        var messageID: String?
        var data: ByteBuffer
    }

    enum PublishOutcome {
        case acked(sequence: UInt64, duplicate: Bool)
        case failed(NATSError)
    }

    /// Publishes `records` in order without waiting between them, at most
    /// `window` awaiting their ack, and returns each one's outcome once all
    /// are acked or failed, no ack came for `idleMs`, or `maxWaitMs` passed
    /// (those without an ack then fail with NATS_TIMEOUT; a retry must reuse
    /// the message id, as such a message may still be stored).
    func publishPipelined(_ records: [PublishRecord], window: Int, idleMs: Int64, maxWaitMs: Int64) -> [PublishOutcome] {
        let start = ContinuousClock.now
        let round = sendRound(records, window: window, idleMs: idleMs, maxWaitMs: maxWaitMs)
        let left = maxWaitMs - (ContinuousClock.now - start).wholeMilliseconds
        return awaitRound(round, idleMs: idleMs, maxWaitMs: max(1, left))
    }

    /// Publishes `records` in order as one round and returns once they are
    /// sent (waiting only while `window` publishes, over all rounds, await
    /// their ack), not once they are acked: ``awaitRound(_:idleMs:maxWaitMs:)``
    /// collects the outcomes, on another thread if need be, while the next
    /// round is sent. Sends from two threads are safe; each thread's records
    /// leave in its own order.
    func sendRound(_ records: [PublishRecord], window: Int, idleMs: Int64, maxWaitMs: Int64) -> PublishRound {
        let round = PublishRound(records: records)
        let number = relay_pipeline_next_round(pipeline)
        var messages: [OpaquePointer?] = []
        messages.reserveCapacity(records.count)
        for (index, record) in records.enumerated() {
            var msg: OpaquePointer?
            // The data pointer is valid inside withUnsafeReadableBytes;
            // natsMsg_Create copies it, natsMsgHeader_Set copies the id.
            // The message's index in the round is its place in `messages`.
            let status = record.data.withUnsafeReadableBytes { bytes in
                relay_pipeline_message(pipeline, number, Int32(messages.count), &msg, record.subject, record.messageID,
                                       bytes.baseAddress, Int32(bytes.count))
            }
            if status == NATS_OK, let msg {
                messages.append(msg)
                round.indices.append(index)
            } else {
                round.outcomes[index] = .failed(NATSError("publish to \(record.subject)", status))
            }
        }
        round.results = .allocate(capacity: max(1, messages.count))
        round.results.initialize(repeating: relay_pub_result())
        // `messages` is valid for the call; relay_pipeline_send destroys every
        // message once published (nats.c copies it) and NULLs the entries.
        // `round.results` stays allocated until awaitRound has unlinked the
        // round, after which no ack handler writes to it (pipeline.h).
        round.handle = messages.withUnsafeMutableBufferPointer { msgs in
            relay_pipeline_send(pipeline, number, msgs.baseAddress, Int32(msgs.count), Int32(max(1, window)), idleMs, maxWaitMs,
                                round.results.baseAddress)
        }
        round.connection = self
        return round
    }

    /// The outcome of every record of `round`, once each is acked or failed,
    /// no ack came for `idleMs`, or `maxWaitMs` passed (then NATS_TIMEOUT).
    /// Once per round, rounds in the order they were sent.
    func awaitRound(_ round: PublishRound, idleMs: Int64, maxWaitMs: Int64) -> [PublishOutcome] {
        round.finish(idleMs: idleMs, maxWaitMs: maxWaitMs)
        let records = round.records
        for (k, result) in round.results.prefix(round.indices.count).enumerated() {
            let index = round.indices[k]
            if result.status == NATS_OK {
                round.outcomes[index] = .acked(sequence: result.sequence, duplicate: result.duplicate)
            } else {
                // `text` is a NUL-terminated copy inside the result (snprintf).
                let text = withUnsafeBytes(of: result.text) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
                round.outcomes[index] = .failed(NATSError("publish to \(records[index].subject)", result.status,
                                                          jsCode: result.code, text: text))
            }
        }
        round.release()
        return round.outcomes.map { $0 ?? .failed(NATSError("publish", NATS_ERR)) }
    }

    /// The outcome relay_pub_ack_parse (pipeline.h) reads from one reply with
    /// `data` and, when given, a Status header (for the parser's tests).
    static func publishReplyOutcome(data: [UInt8], statusHeader: String?) -> PublishOutcome {
        // nats.c's library state (locks, per-thread errors) exists once a
        // connection was made; without one, nats_Open makes it (idempotent).
        let opened = nats_Open(-1)
        guard opened == NATS_OK else { return .failed(NATSError("open the nats library", opened)) }
        var msg: OpaquePointer?
        // natsMsg_Create copies the data; the message is ours until natsMsg_Destroy.
        let created = data.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { natsMsg_Create(&msg, "reply", nil, $0.baseAddress, Int32($0.count)) }
        }
        guard created == NATS_OK, let msg else { return .failed(NATSError("create a reply", created)) }
        defer { natsMsg_Destroy(msg) }
        if let statusHeader, natsMsgHeader_Set(msg, "Status", statusHeader) != NATS_OK {
            return .failed(NATSError("set the Status header", NATS_ERR))
        }
        var result = relay_pub_result()
        var code = jsErrCode(0)
        var text = [CChar](repeating: 0, count: 200)
        let status = relay_pub_ack_parse(msg, &result, &code, &text, text.count)
        guard status != NATS_OK else { return .acked(sequence: result.sequence, duplicate: result.duplicate) }
        let message = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return .failed(NATSError("publish", status, jsCode: code, text: message))
    }

    /// Waits for a round sent on this connection (`PublishRound.finish`).
    fileprivate func awaitHandle(_ handle: UnsafeMutablePointer<relay_round>?, idleMs: Int64, maxWaitMs: Int64) {
        relay_pipeline_await(pipeline, handle, idleMs, maxWaitMs)
    }

    var publishStatistics: JetStreamPublishStatistics {
        var statistics = JetStreamPublishStatistics()
        var peak: Int32 = 0
        relay_pipeline_statistics(pipeline, &statistics.publishes, &statistics.ackWaits, &peak)
        statistics.peakInFlight = Int(peak)
        return statistics
    }

    /// The message at `sequence`, or the first at or after it matching
    /// `nextBySubject`; nil when there is none.
    func directGet(stream: String, sequence: UInt64, nextBySubject: String?, waitMs: Int64) throws(NATSError) -> NATSStoredMessage? {
        var msg: OpaquePointer?
        let status = relay_js_direct_get(&msg, js, stream, sequence, nextBySubject, waitMs)
        if status == NATS_NOT_FOUND { return nil }
        guard status == NATS_OK, let msg else { throw NATSError("read message \(sequence) of \(stream)", status) }
        // The message is ours until natsMsg_Destroy; its data and header
        // strings are copied out before that.
        defer { natsMsg_Destroy(msg) }
        guard let seqText = relay_nats_header(msg, "Nats-Sequence"), let seq = UInt64(String(cString: seqText)) else {
            throw NATSError("read message \(sequence) of \(stream): no Nats-Sequence header", NATS_PROTOCOL_ERROR)
        }
        let subject = relay_nats_header(msg, "Nats-Subject").map { String(cString: $0) }
        return NATSStoredMessage(sequence: seq, subject: subject, data: Self.copyData(msg))
    }

    /// Copies a message's data; `msg` must be alive for the call.
    static func copyData(_ msg: OpaquePointer) -> ByteBuffer {
        let length = Int(natsMsg_GetDataLength(msg))
        guard length > 0, let data = natsMsg_GetData(msg) else { return ByteBuffer() }
        return ByteBuffer(bytes: UnsafeRawBufferPointer(start: data, count: length))
    }

    struct StreamState {
        var messages: UInt64, bytes: UInt64, firstSequence: UInt64, lastSequence: UInt64
        var subjects: [(subject: String, messages: UInt64)]
        /// Consumers on the stream (an edge's live tail is one while it runs).
        var consumers: Int64 = 0
    }

    func streamState(_ stream: String, subjectsFilter: String? = nil, waitMs: Int64) throws(NATSError) -> StreamState {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var code = jsErrCode(0)
        let status = relay_js_stream_info(&info, js, stream, subjectsFilter, waitMs, &code)
        guard status == NATS_OK, let info else { throw NATSError("stream info of \(stream)", status, jsCode: code) }
        // The info is ours until jsStreamInfo_Destroy; subject names are copied out first.
        defer { jsStreamInfo_Destroy(info) }
        let state = info.pointee.State
        var subjects: [(String, UInt64)] = []
        if let list = state.Subjects, let entries = list.pointee.List {
            for i in 0..<Int(list.pointee.Count) {
                let entry = entries[i]
                if let name = entry.Subject { subjects.append((String(cString: name), entry.Msgs)) }
            }
        }
        return StreamState(messages: state.Msgs, bytes: state.Bytes, firstSequence: state.FirstSeq,
                           lastSequence: state.LastSeq, subjects: subjects, consumers: state.Consumers)
    }

    /// How many messages matching `filter` the stream holds from `start` on.
    func count(stream: String, filter: String, from start: UInt64, waitMs: Int64) throws(NATSError) -> UInt64 {
        var count: UInt64 = 0
        let status = relay_js_count_from(&count, js, stream, filter, start, waitMs)
        guard status == NATS_OK else { throw NATSError("count \(filter) from \(start)", status) }
        return count
    }

    func purge(stream: String, subject: String, keep: UInt64, upTo: UInt64, waitMs: Int64) throws(NATSError) {
        var code = jsErrCode(0)
        let status = relay_js_purge(js, stream, subject, keep, upTo, waitMs, &code)
        guard status == NATS_OK else { throw NATSError("purge \(subject)", status, jsCode: code) }
    }

    // MARK: Cursor bucket

    /// Opens (or creates) the bucket the cursor methods use. Once, before them.
    func openBucket(_ bucket: String, replicas: Int) throws(NATSError) {
        var store: OpaquePointer?
        let status = relay_kv_open(&store, js, bucket, Int32(replicas))
        guard status == NATS_OK, let store else { throw NATSError("open key-value bucket \(bucket)", status) }
        kv = store
        bucketName = bucket
    }
}

/// A round of publishes ``NATSConnection/sendRound(_:window:idleMs:maxWaitMs:)``
/// sent and ``NATSConnection/awaitRound(_:idleMs:maxWaitMs:)`` collects.
/// Lifetimes: `results` is written by nats.c's ack handler until the round
/// is awaited (pipeline.h unlinks it then), so it is freed only after that: in
/// ``release()``, or in `deinit` after a last await (with no wait) if a
/// round was dropped unawaited. `connection` keeps the pipeline alive until then.
final class PublishRound: @unchecked Sendable {
    // @unchecked: used by one thread at a time (the sender, then the awaiter).
    let records: [NATSConnection.PublishRecord]
    fileprivate var outcomes: [NATSConnection.PublishOutcome?]
    /// indices[k]: the record of the k-th message handed to nats.c.
    fileprivate var indices: [Int] = []
    fileprivate var results = UnsafeMutableBufferPointer<relay_pub_result>(start: nil, count: 0)
    fileprivate var handle: UnsafeMutablePointer<relay_round>?
    fileprivate var connection: NATSConnection?
    private var awaited = false

    fileprivate init(records: [NATSConnection.PublishRecord]) {
        self.records = records
        outcomes = Array(repeating: nil, count: records.count)
        indices.reserveCapacity(records.count)
    }

    fileprivate func finish(idleMs: Int64, maxWaitMs: Int64) {
        guard !awaited else { return }
        awaited = true
        connection?.awaitHandle(handle, idleMs: idleMs, maxWaitMs: maxWaitMs)
        handle = nil
    }

    fileprivate func release() {
        results.deallocate()
        results = UnsafeMutableBufferPointer(start: nil, count: 0)
        connection = nil
    }

    deinit {
        finish(idleMs: 0, maxWaitMs: 0)
        if results.baseAddress != nil { results.deallocate() }
    }
}
