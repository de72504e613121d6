extension RelaydFixture {
    /// The audit trail's key: relayd's default `[audit] key_file`, `audit.key`
    /// in the data directory (created on the first start).
    public var auditKeyPath: String { dataDirectory + "/audit.key" }
}
