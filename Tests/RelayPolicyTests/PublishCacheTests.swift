import Testing
import RelayCore
@testable import RelayPolicy

@Suite("Per-connection publish cache")
struct PublishCacheTests {
    let permissions: Permissions = {
        let rule = RuleDefinition(name: "r", publish: ["a.>", "b.*"], denyPublish: ["a.x"])
        do { return try Policy(definitions: [rule]).permissions(for: Fixture.identity(cn: ["c"])) } catch {
            preconditionFailure("test policy must load: \(error)")
        }
    }()

    @Test("cached answers equal uncached ones, on first and repeated checks")
    func consistent() throws {
        var cache = PublishCache(permissions: permissions, capacity: 4)
        for _ in 0..<3 {
            for t in ["a.b", "a.x", "b.c", "b.c.d", "c", "a.x.y", "a"] {
                let tp = try topic(t)
                #expect(cache.decision(tp) == permissions.canPublish(tp))
                #expect(cache.isAllowed(tp) == permissions.canPublish(tp).isAllowed)
            }
        }
        #expect(cache.decision(try topic("a.x")) == .denied(rule: "r", filter: "a.x"))
    }

    @Test("the cache never grows past its capacity")
    func bounded() throws {
        var cache = PublishCache(permissions: permissions, capacity: 16)
        for i in 0..<1_000 {
            _ = cache.isAllowed(try topic("a.t\(i)"))
            #expect(cache.count <= 16)
        }
    }

    @Test("a refused identity is refused through the cache too")
    func refused() throws {
        let p = try Policy(definitions: []).permissions(for: Fixture.identity())
        var cache = PublishCache(permissions: p)
        #expect(!cache.isAllowed(try topic("a")))
        #expect(cache.decision(try topic("a")) == .identityRefused)
    }
}

@Suite("Per-connection publish cache: the last-topic memo")
struct PublishCacheMemoTests {
    @Test("runs of one topic, then another, then back: every answer equals the uncached one")
    func runs() throws {
        let rule = RuleDefinition(name: "r", publish: ["a.>"], denyPublish: ["a.x"])
        let permissions = try Policy(definitions: [rule]).permissions(for: Fixture.identity(cn: ["c"]))
        var cache = PublishCache(permissions: permissions, capacity: 2)
        for t in ["a.b", "a.b", "a.x", "a.x", "c", "c", "a.b", "a.y", "a.z", "a.x", "a.x", "a.b"] {
            let tp = try Topic(t)
            #expect(cache.isAllowed(tp) == permissions.canPublish(tp).isAllowed, "topic \(t)")
            #expect(cache.decision(tp) == permissions.canPublish(tp), "topic \(t)")
        }
    }
}
