import Foundation
import RelayClient
import RelayTestSupport
import Testing

/// relay-pub and relay-sub as processes against the real relayd.
@Suite("relay-pub and relay-sub")
struct CLITests {
    @Test("relay-pub --message --count --verbose prints each receipt; relay-sub --format json prints the documented schema")
    func publishAndJSON() async throws {
        try await withBroker { broker in
            let pub = try await runCLI("relay-pub", broker.cliArguments()
                + ["--topic", "cli.json", "--message", "hello \"json\"", "--header", "k=v", "--count", "3", "--verbose"])
            #expect(pub.status == 0, "\(pub.stderr)")
            let published = pub.stdout.filter { $0.hasPrefix("published sequence=") }
            #expect(published.count == 3, "\(pub.stdout)")
            let sub = try await runCLI("relay-sub", broker.cliArguments()
                + ["--topic", "cli.>", "--from", "earliest", "--count", "3", "--format", "json"])
            #expect(sub.status == 0, "\(sub.stderr)")
            #expect(sub.stdout.count == 3)
            let session = try await RelayConnection.connect(broker.clientConfiguration())
            let principal = try #require(await session.session?.principal)
            await session.close()
            var sequences: [Int] = []
            for line in sub.stdout {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
                #expect(object["topic"] as? String == "cli.json")
                sequences.append(object["sequence"] as? Int ?? -1)
                #expect((object["timestamp"] as? String)?.hasSuffix("Z") == true)
                #expect(object["payload"] as? String == "hello \"json\"")
                #expect(object["payload_encoding"] as? String == "utf8")
                let publisher = try #require(object["publisher"] as? [String: Any])
                #expect(publisher["principal"] as? String == principal)
                #expect((publisher["fingerprint"] as? String)?.count == 64)
                let headers = try #require(object["headers"] as? [[String: String]])
                #expect(headers == [["key": "k", "value": "v"]])
                // The README's documented key order, timestamp_ns agreeing with timestamp,
                // and replayed: these were read from the store (--from earliest, after the publish).
                #expect(topLevelKeys(line) == Self.documentedKeys, "\(line)")
                #expect(try timestampsAgree(line), "\(line)")
                #expect(object["replayed"] as? Bool == true, "\(line)")
            }
            let allPositive = sequences.allSatisfy { $0 >= 1 }
            #expect(sequences == sequences.sorted() && Set(sequences).count == 3 && allPositive)
        }
    }

    /// README.md, "relay-sub JSON output": "keys always in this order".
    static let documentedKeys = ["topic", "sequence", "timestamp", "timestamp_ns", "publisher", "headers",
                                 "payload_encoding", "payload", "replayed"]

    @Test("relay-sub --format json: a payload that is not UTF-8 is base64, and a live delivery has replayed false")
    func jsonBase64AndLive() async throws {
        try await withRelayd(acl: allowAllACL, metrics: true) { broker in
            let bytes: [UInt8] = [0xFF, 0x00, 0xC3, 0x28, 0x80, 0x41]  // invalid UTF-8 on purpose
            let file = broker.directory.file("binary.bin")
            try Data(bytes).write(to: URL(fileURLWithPath: file))

            // A live subscriber: wait for the broker to count its subscription (the
            // event that says a publish from now on is delivered live), then publish.
            let sub = try await ChildProcess(try ProductLocator.executable("relay-sub"), broker.cliArguments()
                + ["--topic", "cli.bin", "--from", "latest", "--count", "1", "--format", "json"])
            sub.closeStdin()
            // Polled: the metric is the only outside sign.
            _ = try await eventually(timeout: 30) { try await broker.metric("relay_subscriptions") ?? 0 >= 1 || !sub.isRunning }
            let pub = try await runCLI("relay-pub", broker.cliArguments() + ["--topic", "cli.bin", "--file", file])
            #expect(pub.status == 0, "\(pub.stderr)")
            let status = await sub.waitForExit(timeout: 30)
            #expect(status == 0, "\(sub.transcript)")
            let line = try #require(sub.stdoutLines.first, "\(sub.transcript)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(topLevelKeys(line) == Self.documentedKeys, "\(line)")
            #expect(object["payload_encoding"] as? String == "base64", "\(line)")
            let payload = try #require(object["payload"] as? String)
            let decoded = Data(base64Encoded: payload).map { [UInt8]($0) }
            #expect(decoded == bytes, "\(line)")
            #expect(object["replayed"] as? Bool == false, "a live delivery says replayed: \(line)")
            #expect(try timestampsAgree(line), "\(line)")
        }
    }

    @Test("relay-pub --lines publishes each stdin line; relay-sub --format raw prints the payloads, pretty shows topic, sequence and publisher")
    func linesRawPretty() async throws {
        try await withBroker { broker in
            let pub = try await runCLI("relay-pub", broker.cliArguments() + ["--topic", "cli.lines", "--lines"],
                                       stdin: "alpha\nbeta\ngamma\n")
            #expect(pub.status == 0, "\(pub.stderr)")
            let raw = try await runCLI("relay-sub", broker.cliArguments()
                + ["--topic", "cli.lines", "--from", "earliest", "--count", "3", "--format", "raw"])
            #expect(raw.status == 0, "\(raw.stderr)")
            #expect(raw.stdout == ["alpha", "beta", "gamma"])
            let pretty = try await runCLI("relay-sub", broker.cliArguments()
                + ["--topic", "cli.*", "--from", "last:1", "--count", "1"])
            #expect(pretty.status == 0, "\(pretty.stderr)")
            let line = try #require(pretty.stdout.first)
            #expect(line.contains("cli.lines") && line.contains(" #") && line.contains("from ") && line.hasSuffix("gamma"), "\(line)")
        }
    }

    @Test("binary payloads from --file show as a hex preview in pretty output")
    func binaryFile() async throws {
        try await withBroker { broker in
            let file = broker.directory.file("blob.bin")
            try Data([0xff, 0x00, 0xfe, 0x01]).write(to: URL(fileURLWithPath: file))
            let pub = try await runCLI("relay-pub", broker.cliArguments() + ["--topic", "cli.bin", "--file", file])
            #expect(pub.status == 0, "\(pub.stderr)")
            let sub = try await runCLI("relay-sub", broker.cliArguments() + ["--topic", "cli.bin", "--from", "earliest", "--count", "1"])
            #expect(sub.stdout.first?.contains("<binary, 4 bytes: ff00fe01>") == true, "\(sub.stdout)")
        }
    }

    @Test("relay-sub --timeout exits 0 when the time is up and reports how many messages it received")
    func timeout() async throws {
        try await withBroker { broker in
            let sub = try await runCLI("relay-sub", broker.cliArguments() + ["--topic", "quiet.>", "--timeout", "1"])
            #expect(sub.status == 0, "\(sub.stderr)")
            let receivedNone = sub.stderr.contains { $0.contains("received 0 message(s)") }
            #expect(receivedNone, "\(sub.stderr)")
        }
    }

    @Test("relay-sub --durable resumes after the last message a previous run printed; --from seq:N and time: work")
    func durableAndPositions() async throws {
        try await withBroker { broker in
            let publisher = try await Publisher.connect(broker.clientConfiguration())
            var receipts: [PublishReceipt] = []
            for text in ["1", "2", "3", "4"] { receipts.append(try await publisher.publish(topic: "cli.d", text: text)) }
            await publisher.close()
            let base = broker.cliArguments() + ["--topic", "cli.d", "--format", "raw"]
            let first = try await runCLI("relay-sub", base + ["--durable", "cli-worker", "--from", "earliest", "--count", "2"])
            #expect(first.stdout == ["1", "2"])
            let second = try await runCLI("relay-sub", base + ["--durable", "cli-worker", "--count", "2"])
            #expect(second.stdout == ["3", "4"], "\(second.stderr)")
            let fromSeq = try await runCLI("relay-sub", base + ["--from", "seq:\(receipts[2].sequence)", "--count", "2"])
            #expect(fromSeq.stdout == ["3", "4"])
            let fromTime = try await runCLI("relay-sub", base + ["--from", "time:2000-01-01T00:00:00Z", "--count", "4"])
            #expect(fromTime.stdout == ["1", "2", "3", "4"])
        }
    }
}

/// The top-level keys of a one-line JSON object, in the order they appear
/// (JSONSerialization forgets the order; the README promises it).
func topLevelKeys(_ line: String) -> [String] {
    var keys: [String] = []
    var depth = 0, expectKey = false
    var characters = line.makeIterator()
    while let character = characters.next() {
        switch character {
        case "\"":
            // A string: read it whole (escapes included); a key when one is expected at depth 1.
            var text = ""
            while let next = characters.next(), next != "\"" {
                if next == "\\" { _ = characters.next() }
                text.append(next)
            }
            if expectKey && depth == 1 { keys.append(text) }
            expectKey = false
        case "{", "[":
            depth += 1
            expectKey = depth == 1 && character == "{"
        case "}", "]": depth -= 1
        case ",": expectKey = depth == 1
        default: break
        }
    }
    return keys
}

/// Whether `timestamp_ns` (read from the raw text: a 19-digit integer) is the
/// instant `timestamp` names, to the nanosecond.
func timestampsAgree(_ line: String) throws -> Bool {
    let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    let text = try #require(object["timestamp"] as? String)
    let nsMatch = try #require(line.firstMatch(of: /"timestamp_ns":([0-9]+)[,}]/), "no integer timestamp_ns in \(line)")
    let ns = try #require(UInt64(nsMatch.1))
    // "2024-05-01T12:00:00.123456789Z": seconds to the second, then 9 digits of nanoseconds.
    let parts = text.dropLast().split(separator: ".")
    guard text.hasSuffix("Z"), parts.count == 2, parts[1].count == 9, let nanos = UInt64(parts[1]) else { return false }
    let formatter = ISO8601DateFormatter()
    guard let date = formatter.date(from: parts[0] + "Z") else { return false }
    return UInt64(date.timeIntervalSince1970) * 1_000_000_000 + nanos == ns
}
