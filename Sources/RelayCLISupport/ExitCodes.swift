import ArgumentParser
import RelayCore

extension RelayExit {
    /// For `throw RelayExit.usage.exitCode` in ArgumentParser commands.
    public var exitCode: ExitCode { ExitCode(rawValue) }
}
