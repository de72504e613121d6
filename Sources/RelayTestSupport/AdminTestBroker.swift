import Foundation

/// A relayd behind the production-shaped PKI of ``IntermediateTree`` with
/// three identities for the admin surface (docs/security.md, "Admin
/// access"): `ops` (under intermediate A) may read and write, `viewer`
/// (under B2 → B1) may read, `app` (under A) may publish and subscribe but
/// has no admin grant.
public struct AdminTestIdentities: Sendable {
    public let tree: IntermediateTree
    public let ops: TLSTestPKI.Files
    public let viewer: TLSTestPKI.Files
    public let app: TLSTestPKI.Files

    public static let acl = """
    [acl]
    principal = "{subject.CN}"

    [[acl.rule]]
    name = "apps"
    match = { "subject.CN" = ["app"] }
    publish = [">"]
    subscribe = [">"]

    [[acl.rule]]
    name = "viewers"
    match = { "subject.CN" = ["viewer"] }
    admin = ["read"]

    [[acl.rule]]
    name = "operators"
    match = { "subject.CN" = ["ops"] }
    admin = ["read", "write"]
    """

    public init() throws {
        tree = try IntermediateTree()
        ops = try tree.pki.addChainedClient("ops", chain: [tree.intermediate])
        viewer = try tree.pki.addChainedClient("viewer", chain: [tree.lower, tree.upper])
        app = try tree.pki.addChainedClient("app", chain: [tree.intermediate])
    }

    /// A relayd trusting only the tree's root, with ``acl``.
    public func fixture() throws -> RelaydFixture {
        try RelaydFixture(pki: tree.pki, acl: Self.acl)
    }
}
