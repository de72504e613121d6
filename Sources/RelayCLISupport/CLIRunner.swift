import ArgumentParser
import Foundation
import RelayCore
import RelayClient

/// Runs a command with the Relay CLIs' exit codes: 0 success, 1 denied by
/// policy, 2 usage (including argument errors, which ArgumentParser would
/// report as 64), 3 connection or TLS failure.
public enum CLIRunner {
    public static func main<Command: ParsableCommand>(_ type: Command.Type) async -> Never {
        do {
            var command = try Command.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit(0)
        } catch let error as RelayClientError {
            fail(error.message, code: error.exitCode)
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            let code = Command.exitCode(for: error)
            if code == .success {
                Command.exit(withError: error)  // --help, --version, completion scripts
            }
            let message = Command.fullMessage(for: error)
            if code == .validationFailure {
                fail(message, code: 2)
            }
            fail(message, code: code.rawValue == 0 ? 1 : code.rawValue)
        }
    }

    /// Prints `message` on stderr as `<program>: error: …` and exits.
    public static func fail(_ message: String, code: Int32) -> Never {
        let program = URL(fileURLWithPath: CommandLine.arguments.first ?? "relay").lastPathComponent
        let text = message.hasPrefix("Error:") || message.hasPrefix("Usage:") ? message : "\(program): error: \(message)"
        printError(text)
        exit(code)
    }
}

/// Writes one line to stderr. Error text can quote the broker's ERR
/// message or a certificate name, so each line goes through
/// ``DisplayText/escaped(_:)`` (the line breaks of a multi-line usage
/// message are kept; a bidi or C1 character never reaches the terminal raw).
public func printError(_ line: String) {
    let text = line.split(separator: "\n", omittingEmptySubsequences: false)
        .map { DisplayText.escaped(String($0)) }.joined(separator: "\n")
    FileHandle.standardError.write(Data((text + "\n").utf8))
}

/// Writes bytes to stdout at once (no buffering: pipes see each message as it arrives).
public func writeOut(_ bytes: some Sequence<UInt8>) {
    FileHandle.standardOutput.write(Data(bytes))
}
