import Foundation
import RelayTestSupport
import Testing

/// Issue 18 item 3 against the real relayd: a data directory relayd cannot
/// write and a port another process holds are refused in one plain sentence
/// that names the path or address and says what to do, with the exit status
/// of docs/exit-codes.md, and none of the raw NIO or Foundation text
/// ("bind(descriptor:ptr:bytes:)", "errno: 98", strerror's wording).
@Suite("relayd end to end: plain start-up errors", .serialized)
struct StartupErrorTests {
    /// Texts that only a raw system, NIO or Foundation error carries.
    static let rawTexts = ["bind(descriptor", "errno", "Errno", "Address already in use", "Read-only file system",
                           "Permission denied", "NSCocoaErrorDomain", "The operation could not be completed"]

    /// The `error` field of relayd's "relayd cannot start" log line (logfmt).
    static func startError(_ child: ChildProcess) -> String? {
        child.outputLines.compactMap(RelaydLogLine.logfmt).first { $0["msg"] == "relayd cannot start" }?["error"]
    }

    @Test("a data directory on a read-only file system: exit 66, one sentence naming it and what to do")
    func readOnlyDataDirectory() async throws {
        try await withRelayd { relayd in
            // A store that exists (relayd ran on it), as after a remount read-only.
            #expect(await relayd.terminate() == 0)
            let data = relayd.dataDirectory
            // Read-only for real, also when the tests run as root (chmod does
            // not stop root): a read-only bind mount of the data directory in
            // a private mount namespace (a user namespace too, so it needs no
            // privilege), then relayd exec'd inside it. The probe proves the
            // condition before relayd runs (exit 97 otherwise).
            let script = """
                set -e
                mount --bind "$0" "$0"
                mount -o remount,ro,bind "$0"
                if touch "$0/write-probe" 2>/dev/null; then echo "the data directory is still writable" >&2; exit 97; fi
                shift
                exec "$@"
                """
            let relaydPath = try ProductLocator.executable("relayd")
            // The store that exists, and a new one that --init would create inside it.
            for (dataDirectory, initialize) in [(data, false), ("\(data)/new", true)] {
                let child = try await ChildProcess("/usr/bin/unshare", ["--user", "--map-root-user", "--mount", "/bin/sh", "-c", script,
                                                                  data, "sh", relaydPath, "--config", relayd.configPath,
                                                                  "--listen", "127.0.0.1:0", "--data-dir", dataDirectory]
                                                                  + (initialize ? ["--init"] : []))
                child.closeStdin()
                let status = await child.waitForExit(timeout: 20)
                #expect(status == 66, "exit \(String(describing: status)):\n\(child.transcript)")
                let error = try #require(Self.startError(child), "no 'relayd cannot start' line:\n\(child.transcript)")
                let action = initialize ? "cannot create the data directory" : "cannot write in the data directory"
                #expect(error.contains("\(action) \(dataDirectory): it is on a read-only file system"), "\(error)")
                #expect(error.contains("remount it read-write") && error.contains("--data-dir"), "no hint: \(error)")
                let raw = Self.rawTexts.filter { child.transcript.contains($0) }
                #expect(raw.isEmpty, "raw error text \(raw):\n\(child.transcript)")
            }
        }
    }

    @Test("a new data directory relayd may not write (mode 0555, relayd not root): exit 66, one sentence with the uid and what to do")
    func unwritableDataDirectory() async throws {
        try await withRelayd(start: false) { relayd in
            let data = relayd.dataDirectory
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o555])
            // As in `mkdir /var/lib/relay` made for another user. relayd runs
            // as uid 1000 of a user namespace (the test's uid outside), so
            // the mode applies even when the tests run as root; the files
            // the fixture wrote look like its own there.
            let child = try await ChildProcess("/usr/bin/unshare", ["--user", "--map-user=1000", "--map-group=1000",
                                                              try ProductLocator.executable("relayd"), "--config", relayd.configPath,
                                                              "--listen", "127.0.0.1:0"])
            child.closeStdin()
            let status = await child.waitForExit(timeout: 20)
            #expect(status == 66, "exit \(String(describing: status)):\n\(child.transcript)")
            let error = try #require(Self.startError(child), "no 'relayd cannot start' line:\n\(child.transcript)")
            #expect(error.contains("cannot write in the data directory \(data): relayd (uid 1000) has no write permission there"),
                    "\(error)")
            #expect(error.contains("chown or chmod") && error.contains("--data-dir"), "no hint: \(error)")
            let raw = Self.rawTexts.filter { child.transcript.contains($0) }
            #expect(raw.isEmpty, "raw error text \(raw):\n\(child.transcript)")
        }
    }

    @Test("a metrics or listen port another process holds: exit 1, one sentence naming the address and the setting",
          arguments: ["metrics", "listen"])
    func portInUse(listener: String) async throws {
        let occupied = try await OccupiedPort.bind()
        try await withRelayd(metrics: true, start: false) { relayd in
            let address = "127.0.0.1:\(occupied.port)"
            var arguments = ["--init", "--config", relayd.configPath, "--listen", "127.0.0.1:0"]
            if listener == "metrics" {
                try relayd.replaceInConfig("[metrics]\nlisten = \"127.0.0.1:0\"", with: "[metrics]\nlisten = \"\(address)\"")
            } else {
                arguments[arguments.count - 1] = address
            }
            let child = try await ChildProcess(try ProductLocator.executable("relayd"), arguments)
            child.closeStdin()
            let status = await child.waitForExit(timeout: 20)
            #expect(status == 1, "exit \(String(describing: status)):\n\(child.transcript)")
            let error = try #require(Self.startError(child), "no 'relayd cannot start' line:\n\(child.transcript)")
            let setting = listener == "metrics" ? "[metrics] listen" : "[server] listen"
            #expect(error.contains(address) && error.contains("is in use by another process") && error.contains(setting), "\(error)")
            let raw = Self.rawTexts.filter { child.transcript.contains($0) }
            #expect(raw.isEmpty, "raw error text \(raw):\n\(child.transcript)")
        }
        await occupied.close()
    }
}
