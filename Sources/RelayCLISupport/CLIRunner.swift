import ArgumentParser
import Foundation
import RelayCore
import RelayClient

/// Runs a command with the exit codes of ``RelayExit`` (the one table of
/// every Relay binary): a ``RelayClientError`` exits with its `exitCode`,
/// argument errors with 64 (ArgumentParser's validation failure).
public enum CLIRunner {
    public static func main<Command: ParsableCommand>(_ type: Command.Type) async -> Never {
        // A closed stdout (`relay-sub | head -2`) must end the program quietly:
        // with SIGPIPE ignored, a write to it fails with EPIPE, which
        // ``writeOut(_:)`` treats as a normal end (exit 0).
        signal(SIGPIPE, SIG_IGN)
        do {
            var command = try Command.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            end(0)
        } catch let error as RelayClientError {
            fail(error.message, code: error.exitCode)
        } catch let code as ExitCode {
            end(code.rawValue)
        } catch {
            let code = Command.exitCode(for: error)
            if code == .success {
                Command.exit(withError: error)  // --help, --version, completion scripts
            }
            let message = Command.fullMessage(for: error)
            if code == .validationFailure {
                fail(message, code: RelayExit.usage.rawValue)
            }
            fail(message, code: code.rawValue == 0 ? RelayExit.failure.rawValue : code.rawValue)
        }
    }

    /// Prints `message` on stderr as `<program>: error: …` and exits.
    public static func fail(_ message: String, code: Int32) -> Never {
        let program = URL(fileURLWithPath: CommandLine.arguments.first ?? "relay").lastPathComponent
        let text = message.hasPrefix("Error:") || message.hasPrefix("Usage:") ? message : "\(program): error: \(message)"
        printError(text)
        end(code)
    }

    /// Ends the process with `code` once its output is flushed, without
    /// running atexit handlers or library finalizers. The client's event
    /// loop threads (NIO's singleton group) may still be closing the
    /// connection's TLS when the command returns, and `exit` runs OpenSSL's
    /// atexit cleanup, which frees the locks those threads use: relay-pub
    /// exited with SIGSEGV in `pthread_rwlock_unlock` on a NIO thread while
    /// the main thread was in the library finalizers (wave 24's CI run,
    /// `AdminJetStreamTests`, status 11). Nothing of Relay's needs them:
    /// output goes through unbuffered FileHandle writes or stdio, flushed here.
    public static func end(_ code: Int32) -> Never {
        fflush(nil)
        _exit(code)
    }

    /// Exits 66 (``RelayExit/noInput``) with a sentence when `path` (a file
    /// the user named with `flag`) cannot be read.
    public static func requireReadable(_ path: String, flag: String) {
        guard let problem = unreadableFileProblem(path, flag: flag) else { return }
        fail(problem, code: RelayExit.noInput.rawValue)
    }

    /// Why the file `path` (named with `flag`) cannot be read, in one
    /// sentence; nil when it can. A directory counts: `isReadableFile` says
    /// yes to one, and reading it failed later with Foundation's error text.
    public static func unreadableFileProblem(_ path: String, flag: String) -> String? {
        var directory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &directory)
        if exists && directory.boolValue { return "\(flag) \(path) is a directory; name the file in it" }
        guard !FileManager.default.isReadableFile(atPath: path) else { return nil }
        return "\(flag) \(path) \(exists ? "cannot be read (permissions)" : "does not exist"); check the path\(exists ? " and its permissions" : "")"
    }
}

/// Writes one line to stderr. Error text can quote the broker's ERR
/// message or a certificate name, so each line goes through
/// ``DisplayText/escaped(_:)`` (the line breaks of a multi-line usage
/// message are kept; a bidi or C1 character never reaches the terminal raw).
public func printError(_ line: String) {
    let text = line.split(separator: "\n", omittingEmptySubsequences: false)
        .map { DisplayText.escaped(String($0)) }.joined(separator: "\n")
    // The throwing write: a closed stderr loses the line, and the program
    // still ends with its own status (the non-throwing `write(_:)` traps).
    try? FileHandle.standardError.write(contentsOf: Data((text + "\n").utf8))
}

/// Writes bytes to stdout at once (no buffering: pipes see each message as it arrives).
/// When the reader has gone (EPIPE: `relay-sub | head -2` after two lines),
/// the program ends quietly with exit 0: the consumer asked for no more, which
/// is a normal end, not an error (nothing on stderr). The message whose write
/// failed is not acknowledged, so a durable subscription redelivers it.
public func writeOut(_ bytes: some Sequence<UInt8>) {
    do {
        try FileHandle.standardOutput.write(contentsOf: Data(bytes))
    } catch {
        if isBrokenPipe(error) { CLIRunner.end(RelayExit.ok.rawValue) }
        CLIRunner.fail("cannot write to standard output: \(error.localizedDescription)", code: RelayExit.failure.rawValue)
    }
}

/// EPIPE, as Foundation reports it: a POSIX error, or a Cocoa write error
/// (code 512) whose underlying error is POSIX 32.
func isBrokenPipe(_ error: any Error) -> Bool {
    let error = error as NSError
    if error.domain == NSPOSIXErrorDomain { return error.code == Int(EPIPE) }
    guard let underlying = error.userInfo[NSUnderlyingErrorKey] as? NSError else { return false }
    return underlying.domain == NSPOSIXErrorDomain && underlying.code == Int(EPIPE)
}
