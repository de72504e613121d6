import Foundation
@testable import RelayBroker
import RelayTestSupport
import Testing

/// The watcher's view of one file: links followed, content compared.
@Suite struct WatchedFileTests {
    func write(_ text: String, to path: String) throws {
        try text.write(toFile: path, atomically: false, encoding: .utf8)
    }

    @Test("a Kubernetes ..data swap is a change; the link path itself never changes")
    func dataSwap() throws {
        let dir = try TemporaryDirectory(prefix: "watched")
        defer { dir.remove() }
        var volume = try ProjectedVolume(directory: dir.file("secret"), files: ["crl.pem": "first"])
        let before = WatchedFile.observe(volume.path("crl.pem"))
        guard case .content(let firstTarget, _) = before.state else {
            Issue.record("not readable through the links: \(before.state)")
            return
        }
        #expect(firstTarget.hasSuffix("..2026_12_03_000001/crl.pem"))
        let linkStat = try FileManager.default.attributesOfItem(atPath: volume.path("crl.pem"))
        try volume.publish(["crl.pem": "second"])
        let after = WatchedFile.observe(volume.path("crl.pem"))
        #expect(after.differs(from: before))
        guard case .content(let secondTarget, _) = after.state else {
            Issue.record("not readable after the swap: \(after.state)")
            return
        }
        #expect(secondTarget.hasSuffix("..2026_12_03_000002/crl.pem"))
        // What the old watcher looked at (lstat of the link) did not move.
        let linkStatAfter = try FileManager.default.attributesOfItem(atPath: volume.path("crl.pem"))
        #expect(linkStat[.modificationDate] as? Date == linkStatAfter[.modificationDate] as? Date)
        // A swap to identical bytes is nothing to reload.
        try volume.publish(["crl.pem": "second"])
        #expect(!WatchedFile.observe(volume.path("crl.pem")).differs(from: after))
    }

    @Test("an in-place rewrite is a change even when the modification time is restored; a touch is not")
    func inPlaceRewrite() throws {
        let dir = try TemporaryDirectory(prefix: "watched")
        defer { dir.remove() }
        let path = dir.file("crl.pem")
        let stamp = Date(timeIntervalSince1970: 1_780_000_000)
        try write("AAAA", to: path)
        try FileManager.default.setAttributes([.modificationDate: stamp], ofItemAtPath: path)
        let before = WatchedFile.observe(path)
        try write("BBBB", to: path)  // same size
        try FileManager.default.setAttributes([.modificationDate: stamp], ofItemAtPath: path)
        let after = WatchedFile.observe(path)
        #expect(after.differs(from: before))
        try FileManager.default.setAttributes([.modificationDate: Date()], ofItemAtPath: path)
        #expect(!WatchedFile.observe(path).differs(from: after))
    }

    @Test("a file behind a plain symlink rewritten in place is a change")
    func linkedFileRewritten() throws {
        let dir = try TemporaryDirectory(prefix: "watched")
        defer { dir.remove() }
        try write("one", to: dir.file("real.pem"))
        try FileManager.default.createSymbolicLink(atPath: dir.file("link.pem"), withDestinationPath: dir.file("real.pem"))
        let before = WatchedFile.observe(dir.file("link.pem"))
        try write("two", to: dir.file("real.pem"))
        #expect(WatchedFile.observe(dir.file("link.pem")).differs(from: before))
    }

    @Test("missing files and dangling links are unreadable; appearing or vanishing is a change")
    func missingAndDangling() throws {
        let dir = try TemporaryDirectory(prefix: "watched")
        defer { dir.remove() }
        let missing = WatchedFile.observe(dir.file("absent.pem"))
        guard case .unreadable = missing.state else {
            Issue.record("a missing file was observed as \(missing.state)")
            return
        }
        try FileManager.default.createSymbolicLink(atPath: dir.file("dangling.pem"), withDestinationPath: dir.file("nowhere.pem"))
        let dangling = WatchedFile.observe(dir.file("dangling.pem"))
        guard case .unreadable = dangling.state else {
            Issue.record("a dangling link was observed as \(dangling.state)")
            return
        }
        try write("now here", to: dir.file("nowhere.pem"))
        let appeared = WatchedFile.observe(dir.file("dangling.pem"))
        #expect(appeared.differs(from: dangling))
        try FileManager.default.removeItem(atPath: dir.file("nowhere.pem"))
        #expect(WatchedFile.observe(dir.file("dangling.pem")).differs(from: appeared))
    }
}
