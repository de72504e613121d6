internal import CLMDB

#if canImport(Glibc)
import Glibc
#endif

/// How to open an LMDB environment.
struct EnvironmentOptions: Sendable {
    /// Map size on first open (LMDB keeps a larger stored size if there is one).
    var initialMapSize: Int = 64 << 20
    /// The map never grows past this; beyond it writes fail with `storageFull`.
    var maxMapSize: Int = 16 << 30
    /// Growth adds min(current size, growthStep): doubling while small, linear when large.
    var growthStep: Int = 1 << 30
    var maxDatabases: Int = 16
    var maxReaders: Int = 126
    /// `MDB_NOSYNC`: commits do not fsync; call ``Environment/sync()`` periodically.
    var noSync: Bool = false
    /// Bytes of the newest flushed data that stay in the page cache; written
    /// pages further back are handed back to the kernel after their flush
    /// (``Environment/releaseFlushedPages(usedEnd:fd:)``). nil: keep them all.
    var pageCacheTail: Int? = nil
}

/// A named database handle. Valid for the environment's lifetime (LMDB dbi
/// handles are process-wide once their creating transaction commits).
struct Database: Sendable {
    let dbi: UInt32
    let name: String
}

/// Flags for opening a named database, without exposing C constants.
struct DatabaseFlags: OptionSet, Sendable {
    let rawValue: UInt32
    /// Several sorted values per key (`MDB_DUPSORT`).
    static let duplicateSort = DatabaseFlags(rawValue: UInt32(MDB_DUPSORT))
    /// With duplicateSort: all values have the same size (`MDB_DUPFIXED`), stored packed.
    static let duplicateFixed = DatabaseFlags(rawValue: UInt32(MDB_DUPFIXED))
}

/// An open LMDB environment (one data directory). Thread-safe: transactions
/// are opened with `MDB_NOTLS`, so a read transaction may run on any thread,
/// and LMDB serialises write transactions itself.
///
/// Transactions exist only inside ``read(_:)`` and ``write(_:)`` closures, so
/// no transaction (and no pointer into the map) can outlive its scope or be
/// held across an `await`. Do not open a transaction inside another one.
final class Environment: @unchecked Sendable {
    let context: LMDBContext
    let options: EnvironmentOptions
    /// MDB_env*; valid from init until ``close()``.
    private let env: OpaquePointer
    private let resizeLock = ResizeLock()
    /// Current map size; written only under the exclusive resize lock.
    private var currentMapSize: Int
    private var isClosed = false

    init(path: String, options: EnvironmentOptions) throws(StoreError) {
        guard options.initialMapSize > 0, options.maxMapSize >= options.initialMapSize else {
            throw .invalidArgument("map sizes must satisfy 0 < initial (\(options.initialMapSize)) <= maximum (\(options.maxMapSize))")
        }
        let context = LMDBContext(path: path, maxMapSize: options.maxMapSize, maxReaders: options.maxReaders)
        var envPointer: OpaquePointer?
        try context.check(mdb_env_create(&envPointer), "mdb_env_create")
        guard let env = envPointer else { throw .lmdb(operation: "mdb_env_create", code: -1, message: "no environment returned") }
        do {
            try context.check(mdb_env_set_mapsize(env, options.initialMapSize), "mdb_env_set_mapsize")
            try context.check(mdb_env_set_maxdbs(env, MDB_dbi(options.maxDatabases)), "mdb_env_set_maxdbs")
            try context.check(mdb_env_set_maxreaders(env, UInt32(options.maxReaders)), "mdb_env_set_maxreaders")
            // NOTLS: reader slots belong to transactions, not threads, so any thread
            // (NIO event loops, the writer) can run short read transactions.
            var flags = UInt32(MDB_NOTLS)
            if options.noSync { flags |= UInt32(MDB_NOSYNC) }
            // 0600: data.mdb and lock.mdb are for relayd's user only (issue 14 item 15).
            try context.check(mdb_env_open(env, path, flags, 0o600), "mdb_env_open(\(path))")
        } catch {
            mdb_env_close(env)
            throw error
        }
        self.env = env
        self.context = context
        self.options = options
        // A store created earlier with a bigger map keeps its size: ask LMDB.
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        self.currentMapSize = info.me_mapsize
    }

    deinit { close() }

    /// Closes the environment. Callers guarantee no transaction is running
    /// (the store stops its writer first); taking the exclusive lock waits for
    /// any straggling reader.
    func close() {
        resizeLock.lockExclusive()
        defer { resizeLock.unlockExclusive() }
        guard !isClosed else { return }
        isClosed = true
        mdb_env_close(env)
    }

    /// Whether commits skip the flush (`MDB_NOSYNC`, `MDB_NOMETASYNC` or
    /// `MDB_MAPASYNC`), as LMDB reports the flags the environment runs with:
    /// tests check that `fsync` durability does not (make mutants, fsync).
    func commitsSkipSync() throws(StoreError) -> Bool {
        resizeLock.lockShared()
        defer { resizeLock.unlockShared() }
        if isClosed { throw .closed }
        var flags: UInt32 = 0
        try context.check(mdb_env_get_flags(env, &flags), "mdb_env_get_flags")
        return flags & UInt32(MDB_NOSYNC | MDB_NOMETASYNC | MDB_MAPASYNC) != 0
    }

    /// The current map size in bytes.
    var mapSize: Int {
        resizeLock.lockShared()
        defer { resizeLock.unlockShared() }
        return currentMapSize
    }

    /// Page size and pages in use by the last committed transaction.
    func usage() -> (pageSize: Int, pagesUsed: Int, mapSize: Int) {
        resizeLock.lockShared()
        defer { resizeLock.unlockShared() }
        if isClosed { return (0, 0, 0) }
        var info = MDB_envinfo()
        var stat = MDB_stat()
        mdb_env_info(env, &info)
        mdb_env_stat(env, &stat)
        return (Int(stat.ms_psize), info.me_last_pgno + 1, info.me_mapsize)
    }

    /// Opens (creating if needed) a named database.
    func openDatabase(_ name: String, flags: DatabaseFlags = []) throws(StoreError) -> Database {
        try write { (txn) throws(StoreError) -> Database in
            var dbi: MDB_dbi = 0
            try context.check(mdb_dbi_open(txn.pointer, name, flags.rawValue | UInt32(MDB_CREATE), &dbi),
                              "mdb_dbi_open(\(name))")
            return Database(dbi: dbi, name: name)
        }
    }

    /// Frees reader slots left by processes that died inside a read
    /// transaction (kill -9 of a tool reading the store). Such slots pin old
    /// pages, so the freelist could never be reused and the file would grow.
    @discardableResult
    func clearStaleReaders() throws(StoreError) -> Int {
        resizeLock.lockShared()
        defer { resizeLock.unlockShared() }
        if isClosed { throw .closed }
        var dead: Int32 = 0
        try context.check(mdb_reader_check(env, &dead), "mdb_reader_check")
        return Int(dead)
    }

    /// Writes a compacted copy of the environment (`MDB_CP_COMPACT`: free
    /// pages left out, pages renumbered) to `fd`, from one read snapshot, so
    /// it is consistent while writes go on. Blocks until the copy is written;
    /// `fd` may be a pipe (LMDB writes it sequentially, as `mdb_copy -c` to
    /// stdout does). Holds the resize lock shared for the whole copy: LMDB
    /// forbids `mdb_env_set_mapsize` while a transaction of this process is
    /// open, so a map growth (rare) waits for the copy to end.
    func copyCompacted(to fd: Int32) throws(StoreError) {
        resizeLock.lockShared()
        defer { resizeLock.unlockShared() }
        if isClosed { throw .closed }
        // `env` is valid until close(), which takes the lock exclusively;
        // `fd` is the caller's and stays open until this returns.
        try context.check(mdb_env_copyfd2(env, fd, UInt32(MDB_CP_COMPACT)), "mdb_env_copyfd2(compact)")
    }

    /// Flushes buffers to disk (for `MDB_NOSYNC` environments).
    func sync() throws(StoreError) {
        resizeLock.lockShared()
        defer { resizeLock.unlockShared() }
        if isClosed { throw .closed }
        // Pages committed before the sync are clean after it.
        var fd: Int32 = -1
        try context.check(mdb_env_get_fd(env, &fd), "mdb_env_get_fd")
        let usedEnd = usedEndLocked()
        try context.check(mdb_env_sync(env, 1), "mdb_env_sync")
        releaseFlushedPages(usedEnd: usedEnd, fd: fd)
    }

    /// The end of the last page LMDB uses; the caller holds the resize lock.
    private func usedEndLocked() -> Int {
        var info = MDB_envinfo()
        var dbStat = MDB_stat()
        mdb_env_info(env, &info)
        mdb_env_stat(env, &dbStat)
        return (info.me_last_pgno + 1) * Int(dbStat.ms_psize)
    }

    // MARK: Transactions

    /// Runs `body` in a read-only snapshot; the transaction is aborted when
    /// `body` returns, so nothing read through it may escape uncopied.
    @discardableResult
    func read<R>(_ body: (borrowing ReadTransaction) throws(StoreError) -> R) throws(StoreError) -> R {
        while true {
            resizeLock.lockShared()
            // `isClosed` changes only under the exclusive lock, so reading it here is safe.
            if isClosed { resizeLock.unlockShared(); throw .closed }
            var txnPointer: OpaquePointer?
            let rc = mdb_txn_begin(env, nil, UInt32(MDB_RDONLY), &txnPointer)
            if rc == MDB_MAP_RESIZED {
                // Another process grew the map: adopt its size, then retry.
                resizeLock.unlockShared()
                try adoptGrownMap()
                continue
            }
            guard rc == 0, let txnPointer else {
                resizeLock.unlockShared()
                try context.check(rc == 0 ? MDB_PANIC : rc, "mdb_txn_begin(read)")
                continue
            }
            defer {
                // Abort ends the snapshot; every view handed to `body` dies here.
                mdb_txn_abort(txnPointer)
                resizeLock.unlockShared()
            }
            let txn = ReadTransaction(pointer: txnPointer, context: context)
            return try body(txn)
        }
    }

    /// Runs `body` in a write transaction and commits when it returns; a
    /// throw aborts. When the map is full the transaction is aborted, the map
    /// grown (up to the maximum) and `body` run again from the start, so
    /// `body` must be safe to repeat (it must not have effects outside the
    /// transaction). At the maximum it throws `storageFull`. (The store
    /// holds appends below its own limit before they get here; see
    /// `StoreWriter.hasRoom`.)
    // Swift 6.3's generic specializer crashes on this signature (a borrowed
    // ~Copyable closure argument); opting out of specialization avoids it.
    // The transaction-begin loop is written out here and in `read`/`writeOnce`
    // rather than shared through a helper: with a shared `begin` the release
    // build's specializer crashed on `MessageStore.read(topic:...)` ("Cannot
    // initialize a nonCopyable type with a guaranteed value").
    @discardableResult @_semantics("optimize.sil.specialize.generic.never")
    func write<R>(_ body: (borrowing WriteTransaction) throws(StoreError) -> R) throws(StoreError) -> R {
        while true {
            do {
                return try writeOnce(body)
            } catch {
                if case .storageFull = error {
                    if try grow() { continue }
                    throw .storageFull(maxMapSize: options.maxMapSize)
                }
                throw error
            }
        }
    }

    @_semantics("optimize.sil.specialize.generic.never")
    private func writeOnce<R>(_ body: (borrowing WriteTransaction) throws(StoreError) -> R) throws(StoreError) -> R {
        while true {
            resizeLock.lockShared()
            if isClosed { resizeLock.unlockShared(); throw .closed }
            var txnPointer: OpaquePointer?
            let rc = mdb_txn_begin(env, nil, 0, &txnPointer)
            if rc == MDB_MAP_RESIZED {
                resizeLock.unlockShared()
                try adoptGrownMap()
                continue
            }
            guard rc == 0, let txnPointer else {
                resizeLock.unlockShared()
                try context.check(rc == 0 ? MDB_PANIC : rc, "mdb_txn_begin(write)")
                continue
            }
            defer { resizeLock.unlockShared() }
            let result: R
            do {
                result = try body(WriteTransaction(pointer: txnPointer, context: context))
            } catch {
                // Abort frees the transaction and its dirty pages; no view survives.
                mdb_txn_abort(txnPointer)
                throw error
            }
            // Commit frees the transaction handle whether or not it succeeds.
            try context.check(mdb_txn_commit(txnPointer), "mdb_txn_commit")
            return result
        }
    }

    /// Grows the map by one step. Returns false when already at the maximum.
    func grow(upTo limit: Int? = nil) throws(StoreError) -> Bool {
        resizeLock.lockExclusive()
        defer { resizeLock.unlockExclusive() }
        if isClosed { throw .closed }
        let maximum = min(limit ?? options.maxMapSize, options.maxMapSize)
        guard currentMapSize < maximum else { return false }
        let target = min(maximum, currentMapSize + min(currentMapSize, options.growthStep))
        try context.check(mdb_env_set_mapsize(env, target), "mdb_env_set_mapsize(\(target))")
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        currentMapSize = info.me_mapsize
        return true
    }

    private func adoptGrownMap() throws(StoreError) {
        resizeLock.lockExclusive()
        defer { resizeLock.unlockExclusive() }
        if isClosed { throw .closed }
        // Size 0 means "take the size another process recorded".
        try context.check(mdb_env_set_mapsize(env, 0), "mdb_env_set_mapsize(0)")
        var info = MDB_envinfo()
        mdb_env_info(env, &info)
        currentMapSize = info.me_mapsize
    }

    // MARK: Preallocation

    /// Keeps zeroed, allocated space ahead of the last page LMDB uses, so a
    /// commit overwrites blocks the data file already has instead of growing
    /// it. A commit that grows the file makes its flush also write the inode
    /// (the new size and blocks), one more serial disk write per commit on
    /// ext4 without a journal (a journal commit with one); commits that
    /// follow each other within one timestamp tick then skip it
    /// (docs/performance-history.md, "The tail at low load").
    ///
    /// When less than `lowWater` bytes are left between LMDB's last page and
    /// the end of the file, appends zeros at the end until `lowWater + chunk`
    /// bytes are left (capped at the map size). The next commit's flush writes them and their
    /// allocation once; the commits after it overwrite allocated blocks.
    ///
    /// The zeros are written inside an (empty) write transaction: LMDB writes
    /// pages only when a write transaction commits, and one at a time, so
    /// nothing else writes past the old end of the file while this runs, and
    /// the zeros land beyond every page LMDB has written (the empty
    /// transaction's commit writes nothing). LMDB sizes the
    /// database from its meta page, never from the file's size, so the
    /// zeroed tail is invisible to it (and to a copy or a reopen).
    /// Returns the bytes appended (0 when there was room); throws the
    /// `pwrite` error (e.g. a full disk), after which the file may have grown
    /// by part of the chunk, which is harmless. Call it between commits (the
    /// store's writer does, after each append commit).
    /// `sizes` gets LMDB's used end and returns the low-water mark and the
    /// chunk (the writer sizes them from the last commit's growth).
    func keepZeroedRoom(_ sizes: (_ usedEnd: Int) -> RoomPlan) throws(StoreError) -> Int {
        // A cheap look first; the zeros are written inside a write transaction
        // (below), which holds LMDB's writer lock, so no other writer (in this
        // process or another) writes pages past the old end meanwhile.
        let look = try zeroedRoom(fresh: false)
        // Every commit before this call is flushed (fsync mode), so its pages are clean.
        if !options.noSync { releaseFlushedPages(usedEnd: look.usedEnd, fd: look.fd) }
        let plan = sizes(look.usedEnd)
        let (lowWater, chunk) = (plan.lowWater, plan.chunk)
        guard look.room < lowWater else { return 0 }
        return try write { (_: borrowing WriteTransaction) throws(StoreError) -> Int in
            let (room, end, usedEnd, fd) = try zeroedRoom(locked: true, fresh: true)
            guard room < lowWater else { return 0 }
            // Up to `lowWater + chunk` of room, so the next top-up is at least a chunk away.
            let start = max(end, usedEnd)
            let target = min(usedEnd + lowWater + chunk, currentMapSize)
            guard target > start else { return 0 }
            var offset = start
            if plan.allocateOnly {
                // posix_fallocate returns the error rather than setting errno.
                let code = posix_fallocate(fd, off_t(start), off_t(target - start))
                guard code == 0 else { throw Self.systemError(code, "posix_fallocate(data.mdb, room ahead of the last page)") }
                knownFileEnd.withLock { $0 = max($0 ?? 0, target) }
                preallocated.withLock { $0.allocated += target - start }
                return target - start
            }
            while offset < target {
                let count = min(target - offset, Self.zeros.count)
                // The zero buffer is immutable and lives for the process; pwrite only reads `count` bytes of it.
                let written = Self.zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress, count, off_t(offset)) }
                if written < 0 {
                    if errno == EINTR { continue }
                    throw Self.systemError(errno, "pwrite(data.mdb, zeros ahead of the last page)")
                }
                offset += written
            }
            knownFileEnd.withLock { $0 = max($0 ?? 0, offset) }
            preallocated.withLock { $0.zeros += max(0, target - start) }
            return max(0, target - start)
        }
    }

    /// Bytes between LMDB's last used page and the end of the data file.
    /// `locked`: the caller holds the resize lock (inside a transaction).
    /// `fresh`: ask the file system for the file's size; otherwise use the
    /// size last seen (or written) here, and LMDB's used end, which the file
    /// always reaches. Asking on every commit cost a disk write per commit:
    /// with multigrain timestamps (ext4 on Linux 6.13+) a `stat` that reads
    /// the timestamps makes the next write stamp a fresh fine-grained mtime,
    /// which dirties the inode, which the next `fdatasync` then writes
    /// synchronously (docs/performance-history.md, "The tail at low load"). The
    /// remembered size can only be short of the truth (LMDB never shrinks the
    /// file; another process's commit may grow it), so it errs toward a
    /// top-up, and the top-up asks the file system first.
    private func zeroedRoom(locked: Bool = false, fresh: Bool) throws(StoreError) -> (room: Int, end: Int, usedEnd: Int, fd: Int32) {
        if !locked { resizeLock.lockShared() }
        defer { if !locked { resizeLock.unlockShared() } }
        if isClosed { throw .closed }
        var fd: Int32 = -1
        try context.check(mdb_env_get_fd(env, &fd), "mdb_env_get_fd")
        let usedEnd = usedEndLocked()
        let remembered = fresh ? nil : knownFileEnd.withLock { $0 }
        let end: Int
        if let remembered {
            end = max(remembered, usedEnd)
        } else {
            var file = stat()
            guard fstat(fd, &file) == 0 else { throw Self.systemError(errno, "fstat(data.mdb)") }
            end = Int(file.st_size)
            knownFileEnd.withLock { $0 = end }
            fileSizeQueries.withLock { $0 += 1 }
        }
        return (end - usedEnd, end, usedEnd, fd)
    }

    /// How ``keepZeroedRoom(_:)`` tops up the room ahead of LMDB's last page.
    struct RoomPlan {
        /// Top up when less than this is left.
        var lowWater: Int
        /// Then add this much beyond the low-water mark.
        var chunk: Int
        /// Allocate the blocks (`posix_fallocate`) instead of writing zeros.
        /// Zeros cost a page-cache page and a disk write per block, which
        /// the commit then writes again; allocated blocks cost neither but
        /// are unwritten extents, which each commit's flush must convert
        /// (one more metadata write): worth it only for commits of megabytes.
        var allocateOnly: Bool
    }

    // MARK: Page cache

    /// Hands the clean page-cache pages of the data file below `usedEnd -
    /// pageCacheTail` back to the kernel (`POSIX_FADV_DONTNEED`), once per
    /// range. Call only when every commit up to `usedEnd` has been flushed:
    /// the kernel skips dirty pages and pages mapped into a reader, so this
    /// never loses data and never unmaps what LMDB is reading; a later read
    /// of a dropped page comes from the disk.
    func releaseFlushedPages(usedEnd: Int, fd: Int32) {
        guard let tail = options.pageCacheTail else { return }
        // Whole pages (LMDB's are the system's, 4 KiB here); the kernel rounds inward anyway.
        let pageSize = 4096
        let end = (max(0, usedEnd - tail) / pageSize) * pageSize
        let start = releasedUpTo.withLock { (released) -> Int? in
            // Release in steps of at least 1 MiB: one call per commit is
            // cheap, but small commits need not make one each.
            guard end >= released + (1 << 20) else { return nil }
            defer { released = end }
            return released
        }
        guard let start else { return }
        // The kernel skips pages it cannot drop yet; ask again for the last
        // steps' range, so those get another chance (a dropped range costs little).
        let from = max(0, start - Self.releaseOverlap)
        _ = posix_fadvise(fd, off_t(from), off_t(end - from), POSIX_FADV_DONTNEED)
    }

    /// How far back each release asks again (pages the kernel kept at the
    /// first ask: PageCacheReleaseTests saw 7 of 15 MiB stay without it).
    static let releaseOverlap = 8 << 20
    /// The data file offset below which written pages were released.
    private let releasedUpTo = LockedValue<Int>(0)

    /// The data file's size as last seen by ``keepZeroedRoom(_:)`` (nil: not yet asked).
    private let knownFileEnd = LockedValue<Int?>(nil)
    /// Bytes ``keepZeroedRoom(_:)`` added to the data file, by how; for tests.
    let preallocated = LockedValue<(zeros: Int, allocated: Int)>((0, 0))
    /// How often ``keepZeroedRoom(_:)`` asked the file system for the data
    /// file's size (`fstat`); for tests: it must not be once per commit.
    let fileSizeQueries = LockedValue<Int>(0)

    private static let zeros = [UInt8](repeating: 0, count: 64 << 10)

    private static func systemError(_ code: Int32, _ operation: String) -> StoreError {
        .lmdb(operation: operation, code: code, message: LMDBResult.message(code))
    }
}
