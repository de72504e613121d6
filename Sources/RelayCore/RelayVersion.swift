/// The one version source of every Relay binary (`--version` of relayd,
/// relayctl, relay-pub and relay-sub) and of the client's HELLO name.
public enum RelayVersion {
    /// Semantic version of this build of Relay.
    public static let current = "0.4.0-dev"
    /// What `--version` prints: the version and the wire protocol it speaks.
    public static let description = "\(current) (protocol relay-v1)"
}
