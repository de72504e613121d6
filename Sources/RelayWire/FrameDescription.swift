import RelayCore

/// One-line summaries for logs and debugging tools. Payloads and header
/// values are never printed (they are application data and may be large or
/// sensitive); their sizes are.
extension Frame: CustomStringConvertible {
    public var description: String {
        switch self {
        case .hello(let f):
            return "HELLO versions=\(f.minVersion)...\(f.maxVersion) max_frame=\(f.maxFrameSize) "
                + "session=\(f.sessionID) name=\(f.clientName.debugDescription) extensions=\(f.extensions.count)"
        case .welcome(let f):
            return "WELCOME version=\(f.version) principal=\(f.principal.debugDescription) max_frame=\(f.maxFrameSize) "
                + "max_payload=\(f.maxPayload) max_in_flight=\(f.maxInFlight)"
        case .publish(let f):
            return "PUB id=\(f.publishID) topic=\(f.topic.debugDescription) headers=\(f.headers.count) "
                + "payload=\(f.payload.readableBytes)B"
        case .publishAck(let f):
            return "PUBACK id=\(f.publishID) seq=\(f.sequence)" + (f.duplicate ? " duplicate" : "")
        case .publishError(let f):
            return "PUBERR id=\(f.publishID) code=\(codeName(f.code)) \(f.message.debugDescription)"
        case .subscribe(let f):
            return "SUB sid=\(f.subscriptionID) filter=\(f.filter.debugDescription) start=\(f.start) "
                + "credit=\(f.initialCredit) ack=\(f.ackMode)" + (f.isDurable ? " durable=\(f.durableName.debugDescription)" : "")
        case .subscribeAck(let f):
            return "SUBACK sid=\(f.subscriptionID) code=\(codeName(f.code)) first=\(f.firstSequence)"
                + (f.message.isEmpty ? "" : " \(f.message.debugDescription)")
        case .unsubscribe(let id):
            return "UNSUB sid=\(id)"
        case .credit(let f):
            return "CREDIT sid=\(f.subscriptionID) +\(f.credit)"
        case .ack(let f):
            return "ACK sid=\(f.subscriptionID) seq=\(f.sequence)"
        case .message(let f):
            return "MSG sid=\(f.subscriptionID) seq=\(f.sequence) topic=\(f.topic.debugDescription) "
                + "from=\(f.publisherPrincipal.debugDescription) headers=\(f.headers.count) "
                + "payload=\(f.payload.readableBytes)B" + (f.replayed ? " replayed" : "")
        case .ping(let token):
            return "PING \(token)"
        case .pong(let token):
            return "PONG \(token)"
        case .error(let f):
            return "ERR code=\(codeName(f.code)) sid=\(f.subscriptionID) \(f.message.debugDescription)"
        case .bye(let f):
            return "BYE code=\(codeName(f.code))" + (f.message.isEmpty ? "" : " \(f.message.debugDescription)")
        case .admin(let f):
            return "ADMIN id=\(f.requestID) op=\(f.operation.debugDescription) body=\(f.body.readableBytes)B"
        case .adminReply(let f):
            return "ADMINREPLY id=\(f.requestID) code=\(codeName(f.code)) body=\(f.body.readableBytes)B"
                + (f.more ? " more" : "") + (f.message.isEmpty ? "" : " \(f.message.debugDescription)")
        }
    }
}

private func codeName(_ code: UInt16) -> String {
    if code == 0 { return "ok" }
    return RelayErrorCode(rawValue: code)?.name ?? "0x\(String(code, radix: 16))"
}
