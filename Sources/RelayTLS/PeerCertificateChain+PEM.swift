import Foundation

extension PeerCertificateChain {
    /// The chain a client would send from its certificate file: every
    /// CERTIFICATE block of `pem`, in order (leaf first, then intermediates).
    /// `relayctl acl explain` verifies it with the broker's own context.
    public init(pem: String) {
        let blocks = pem.components(separatedBy: "-----BEGIN CERTIFICATE-----").dropFirst().compactMap { block -> [UInt8]? in
            guard let body = block.components(separatedBy: "-----END CERTIFICATE-----").first,
                  let data = Data(base64Encoded: body.filter { !$0.isWhitespace }) else { return nil }
            return [UInt8](data)
        }
        self.init(derCertificates: blocks)
    }
}
