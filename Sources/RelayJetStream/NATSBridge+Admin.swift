import CNATS
import Foundation
import NIOCore

/// JetStream API requests that nats.c 3.4.1 does not wrap with the answer
/// Relay needs (split from NATSBridge.swift, whose lifetime rules hold here
/// too): a purge that reports how many messages went, and a message get
/// through the stream leader by "next on a subject from a sequence" or
/// "last on a subject". Both are plain requests to `$JS.API.…` with a JSON
/// body, answered by the stream's leader.
extension NATSConnection {
    /// Purges every message of `stream` whose subject matches `filter` (NATS
    /// wildcards allowed) in one request; returns how many went (the
    /// server's `purged`).
    func purgeCounting(stream: String, filter: String, waitMs: Int64) throws(NATSError) -> UInt64 {
        let answer = try apiRequest("$JS.API.STREAM.PURGE.\(stream)", ["filter": filter], operation: "purge \(filter)",
                                    waitMs: waitMs)
        guard answer["success"] as? Bool == true else {
            throw NATSError("purge \(filter)", NATS_PROTOCOL_ERROR, jsCode: jsErrCode(0), text: "no success in \(answer)")
        }
        return (answer["purged"] as? NSNumber)?.uint64Value ?? 0
    }

    /// The stored message of `stream` that the leader finds for `request`:
    /// `["seq": S, "next_by_subj": subject]` (the first at or after S on
    /// subject) or `["last_by_subj": subject]`; nil when there is none.
    func leaderMessage(stream: String, request: [String: Any], waitMs: Int64) throws(NATSError) -> NATSStoredMessage? {
        let operation = "get \(request) of \(stream)"
        let answer: [String: Any]
        do throws(NATSError) {
            answer = try apiRequest("$JS.API.STREAM.MSG.GET.\(stream)", request, operation: operation, waitMs: waitMs)
        } catch where error.jsCode == Int32(JSNoMessageFoundErr.rawValue) {
            return nil
        }
        guard let message = answer["message"] as? [String: Any], let sequence = (message["seq"] as? NSNumber)?.uint64Value else {
            throw NATSError(operation, NATS_PROTOCOL_ERROR, jsCode: jsErrCode(0), text: "no message in \(answer)")
        }
        let data = (message["data"] as? String).flatMap { Data(base64Encoded: $0) } ?? Data()
        return NATSStoredMessage(sequence: sequence, subject: message["subject"] as? String, data: ByteBuffer(bytes: data))
    }

    /// One JetStream API request with a JSON body; its JSON answer, or the
    /// API error it carries as a ``NATSError`` with the JetStream code.
    private func apiRequest(_ subject: String, _ body: [String: Any], operation: String,
                            waitMs: Int64) throws(NATSError) -> [String: Any] {
        let json: String
        do { json = String(decoding: try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self) } catch {
            throw NATSError(operation, NATS_INVALID_ARG, jsCode: jsErrCode(0), text: "\(error)")
        }
        var reply: OpaquePointer?
        let status = natsConnection_RequestString(&reply, connection, subject, json, waitMs)
        guard status == NATS_OK, let reply else { throw NATSError(operation, status) }
        // The reply is ours until natsMsg_Destroy; its data is copied first.
        let data = Self.copyData(reply)
        natsMsg_Destroy(reply)
        let parsed = (try? JSONSerialization.jsonObject(with: Data(data.readableBytesView))) as? [String: Any]
        guard let answer = parsed else {
            throw NATSError(operation, NATS_PROTOCOL_ERROR, jsCode: jsErrCode(0),
                            text: "an answer that is not a JSON object: \(String(decoding: data.readableBytesView, as: UTF8.self))")
        }
        if let error = answer["error"] as? [String: Any] {
            let code = (error["err_code"] as? NSNumber)?.uint32Value ?? 0
            throw NATSError(operation, NATS_ERR, jsCode: jsErrCode(rawValue: code),
                            text: error["description"] as? String ?? "\(error)")
        }
        return answer
    }
}
