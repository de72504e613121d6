import RelayCore
import RelayStore
import RelayTLS

/// What a session's data is keyed by, so that one identity never touches
/// another's (docs/security.md, "Identity scoping"; Protocol/relay-v1.md
/// §4.3 and §4.6). Neither uses the principal, which a template can make
/// equal for different certificates.
enum IdentityScope {
    /// Dedup entries: ``ProducerKey/publisher`` is the SHA-256 of the client
    /// certificate (``Identity/fingerprintSHA256``), i.e. exactly the
    /// certificate that sent the publish.
    ///
    /// Durable cursors: one workload, named by its issuer DN, subject DN and
    /// SPIFFE ID together. A renewed certificate (new key, same names from the
    /// same CA) is the same workload and keeps its cursors; two SVIDs with
    /// the same subject but different SPIFFE IDs, or the same CN from
    /// different CAs, are different workloads. A certificate with neither a
    /// subject nor a SPIFFE ID has nothing stable to name it, so it owns
    /// its cursors alone (its fingerprint is part of the owner).
    /// Nil never happens in practice (SHA-256 is 32 bytes); the session then
    /// refuses durable subscriptions rather than share an owner.
    static func durableOwner(_ identity: Identity) -> DurableOwner? {
        var material = Array("relay durable owner v1".utf8)
        func field(_ text: String) {
            let bytes = Array(text.utf8)
            let count = UInt32(truncatingIfNeeded: bytes.count)
            material += [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)]
            material += bytes
        }
        let subject = identity.subject.rfc4514
        field(identity.issuer.rfc4514)
        field(subject)
        field(identity.spiffe?.uri ?? "")
        field(subject.isEmpty && identity.spiffe == nil ? identity.fingerprintSHA256.hex : "")
        return DurableOwner(digest: SHA256.digest(material))
    }
}
