import Foundation
import NIOCore
import RelayCore
import RelayPolicy
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
                                                        "fingerprint": identity.fingerprintSHA256,
                                                        "reason": permissions.refusal ?? "no rule grants anything"])
            terminate(.identityRefused, "this certificate is not granted any permission by the broker's policy")
            return
        }
        self.identity = identity
        self.peerChain = handshake.peerChain
        self.permissions = permissions
        self.publishCache = PublishCache(permissions: permissions)
        self.principal = permissions.principal
        self.producerSession = hello.sessionID
        self.peerMaxFrameSize = Int(hello.maxFrameSize)
        state = .active
        broker.audit?.record("connection_accepted", ["principal": principal, "subject": identity.subject.rfc4514,
                                                     "serial": identity.serialNumber, "fingerprint": identity.fingerprintSHA256,
                                                     "tls": handshake.protocolVersion])
        let limits = broker.limits
        write(.welcome(Welcome(version: version, maxFrameSize: UInt32(limits.maxFrameSize), maxPayload: UInt32(limits.maxPayload),
                               maxHeaders: UInt16(clamping: limits.maxHeaders), maxInFlight: UInt32(limits.maxInFlightPublishes),
                               maxSubscriptions: UInt32(limits.maxSubscriptionsPerConnection),
                               dedupWindow: 120_000_000_000, principal: principal, subject: identity.subject.rfc4514,
                               fingerprint: CertificateFingerprint(hex: identity.fingerprintSHA256) ?? CertificateFingerprint.zero,
                               spiffeID: identity.spiffe?.uri ?? "")))
        scheduleExpiry(notAfter: identity.notAfter)
    }

    /// Closes the session when the client certificate expires.
    func scheduleExpiry(notAfter: Date) {
        guard let context else { return }
        let seconds = notAfter.timeIntervalSinceNow
        // Timers further out than a day are re-armed by reloads and re-checks; cap the delay.
        let delay = TimeAmount.milliseconds(Int64(max(0, min(seconds, 86_400)) * 1000) + 1)
        expiryTimer = context.eventLoop.scheduleTask(in: delay) { [weak self] in
            guard let self else { return }
            if notAfter.timeIntervalSinceNow <= 0 {
                self.broker.audit?.record("session_ended", ["principal": self.principal, "reason": "certificate expired"])
                self.terminate(.certificateExpired, "the client certificate expired at \(notAfter)")
            } else {
                self.scheduleExpiry(notAfter: notAfter)
            }
        }
    }

    /// After a reload: re-verify the certificate against the new CA/CRL set,
    /// re-evaluate the policy, and end what is no longer allowed.
    func reevaluate(policy: Policy, tls: TLSServerContext) {
        guard case .active = state, let identity, let peerChain else { return }
        do {
            try tls.verify(peerChain)
        } catch {
            let revoked: Bool
            if case .certificateRejected(let code, _) = error { revoked = code == 23 } else { revoked = false }
            broker.audit?.record("session_ended", ["principal": principal, "serial": identity.serialNumber,
                                                   "reason": "certificate no longer verifies after reload: \(error)"])
            terminate(revoked ? .certificateRevoked : .identityRefused,
                      revoked ? "the client certificate was revoked" : "the client certificate no longer verifies: \(error)")
            return
        }
        let permissions = policy.permissions(for: identity)
        if permissions.isRefused {
            broker.audit?.record("session_ended", ["principal": principal, "serial": identity.serialNumber,
                                                   "reason": "policy no longer grants anything"])
            terminate(.identityRefused, "this certificate is no longer granted any permission by the broker's policy")
            return
        }
        self.permissions = permissions
        self.publishCache = PublishCache(permissions: permissions)
        for (id, sub) in subscriptions where !permissions.canSubscribe(sub.filter).isAllowed {
            broker.audit?.record("subscription_ended", ["principal": principal, "filter": sub.filter.value,
                                                        "reason": "no longer allowed after reload"])
            endSubscription(id, code: .subscriptionRevoked, message: "the policy no longer allows subscribing to \(sub.filter)")
        }
        flushOutbound()
    }
}
