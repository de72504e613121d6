import NIOCore
import RelayCore
import RelayStore
import RelayTLS
import RelayWire

/// The Relay v1 layer: frames to the machine's protocol-neutral events.
/// The operation checks that belong to the wire format (topic and filter
/// grammar, payload and header limits: ``OperationValidation``) run here;
/// what they pass on is a ``PublishRequest`` or ``SubscribeRequest``.
extension SessionHandler {
    func handle(_ frame: Frame) {
        switch frame {
        case .hello(let hello): handleHello(hello)
        case .publish(let publish): machine.publish(publish.publishID, checked(publish), io)
        case .subscribe(let subscribe): machine.subscribe(subscribe.subscriptionID, Self.checked(subscribe), io)
        case .unsubscribe(let id): machine.unsubscribe(id, io)
        case .credit(let credit): machine.grantCredit(credit.subscriptionID, credit.credit, io)
        case .ack(let ack): machine.acknowledge(ack.subscriptionID, through: ack.sequence, io)
        case .ping(let token):
            if case .active = machine.state { io.write(.pong(token: token)) } else { machine.requestBeforeOpening("PING", io) }
        case .pong:
            if case .active = machine.state {} else { machine.requestBeforeOpening("PONG", io) }
        case .bye:
            if case .active = machine.state { machine.goodbye(io) } else { machine.requestBeforeOpening("BYE", io) }
        case .admin(let request):
            if case .active = machine.state { handleAdmin(request) } else { machine.requestBeforeOpening("ADMIN", io) }
        case .welcome, .publishAck, .publishError, .subscribeAck, .message, .error, .adminReply:
            // The decoder refuses broker-only frames; kept exhaustive for safety.
            if case .active = machine.state {
                machine.terminate(.protocolViolation, "\(frame.type) is sent by the broker, not by clients", io)
            } else {
                machine.requestBeforeOpening("\(frame.type)", io)
            }
        }
    }

    /// Version negotiation (Relay v1), then the machine opens the session.
    func handleHello(_ hello: Hello) {
        guard case .awaitingHello = machine.state else {
            // Not awaiting one: the machine refuses it (a second HELLO).
            return machine.open(SessionOpening(version: 0, peerFrameLimit: 0, producerSession: .none), io)
        }
        helloTimer?.cancel()
        helloTimer = nil
        let supported = ProtocolVersion.supported
        let version = min(hello.maxVersion, supported.upperBound)
        guard hello.minVersion <= hello.maxVersion, version >= hello.minVersion, version >= supported.lowerBound else {
            return machine.terminate(.unsupportedVersion, "client speaks \(hello.minVersion)…\(hello.maxVersion); "
                + "this broker speaks \(supported.lowerBound)…\(supported.upperBound)", io)
        }
        machine.open(SessionOpening(version: version, peerFrameLimit: Int(hello.maxFrameSize), producerSession: hello.sessionID), io)
        guard case .active(let session) = machine.state else { return }
        if let size = io.unsendableWelcome {
            // The identity (a long certificate subject) does not fit the
            // client's limit: refuse rather than leave it waiting (§4.2).
            return machine.terminate(.frameTooLarge, "WELCOME is \(size) bytes, above the max_frame_size of \(hello.maxFrameSize) "
                + "this client announced; announce a larger one in HELLO", io)
        }
        opened = (since: NIODeadline.now(), principal: session.principal, serial: session.identity.serialNumber)
        logAccepted(principal: session.principal, serial: session.identity.serialNumber)
        // The first certificate of the verified chain to expire ends the session (a CA may expire before its leaf).
        let leaf = ChainExpiry(notAfter: session.identity.notAfter, depth: 0, subject: session.identity.subject.rfc4514)
        scheduleExpiry(session.peerChain.earliestExpiry ?? leaf)
    }

    /// The wire-level checks of a PUB (§4.3 steps 1-4), as the core's request.
    /// The grammar runs once per distinct topic in a row (``lastTopic``).
    func checked(_ publish: Publish) -> Result<PublishRequest, OperationError> {
        do {
            let topic = try OperationValidation.validate(publish, limits: publishLimits, previous: &lastTopic)
            return .success(PublishRequest(publishID: publish.publishID, topic: topic, headers: HeaderBlock(publish.headers),
                                           payload: publish.payload))
        } catch {
            return .failure(error)
        }
    }

    /// The wire-level checks of a SUB (filter, start values, durable name), as the core's request.
    static func checked(_ subscribe: Subscribe) -> Result<SubscribeRequest, OperationError> {
        do {
            let filter = try OperationValidation.validate(subscribe)
            return .success(SubscribeRequest(filter: filter, start: subscribe.start, durableName: subscribe.durableName,
                                             initialCredit: subscribe.initialCredit, ackMode: subscribe.ackMode))
        } catch {
            return .failure(error)
        }
    }
}
