import Foundation
import NIOCore
import RelayCore
import RelayPolicy
import RelayStore
import RelayTLS
import RelayWire

extension SessionHandler {
    /// Version negotiation, policy evaluation, WELCOME.
    func handleHello(_ hello: Hello, handshake: TLSHandshakeCompleted) {
        helloTimer?.cancel()
        helloTimer = nil
        let supported = ProtocolVersion.supported
        let version = min(hello.maxVersion, supported.upperBound)
        guard hello.minVersion <= hello.maxVersion, version >= hello.minVersion, version >= supported.lowerBound else {
            terminate(.unsupportedVersion, "client speaks \(hello.minVersion)…\(hello.maxVersion); this broker speaks \(supported.lowerBound)…\(supported.upperBound)")
            return
        }
        let identity = handshake.peer
        // The handshake may have been verified against the CA/CRL set a reload
        // has since replaced (it raced the reload, which re-evaluates only
        // registered, active sessions): verify the chain again before admitting.
        if broker.generation != acceptedGeneration {
            do {
                try broker.tls.current.verify(handshake.peerChain)
            } catch {
                let failure = CertificateFailure(error)
                broker.audit?.record("connection_refused", [
                    "subject": identity.subject.rfc4514, "serial": identity.serialNumber,
                    "fingerprint": identity.fingerprintSHA256.hex, "cause": failure.code.name,
                    "reason": "certificate no longer verifies after a reload: \(error)"])
                terminate(failure.code, failure.message)
                return
            }
        }
        let permissions = broker.policy.permissions(for: identity)
        for drop in permissions.droppedTemplates {
            broker.audit?.record("template_dropped", ["subject": identity.subject.rfc4514, "serial": identity.serialNumber,
                                                      "detail": "\(drop)"])
        }
        if permissions.isRefused {
            // The client learns nothing about the configuration; the log and audit trail say why.
            logger.notice("identity refused", metadata: ["subject": "\(identity.subject.rfc4514)",
                                                         "serial": "\(identity.serialNumber)",
                                                         "reason": "\(permissions.refusal ?? "")"])
            broker.audit?.record("connection_refused", ["subject": identity.subject.rfc4514, "serial": identity.serialNumber,
                                                        "fingerprint": identity.fingerprintSHA256.hex,
                                                        "reason": permissions.refusal ?? "no rule grants anything"])
            terminate(.identityRefused, "this certificate is not granted any permission by the broker's policy")
            return
        }
        self.identity = identity
        self.peerChain = handshake.peerChain
        self.permissions = permissions
        self.publishCache = PublishCache(permissions: permissions)
        self.principal = permissions.principal
        self.publisher = PublisherStamp(principal: principal, fingerprint: identity.fingerprintSHA256)
        self.producerSession = hello.sessionID
        self.durableOwner = IdentityScope.durableOwner(identity)
        self.peerMaxFrameSize = Int(hello.maxFrameSize)
        state = .active
        broker.audit?.record("connection_accepted", ["principal": principal, "subject": identity.subject.rfc4514,
                                                     "serial": identity.serialNumber, "fingerprint": identity.fingerprintSHA256.hex,
                                                     "tls": handshake.protocolVersion])
        let limits = broker.limits
        write(.welcome(Welcome(version: version, maxFrameSize: UInt32(limits.maxFrameSize), maxPayload: UInt32(limits.maxPayload),
                               maxHeaders: UInt16(clamping: limits.maxHeaders), maxInFlight: UInt32(limits.maxInFlightPublishes),
                               maxSubscriptions: UInt32(limits.maxSubscriptionsPerConnection),
                               dedupWindow: broker.dedupWindowNanoseconds, principal: principal, subject: identity.subject.rfc4514,
                               fingerprint: identity.fingerprintSHA256,
                               spiffeID: identity.spiffe?.uri ?? "")))
        scheduleExpiry(notAfter: identity.notAfter)
    }

    /// Closes the session when the client certificate expires: a timer
    /// armed at HELLO fires just after `notAfter` (re-armed while further
    /// out than a day) and ends the session with `certificate_expired`.
    func scheduleExpiry(notAfter: Date) {
        guard let context else { return }
        let seconds = notAfter.timeIntervalSinceNow
        let delay = TimeAmount.milliseconds(Int64(max(0, min(seconds, 86_400)) * 1000) + 1)
        let session = NIOLoopBound(WeakSession(self), eventLoop: context.eventLoop)
        expiryTimer = context.eventLoop.scheduleTask(in: delay) {
            guard let self = session.value.handler else { return }
            guard notAfter.timeIntervalSinceNow <= 0 else { return self.scheduleExpiry(notAfter: notAfter) }
            guard case .active = self.state, let identity = self.identity else { return }
            let expiredAt = Self.isoTimestamp(notAfter)
            self.broker.audit?.record("session_ended", [
                "principal": self.principal, "subject": identity.subject.rfc4514, "serial": identity.serialNumber,
                "fingerprint": identity.fingerprintSHA256.hex, "cause": RelayErrorCode.certificateExpired.name,
                "trigger": "expiry", "not_after": expiredAt, "reason": "the client certificate expired"])
            self.terminate(.certificateExpired, "the client certificate expired at \(expiredAt); renew it and reconnect")
        }
    }

    /// After a reload: re-verify the certificate against the new CA/CRL set
    /// (and the current time), re-evaluate the policy, and end what is no
    /// longer allowed. The new permissions apply from the next PUB on.
    func reevaluate(policy: Policy, tls: TLSServerContext) {
        guard case .active = state, let identity, let peerChain else { return }
        do {
            try tls.verify(peerChain)
        } catch {
            let failure = CertificateFailure(error)
            broker.audit?.record("session_ended", [
                "principal": principal, "subject": identity.subject.rfc4514, "serial": identity.serialNumber,
                "fingerprint": identity.fingerprintSHA256.hex, "cause": failure.code.name, "trigger": "reload",
                "reason": "certificate no longer verifies after reload: \(error)"])
            terminate(failure.code, failure.message)
            return
        }
        let permissions = policy.permissions(for: identity)
        if permissions.isRefused {
            broker.audit?.record("session_ended", [
                "principal": principal, "subject": identity.subject.rfc4514, "serial": identity.serialNumber,
                "fingerprint": identity.fingerprintSHA256.hex, "cause": RelayErrorCode.identityRefused.name,
                "trigger": "reload", "reason": permissions.refusal ?? "policy no longer grants anything"])
            terminate(.identityRefused, "this certificate is no longer granted any permission by the broker's policy")
            return
        }
        self.permissions = permissions
        self.publishCache = PublishCache(permissions: permissions)
        for (id, sub) in subscriptions.sorted(by: { $0.key < $1.key }) {
            let decision = permissions.canSubscribe(sub.filter)
            guard !decision.isAllowed else { continue }
            broker.audit?.record("subscription_ended", [
                "principal": principal, "serial": identity.serialNumber, "subscription": Int(id),
                "filter": sub.filter.value, "rule": decision.rule ?? "(no rule allows it)",
                "cause": RelayErrorCode.subscriptionRevoked.name, "trigger": "reload",
                "reason": "no longer allowed after reload"])
            endSubscription(id, code: .subscriptionRevoked, message: "the policy no longer allows subscribing to \(sub.filter)")
        }
        flushOutbound()
    }

    static func isoTimestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}

/// Why a stored peer chain stopped verifying, as the connection-level code
/// the client is told: revoked (X509 error 23), expired (10), or anything
/// else (CA removed, CRL missing or stale) as `identity_refused`.
struct CertificateFailure {
    var code: RelayErrorCode
    var message: String

    init(_ error: TLSError) {
        let x509: Int
        if case .certificateRejected(let code, _) = error { x509 = code } else { x509 = -1 }
        switch x509 {
        case 23:
            code = .certificateRevoked
            message = "the client certificate was revoked; ask the operator for a new one"
        case 10:
            code = .certificateExpired
            message = "the client certificate has expired; renew it and reconnect"
        default:
            code = .identityRefused
            message = "the client certificate no longer verifies against the broker's CAs and CRLs; ask the operator"
        }
    }
}
