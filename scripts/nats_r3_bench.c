/*
 * nats_r3_bench.c - direct nats.c async publisher to a replicated JetStream
 * stream over mutual TLS: the baseline `make bench-cluster` puts next to
 * `relayctl bench` through one relayd edge (docs/cluster.md, "Benchmark").
 *
 * Publishes N messages of S bytes with js_PublishAsync, at most W in flight
 * (PublishAsync.MaxPending, as the peers' nats_bench.go -w), and records the
 * time from each publish call to its JetStream ack. One JSON line on stdout:
 *   {"tool":"nats_r3_bench","scenario":"direct","n":..,"size":..,"window":..,
 *    "replicas":..,"acked":..,"errors":..,"pub_secs":..,
 *    "acked_msgs_per_sec":..,"publish_ack_p50_us":..,"publish_ack_p99_us":..,"ok":true}
 *
 * With --msg-id 1 every message carries a unique Nats-Msg-Id header, as each
 * message relayd publishes does (its dedup key): JetStream then also tracks
 * each id for the stream's duplicate window, the like-for-like baseline.
 *
 * The stream is created (file storage, R<replicas>) when it does not exist;
 * an existing one (e.g. relayd's) is used as it is, so both sides of the
 * comparison write to the same replicated log.
 *
 * Build: cc -O2 -o nats_r3_bench nats_r3_bench.c $(pkg-config --cflags --libs libnats)
 */
#include <nats/nats.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int64_t *sent_ns;   /* publish time of message i (index in the payload) */
static int64_t *lat_ns;    /* publish->ack of the i-th ack received */
static volatile int64_t acked, errors;
static int64_t total;

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Called by nats.c on its own thread for every ack or error; the message is
 * the one published, whose first 8 bytes carry its index. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    (void)js; (void)closure;
    int64_t index = -1;
    if (natsMsg_GetDataLength(msg) >= 8) memcpy(&index, natsMsg_GetData(msg), 8);
    if (pae != NULL || pa == NULL || index < 0 || index >= total) {
        __atomic_add_fetch(&errors, 1, __ATOMIC_RELAXED);
        if (pae != NULL && errors < 5)
            fprintf(stderr, "nats_r3_bench: publish error %d: %s\n", (int)pae->ErrCode,
                    pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
    } else {
        int64_t slot = __atomic_fetch_add(&acked, 1, __ATOMIC_RELAXED);
        lat_ns[slot] = now_ns() - sent_ns[index];
    }
    natsMsg_Destroy(msg);
}

static int cmp64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void die(const char *what, natsStatus s) {
    fprintf(stderr, "nats_r3_bench: %s: %s\n", what, natsStatus_GetText(s));
    nats_PrintLastErrorStack(stderr);
    exit(2);
}

static void usage(void) {
    fprintf(stderr,
            "usage: nats_r3_bench --url tls://127.0.0.1:4222[,tls://...] --ca CA --cert CERT --key KEY\n"
            "                     [--stream RELAY_BENCH] [--subject relay.bench.direct] [--n 20000]\n"
            "                     [--size 128] [--window 1000] [--replicas 3] [--timeout 60] [--msg-id 0|1]\n"
            "                     [--id-length L (>= 22)]\n");
    exit(64);
}

int main(int argc, char **argv) {
    const char *url = NULL, *ca = NULL, *cert = NULL, *key = NULL;
    const char *stream = "RELAY_BENCH", *subject = "relay.bench.direct";
    long n = 20000, size = 128, window = 1000, replicas = 3, timeout_s = 60, msg_id = 0, id_length = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--url")) url = v;
        else if (!strcmp(k, "--ca")) ca = v;
        else if (!strcmp(k, "--cert")) cert = v;
        else if (!strcmp(k, "--key")) key = v;
        else if (!strcmp(k, "--stream")) stream = v;
        else if (!strcmp(k, "--subject")) subject = v;
        else if (!strcmp(k, "--n")) n = atol(v);
        else if (!strcmp(k, "--size")) size = atol(v);
        else if (!strcmp(k, "--window")) window = atol(v);
        else if (!strcmp(k, "--replicas")) replicas = atol(v);
        else if (!strcmp(k, "--timeout")) timeout_s = atol(v);
        else if (!strcmp(k, "--msg-id")) msg_id = atol(v);
        else if (!strcmp(k, "--id-length")) id_length = atol(v);
        else usage();
    }
    if (argc % 2 == 0 || !url || !ca || !cert || !key || n <= 0 || size < 8 || window <= 0) usage();
    total = n;

    natsOptions *opts = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = natsOptions_Create(&opts);
    /* A comma-separated list goes through SetServers: nats.c 3.4.1's SetURL
     * with several TLS URLs answered "No server available" here. */
    const char *servers[16];
    int count = 0;
    char *list = strdup(url);
    for (char *save = NULL, *u = strtok_r(list, ",", &save); u && count < 16; u = strtok_r(NULL, ",", &save))
        servers[count++] = u;
    if (s == NATS_OK) s = natsOptions_SetServers(opts, servers, count);
    if (s == NATS_OK) s = natsOptions_SetSecure(opts, true);
    if (s == NATS_OK) s = natsOptions_LoadCATrustedCertificates(opts, ca);
    if (s == NATS_OK) s = natsOptions_LoadCertificatesChain(opts, cert, key);
    if (s != NATS_OK) die("TLS options", s);
    if ((s = natsConnection_Connect(&nc, opts)) != NATS_OK) die("connect", s);

    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = window;
    jo.PublishAsync.AckHandler = on_ack;
    if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK) die("JetStream context", s);

    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    s = js_GetStreamInfo(&si, js, stream, NULL, &jerr);
    if (s == NATS_NOT_FOUND) {
        jsStreamConfig sc;
        jsStreamConfig_Init(&sc);
        sc.Name = stream;
        const char *subjects[1] = {subject};
        sc.Subjects = subjects;
        sc.SubjectsLen = 1;
        sc.Storage = js_FileStorage;
        sc.Replicas = replicas;
        s = js_AddStream(&si, js, &sc, NULL, &jerr);
    }
    if (s != NATS_OK) die("stream info / create", s);
    jsStreamInfo_Destroy(si);

    sent_ns = calloc((size_t)n, sizeof(int64_t));
    lat_ns = calloc((size_t)n, sizeof(int64_t));
    char *payload = calloc(1, (size_t)size);
    if (!sent_ns || !lat_ns || !payload) { fprintf(stderr, "nats_r3_bench: out of memory\n"); return 2; }

    /* Ids unique across runs into the same stream (its duplicate window). */
    char id[256];
    jsPubOptions ido;
    jsPubOptions_Init(&ido);
    long long run = (long long)now_ns();
    int64_t start = now_ns();
    long published = 0;
    for (long i = 0; i < n; i++) {
        int64_t index = i;
        memcpy(payload, &index, 8);
        sent_ns[i] = now_ns();
        /* Blocks (StallWait) while `window` publishes await their ack. */
        if (msg_id) {
            /* --id-length L: a 22-character id (run and index in hex, as
             * long as a 128-bit hash in base64url) padded with leading 'x'
             * to L characters (as long as relayd's, 69 for format 2), still
             * unique; L <= 22 gives the 22-character id itself. */
            int len = id_length > 0
                ? snprintf(id, sizeof(id), "%016llx%06lx", (unsigned long long)run, (unsigned long)i)
                : snprintf(id, sizeof(id), "bench-%lld-%ld", run, i);
            if (id_length > len && id_length < (long)sizeof(id)) {
                memmove(id + (id_length - len), id, (size_t)len + 1);
                memset(id, 'x', (size_t)(id_length - len));
            }
            ido.MsgId = id;  /* copied into the message's headers by the call */
        }
        s = js_PublishAsync(js, subject, payload, (int)size, msg_id ? &ido : NULL);
        if (s == NATS_TIMEOUT) { i--; continue; }   /* stalled: the window is full, try again */
        if (s != NATS_OK) die("publish", s);
        published++;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = timeout_s * 1000;
    s = js_PublishAsyncComplete(js, &po);
    int64_t end = now_ns();
    int timed_out = (s == NATS_TIMEOUT);

    int64_t got = __atomic_load_n(&acked, __ATOMIC_RELAXED);
    qsort(lat_ns, (size_t)got, sizeof(int64_t), cmp64);
    double secs = (double)(end - start) / 1e9;
    double p50 = got ? lat_ns[got / 2] / 1000.0 : 0, p99 = got ? lat_ns[(got * 99) / 100] / 1000.0 : 0;
    printf("{\"tool\":\"nats_r3_bench\",\"scenario\":\"direct\",\"msg_id\":%s,\"n\":%ld,\"size\":%ld,\"window\":%ld,"
           "\"replicas\":%ld,\"published\":%ld,\"acked\":%lld,\"errors\":%lld,\"pub_secs\":%.3f,"
           "\"acked_msgs_per_sec\":%.0f,\"publish_ack_p50_us\":%.0f,\"publish_ack_p99_us\":%.0f,"
           "\"timed_out\":%s,\"ok\":%s}\n",
           msg_id ? "true" : "false", n, size, window, replicas, published, (long long)got, (long long)errors, secs, got / secs, p50, p99,
           timed_out ? "true" : "false", (got == n && errors == 0) ? "true" : "false");

    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(opts);
    free(list);
    nats_Close();
    return (got == n && errors == 0) ? 0 : 1;
}
