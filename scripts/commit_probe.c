/* commit_probe: what the disk alone charges for one small LMDB commit, paced
 * at a fixed rate, without relayd. Not shipped; see docs/performance-history.md
 * ("The floor the disk allows").
 *
 * One commit, as LMDB does it with durability on (no MDB_NOSYNC):
 *   1. pwrite P dirty 4 KiB pages of data.mdb (after the meta pages),
 *   2. fdatasync(data fd),
 *   3. the meta page: `meta` mode
 *        odsync   pwrite 120 B at page 0/1 (alternating) through an O_DSYNC fd (LMDB)
 *        sync     pwrite 120 B through the plain fd, then fdatasync again
 *        none     no meta write (one flush only: the floor of any durable commit)
 * The data pages either append at the end of a growing file (`grow`) or land
 * inside a file zeroed ahead (`prealloc`, what relayd does since wave 4).
 * Commits are paced: commit i starts at t0 + i/rate (or at once when late),
 * and its latency is commit start -> meta durable. The per-commit count of
 * write requests the block device completed (from /proc/diskstats; the
 * device is shared, so it includes other writers) is averaged.
 *
 * SCATTER=1 (prealloc only): each page lands at a random page of the zeroed
 * area instead of after the previous one, as LMDB's copy-on-write puts a
 * commit's pages wherever its free list has room.
 *
 * MSGRATE=R: a model of relayd's store writer with no CPU cost at all.
 * Messages arrive every 1/R s; the writer, when idle, waits for the next one;
 * each commit takes every message that has arrived when it starts, so a
 * message waits for the commit in progress and then its own. COUNT is then
 * the number of messages and RATE is ignored; the figures are each message's
 * arrival -> end of its commit (what publish->ack would be with a free broker).
 *
 * usage: [SPIN=1] [FSTAT=1] [SCATTER=1] [MSGRATE=R] commit_probe DIR RATE COUNT PAGES odsync|sync|none grow|prealloc [DEVICE]
 * build: cc -O2 -o /tmp/commit_probe scripts/commit_probe.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static unsigned long long disk_writes(const char *dev) {
    FILE *f = fopen("/proc/diskstats", "r");
    if (!f) return 0;
    char line[512], name[64];
    unsigned long long v[11] = {0};
    unsigned maj, min;
    unsigned long long result = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "%u %u %63s %llu %llu %llu %llu %llu", &maj, &min, name, &v[0], &v[1], &v[2], &v[3], &v[4]) == 8
            && strcmp(name, dev) == 0) { result = v[4]; break; }
    }
    fclose(f);
    return result;
}

static char page_bytes[4096];

static void die(const char *what) { perror(what); exit(2); }

static void full_pwrite(int fd, const void *buf, size_t n, off_t off) {
    const char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0) { if (errno == EINTR) continue; die("pwrite"); }
        p += w; n -= (size_t)w; off += w;
    }
}

/* One commit as LMDB does it: the pages, fdatasync, then the meta page. */
struct probe {
    int fd, mfd, pages, scatter;
    const char *meta;
    off_t next, area;   /* next page offset (sequential); size of the zeroed area (scatter) */
};

static void commit_once(struct probe *pr, int i, double *flush_us) {
    double c0 = now_us();
    for (int p = 0; p < pr->pages; p++) {
        off_t at = pr->next;
        if (pr->scatter) at = 8192 + (off_t)(random() % (long)(pr->area / 4096)) * 4096;
        else pr->next += 4096;
        full_pwrite(pr->fd, page_bytes, 4096, at);
    }
    if (pr->pages > 0 && fdatasync(pr->fd) != 0) die("fdatasync data");
    *flush_us = now_us() - c0;
    off_t moff = (i & 1) ? 4096 : 0;
    if (strcmp(pr->meta, "odsync") == 0) full_pwrite(pr->mfd, page_bytes, 120, moff + 16);
    else if (strcmp(pr->meta, "sync") == 0) { full_pwrite(pr->fd, page_bytes, 120, moff + 16); if (fdatasync(pr->fd) != 0) die("fdatasync meta"); }
}

static void sleep_until(double due) {
    double t = now_us();
    if (t >= due) return;
    struct timespec ts = {(time_t)((due - t) / 1e6), (long)(((long long)(due - t) % 1000000) * 1000)};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s DIR RATE COUNT PAGES odsync|sync|none grow|prealloc [DEVICE]\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    double rate = atof(argv[2]);
    int count = atoi(argv[3]), pages = atoi(argv[4]);
    const char *meta = argv[5], *layout = argv[6], *dev = argc > 7 ? argv[7] : "vda";
    int grow = strcmp(layout, "grow") == 0;
    /* SPIN=1: wait for the due time in a busy loop instead of sleeping (is the slow
     * flush at low rates the idle vCPU's wake-up rather than the disk?). */
    int spin = getenv("SPIN") && atoi(getenv("SPIN")) == 1;
    /* FSTAT=1: fstat the data file after every commit, as relayd's writer did
     * (multigrain timestamps: a queried mtime makes the next write stamp a new
     * fine-grained one, which dirties the inode for the next flush). */
    int do_fstat = getenv("FSTAT") && atoi(getenv("FSTAT")) == 1;
    if (rate <= 0 || count <= 0 || pages < 0) { fprintf(stderr, "bad numbers\n"); return 2; }

    char path[4096];
    snprintf(path, sizeof path, "%s/commit-probe-%d.mdb", dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) die("open data");
    int mfd = open(path, O_RDWR | O_DSYNC);
    if (mfd < 0) die("open meta O_DSYNC");

    static char page[4096];
    memset(page, 0xab, sizeof page);
    /* Two meta pages, then the data area. */
    full_pwrite(fd, page, 4096, 0);
    full_pwrite(fd, page, 4096, 4096);
    off_t next = 8192;
    if (!grow) {
        /* Zero enough room for every commit ahead of time, and flush it. */
        off_t room = (off_t)count * pages * 4096 + (1 << 20);
        static char zeros[1 << 16];
        for (off_t o = next; o < next + room; o += sizeof zeros) full_pwrite(fd, zeros, sizeof zeros, o);
        if (fsync(fd) != 0) die("fsync");
    } else if (fsync(fd) != 0) die("fsync");

    memset(page_bytes, 0xab, sizeof page_bytes);
    int scatter = getenv("SCATTER") && atoi(getenv("SCATTER")) == 1 && !grow;
    double msgrate = getenv("MSGRATE") ? atof(getenv("MSGRATE")) : 0;
    if (msgrate > 0) {
        /* The writer model (see the header): COUNT messages at MSGRATE. */
        struct probe pr = {fd, mfd, pages, scatter, meta, next, (off_t)count * pages * 4096};
        double *mlat = malloc(sizeof(double) * count), *clat = malloc(sizeof(double) * count);
        if (!mlat || !clat) die("malloc");
        double start = now_us(), flush;
        int done = 0, commits = 0;
        while (done < count) {
            double t = now_us();
            int arrived = (int)((t - start) * msgrate / 1e6) + 1;
            if (arrived > count) arrived = count;
            if (arrived <= done) { sleep_until(start + done * 1e6 / msgrate); continue; }
            double c0 = now_us();
            commit_once(&pr, commits, &flush);
            double end = now_us();
            if (!grow && !scatter && pr.next > pr.area) pr.next = 8192;
            clat[commits++] = end - c0;
            for (int j = done; j < arrived; j++) mlat[j] = end - (start + j * 1e6 / msgrate);
            done = arrived;
        }
        double elapsed = now_us() - start;
        qsort(mlat, count, sizeof(double), cmp);
        qsort(clat, commits, sizeof(double), cmp);
        printf("model meta=%s pages=%d scatter=%d msgrate=%.0f/s messages=%d commits=%d (%.1f msg/commit, %.0f commits/s, writer busy %.0f%%)\n",
               meta, pages, scatter, msgrate, count, commits, (double)count / commits, commits / (elapsed / 1e6),
               100.0 * ({ double b = 0; for (int k = 0; k < commits; k++) b += clat[k]; b; }) / elapsed);
        printf("  message us: p50 %.0f p90 %.0f p99 %.0f p99.9 %.0f max %.0f | commit us: p50 %.0f p99 %.0f max %.0f\n",
               mlat[(int)((count - 1) * 0.5)], mlat[(int)((count - 1) * 0.9)], mlat[(int)((count - 1) * 0.99)],
               mlat[(int)((count - 1) * 0.999)], mlat[count - 1],
               clat[(int)((commits - 1) * 0.5)], clat[(int)((commits - 1) * 0.99)], clat[commits - 1]);
        unlink(path);
        return 0;
    }
    double *lat = malloc(sizeof(double) * count), *lat_flush = malloc(sizeof(double) * count);
    if (!lat || !lat_flush) die("malloc");
    struct probe paced = {fd, mfd, pages, scatter, meta, next, (off_t)count * pages * 4096};
    unsigned long long w0 = disk_writes(dev);
    double start = now_us(), late = 0;
    for (int i = 0; i < count; i++) {
        double due = start + i * 1e6 / rate;
        double t = now_us();
        if (t < due && spin) {
            while (now_us() < due) {}
        } else if (t < due) {
            struct timespec ts = {(time_t)((due - t) / 1e6), (long)(((long long)(due - t) % 1000000) * 1000)};
            nanosleep(&ts, NULL);
        } else late += 1;
        double c0 = now_us(), flush;
        commit_once(&paced, i, &flush);
        double c2 = now_us();
        if (do_fstat) { struct stat st; if (fstat(fd, &st) != 0) die("fstat"); }
        lat[i] = c2 - c0;
        lat_flush[i] = flush;
        if (!grow && !scatter && paced.next > paced.area) paced.next = 8192;
    }
    double elapsed = now_us() - start;
    unsigned long long w1 = disk_writes(dev);
    qsort(lat, count, sizeof(double), cmp);
    qsort(lat_flush, count, sizeof(double), cmp);
#define P(a, q) a[(int)((count - 1) * (q))]
    printf("fstat=%d scatter=%d meta=%s layout=%s pages=%d rate=%.0f/s count=%d achieved=%.0f/s late=%.0f dev_writes/commit=%.2f\n",
           do_fstat, scatter, meta, layout, pages, rate, count, count / (elapsed / 1e6), late, (double)(w1 - w0) / count);
    printf("  commit us: p50 %.0f p90 %.0f p99 %.0f p99.9 %.0f max %.0f | data flush us: p50 %.0f p99 %.0f\n",
           P(lat, 0.5), P(lat, 0.9), P(lat, 0.99), P(lat, 0.999), lat[count - 1], P(lat_flush, 0.5), P(lat_flush, 0.99));
    unlink(path);
    return 0;
}
