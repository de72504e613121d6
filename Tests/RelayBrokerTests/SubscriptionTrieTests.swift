import RelayTestSupport
import Testing
import RelayCore
@testable import RelayBroker

@Suite("Subscription trie")
struct SubscriptionTrieTests {
    func f(_ s: String) throws -> TopicFilter { try TopicFilter(s) }

    @Test("literal, '*' and '>' subscriptions match like TopicFilter.matches")
    func matchesLikeFilters() throws {
        var trie = SubscriptionTrie<Int>()
        let filters = ["a.b.c", "a.*.c", "a.>", ">", "*.b.*", "x", "*", "a.b.>"]
        for (i, filter) in filters.enumerated() { trie.insert(try f(filter), i) }
        #expect(trie.count == filters.count)
        for topic in ["a.b.c", "a", "a.b", "x", "q.b.z", "a.x.c", "a.b.c.d", "z.z.z.z"] {
            let expected = Set(filters.indices.filter { (try? f(filters[$0]).matches(Topic(topic))) == true })
            let m1 = trie.match(topic)
            #expect(Set(m1) == expected, "topic \(topic)")
        }
    }

    @Test("a subscriber under two matching filters is returned once")
    func deduplicates() throws {
        var trie = SubscriptionTrie<String>()
        trie.insert(try f("a.>"), "s")
        trie.insert(try f("a.b"), "s")
        let m2 = trie.match("a.b")
        #expect(m2 == ["s"])
    }

    @Test("removal updates matches and the cache")
    func removalInvalidatesCache() throws {
        var trie = SubscriptionTrie<Int>()
        trie.insert(try f("a.*"), 1)
        trie.insert(try f("a.b"), 2)
        let m3 = trie.match("a.b")
        #expect(Set(m3) == [1, 2])  // now cached
        #expect(trie.remove(try f("a.*"), 1))
        let m4 = trie.match("a.b")
        #expect(m4 == [2])
        #expect(!trie.remove(try f("a.*"), 1))
        #expect(trie.remove(try f("a.b"), 2))
        let m5 = trie.match("a.b")
        #expect(m5.isEmpty)
        #expect(trie.count == 0)
    }

    @Test("insertion invalidates cached topics the new filter matches")
    func insertionInvalidatesCache() throws {
        var trie = SubscriptionTrie<Int>()
        let m6 = trie.match("a.b.c")
        #expect(m6.isEmpty)
        let m7 = trie.match("z")
        #expect(m7.isEmpty)
        trie.insert(try f("a.>"), 7)
        let m8 = trie.match("a.b.c")
        #expect(m8 == [7])
        trie.insert(try f("z"), 8)
        let m9 = trie.match("z")
        #expect(m9 == [8])
    }

    @Test("a bounded cache keeps answering correctly past its limit")
    func cacheLimit() throws {
        var trie = SubscriptionTrie<Int>(cacheLimit: 8)
        trie.insert(try f("t.*"), 1)
        for i in 0..<100 { #expect(trie.match("t.\(i)") == [1]) }
        let m10 = trie.match("u.1")
        #expect(m10.isEmpty)
    }

    @Test("the cache holds at most its budget of subscribers over all topics; a wider list is not kept; answers stay right")
    func cacheBudget() throws {
        var trie = SubscriptionTrie<Int>(cacheLimit: 4096, cacheBudget: 1_000)
        for s in 0..<300 { trie.insert(try f("w.>"), s) }
        for i in 0..<50 {
            #expect(trie.match("w.\(i)").count == 300)
            #expect(trie.cachedSubscribers <= 1_000, "after \(i + 1) topics: \(trie.cachedSubscribers)")
        }
        // Removing a wildcard recounts what stays cached.
        #expect(trie.remove(try f("w.>"), 0))
        #expect(trie.match("w.1").count == 299)
        #expect(trie.cachedSubscribers <= 1_000)
        // A literal change drops its topic's list from the count.
        trie.insert(try f("w.1"), 1_000)
        #expect(trie.cachedSubscribers <= 1_000)
        #expect(Set(trie.match("w.1")) == Set(1..<300).union([1_000]))
        // A list wider than the whole budget is answered and not cached.
        for s in 300..<1_200 { trie.insert(try f("w.>"), s) }
        #expect(trie.match("w.2").count == 1_199)
        #expect(trie.cachedSubscribers <= 1_000)
    }

    /// A wildcard filter can match any cached topic, so a change to one used
    /// to test every cached topic against it (each split into tokens again)
    /// under the router's lock: 4,096 topics per SUB or UNSUB, which a client
    /// could repeat as fast as it writes the frames. Dropping the cache
    /// instead costs nothing per cached topic; publishes refill it.
    @Test("a wildcard insert or removal drops the cache instead of testing each cached topic; answers stay right")
    func wildcardChangeDropsTheCache() throws {
        var trie = SubscriptionTrie<Int>()
        trie.insert(try f("w.>"), 0)
        for i in 0..<4_096 { #expect(trie.match("w.\(i)") == [0]) }
        #expect(trie.cachedSubscribers == 4_096)
        // Unrelated to every cached topic, and yet the cache is not walked.
        trie.insert(try f("a.*"), 1)
        #expect(trie.cachedSubscribers == 0)
        #expect(trie.match("a.b") == [1])
        #expect(trie.match("w.7") == [0])
        #expect(trie.cachedSubscribers == 2)
        #expect(trie.remove(try f("a.*"), 1))
        #expect(trie.cachedSubscribers == 0)
        #expect(trie.match("a.b").isEmpty)
        // A literal change still drops only its own topic.
        #expect(trie.match("w.7") == [0])
        trie.insert(try f("w.8"), 2)
        #expect(trie.cachedSubscribers == 1)
        #expect(Set(trie.match("w.8")) == [0, 2])
    }

    @Test("randomised: trie agrees with brute-force matching")
    func randomised() throws {
        var rng = SeededRandom(seed: 42)
        let tokens = ["a", "b", "c"]
        func randomFilter() -> String {
            let n = Int(rng.next() % 3) + 1
            var parts: [String] = []
            for i in 0..<n {
                let r = rng.next() % 5
                if r == 0 { parts.append("*") } else if r == 1 && i == n - 1 { parts.append(">") } else { parts.append(tokens[Int(rng.next() % 3)]) }
            }
            return parts.joined(separator: ".")
        }
        var trie = SubscriptionTrie<Int>(cacheLimit: 16)
        var live: [Int: TopicFilter] = [:]
        for step in 0..<2_000 {
            // Sorted: a Dictionary's order changes from run to run (per-process hash
            // seed), and the seed must replay the same steps.
            if rng.next() % 3 == 0, let victim = live.keys.sorted().randomElement(using: &rng), let filter = live[victim] {
                let r1 = trie.remove(filter, victim)
                #expect(r1)
                live[victim] = nil
            } else {
                let filter = try f(randomFilter())
                trie.insert(filter, step)
                live[step] = filter
            }
            let topic = (0..<(Int(rng.next() % 3) + 1)).map { _ in tokens[Int(rng.next() % 3)] }.joined(separator: ".")
            let concrete = try Topic(topic)
            let expected = Set(live.filter { $0.value.matches(concrete) }.keys)
            let m11 = trie.match(topic)
            #expect(Set(m11) == expected)
        }
    }
}
