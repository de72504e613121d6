#ifndef RELAY_CNATS_SHIM_H
#define RELAY_CNATS_SHIM_H
/* nats.c (Debian's libnats-dev 3.4.1) for RelayJetStream.
 *
 * The helpers below fill nats.c's option structs, whose fields are
 * `const char *`: written in Swift, each such field would need a pointer
 * that outlives the call, which Swift only gives inside nested
 * withCString closures. Here every string argument is the caller's, valid
 * for the duration of the call, and nats.c copies what it keeps (it
 * serialises the structs to JSON requests before returning). Nothing is
 * retained past the call except the objects returned through out-pointers,
 * which the Swift side destroys (see RelayJetStream/NATSBridge.swift). */
#include <nats/nats.h>
#include <string.h>

/* Connects with mutual TLS to `servers` (nats://host:port or tls://),
 * reconnecting forever afterwards. `ca`, `cert`, `key`: PEM file paths. */
static inline natsStatus relay_nats_connect(natsConnection **nc, const char **servers, int serverCount,
                                            const char *ca, const char *cert, const char *key,
                                            const char *name, int64_t timeoutMs, int64_t reconnectWaitMs) {
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK) s = natsOptions_SetServers(opts, servers, serverCount);
    if (s == NATS_OK) s = natsOptions_SetSecure(opts, true);
    if (s == NATS_OK) s = natsOptions_LoadCATrustedCertificates(opts, ca);
    if (s == NATS_OK) s = natsOptions_LoadCertificatesChain(opts, cert, key);
    if (s == NATS_OK) s = natsOptions_SetName(opts, name);
    if (s == NATS_OK) s = natsOptions_SetTimeout(opts, timeoutMs);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, reconnectWaitMs);
    if (s == NATS_OK) s = natsConnection_Connect(nc, opts);
    natsOptions_Destroy(opts);  /* the connection keeps its own copy */
    return s;
}

/* Creates the stream (file storage, subjects `subject`) or updates it to this
 * configuration when it exists. `duplicatesNs` is the dedup window. */
static inline natsStatus relay_js_ensure_stream(jsCtx *js, const char *name, const char *subject, int64_t replicas,
                                                int64_t duplicatesNs, int64_t maxBytes, int64_t waitMs,
                                                jsErrCode *err) {
    jsStreamConfig cfg;
    jsOptions o;
    jsStreamConfig_Init(&cfg);
    jsOptions_Init(&o);
    o.Wait = waitMs;
    const char *subjects[1] = { subject };
    cfg.Name = name;
    cfg.Subjects = subjects;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.Replicas = replicas;
    cfg.Duplicates = duplicatesNs;
    cfg.MaxBytes = maxBytes;
    cfg.Discard = js_DiscardNew;  /* full: refuse appends (storage_full), as LMDB does */
    cfg.AllowDirect = true;
    jsStreamInfo *si = NULL;
    natsStatus s = js_AddStream(&si, js, &cfg, &o, err);
    if (s != NATS_OK && err != NULL && *err == JSStreamNameExistErr) {
        *err = 0;
        s = js_UpdateStream(&si, js, &cfg, &o, err);
    }
    if (si != NULL) jsStreamInfo_Destroy(si);
    return s;
}

/* The message at `sequence`, or when `nextBySubject` is set the first one at
 * or after it whose subject matches that filter (wildcards allowed). */
static inline natsStatus relay_js_direct_get(natsMsg **msg, jsCtx *js, const char *stream, uint64_t sequence,
                                             const char *nextBySubject, int64_t waitMs) {
    jsOptions o;
    jsDirectGetMsgOptions d;
    jsOptions_Init(&o);
    o.Wait = waitMs;
    jsDirectGetMsgOptions_Init(&d);
    d.Sequence = sequence;
    d.NextBySubject = nextBySubject;
    return js_DirectGetMsg(msg, js, stream, &o, &d);
}

/* Stream info; with `subjectsFilter` set, the per-subject counts too. */
static inline natsStatus relay_js_stream_info(jsStreamInfo **si, jsCtx *js, const char *stream,
                                              const char *subjectsFilter, int64_t waitMs, jsErrCode *err) {
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = waitMs;
    o.Stream.Info.SubjectsFilter = subjectsFilter;
    return js_GetStreamInfo(si, js, stream, &o, err);
}

/* How many messages matching `filter` the stream holds from `startSeq` on:
 * an ephemeral consumer starting there reports it as NumPending. The
 * consumer is deleted at once (and expires on its own after 5 s if the
 * delete is lost). */
static inline natsStatus relay_js_count_from(uint64_t *count, jsCtx *js, const char *stream, const char *filter,
                                             uint64_t startSeq, int64_t waitMs) {
    jsOptions o;
    jsConsumerConfig c;
    jsOptions_Init(&o);
    o.Wait = waitMs;
    jsConsumerConfig_Init(&c);
    c.DeliverPolicy = js_DeliverByStartSequence;
    c.OptStartSeq = startSeq;
    c.AckPolicy = js_AckExplicit;  /* a pull consumer needs it; nothing is ever fetched or acked */
    c.FilterSubject = filter;
    c.InactiveThreshold = (int64_t)5 * 1000 * 1000 * 1000;
    c.MemoryStorage = true;
    jsConsumerInfo *ci = NULL;
    jsErrCode err = 0;
    natsStatus s = js_AddConsumer(&ci, js, stream, &c, &o, &err);
    if (s == NATS_OK && ci != NULL) {
        /* nats-server 2.9 was seen to undercount NumPending for a new
         * consumer with a wildcard filter, in the create reply and (more
         * rarely) in the first info after it: read the consumer's info until
         * two answers in a row agree (at most 4 reads), and keep the largest
         * (nothing is ever delivered, so the true count cannot shrink). */
        uint64_t best = ci->NumPending, previous = ci->NumPending;
        for (int attempt = 0; attempt < 4; attempt++) {
            jsConsumerInfo *settled = NULL;
            if (js_GetConsumerInfo(&settled, js, stream, ci->Name, &o, NULL) != NATS_OK || settled == NULL) break;
            uint64_t now = settled->NumPending;
            jsConsumerInfo_Destroy(settled);
            if (now > best) best = now;
            if (now == previous) break;
            previous = now;
        }
        *count = best;
        js_DeleteConsumer(js, stream, ci->Name, &o, NULL);
    }
    if (ci != NULL) jsConsumerInfo_Destroy(ci);
    return s;
}

/* Purges the messages of `subject`, keeping the newest `keep` (when
 * `keep` > 0) or those from `upTo` on (when `upTo` > 0). */
static inline natsStatus relay_js_purge(jsCtx *js, const char *stream, const char *subject, uint64_t keep,
                                        uint64_t upTo, int64_t waitMs, jsErrCode *err) {
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = waitMs;
    o.Stream.Purge.Subject = subject;
    o.Stream.Purge.Keep = keep;
    o.Stream.Purge.Sequence = upTo;
    return js_PurgeStream(js, stream, &o, err);
}

/* Opens the key-value bucket `bucket` (one value per key), creating it when
 * it does not exist. */
static inline natsStatus relay_kv_open(kvStore **kv, jsCtx *js, const char *bucket, int replicas) {
    natsStatus s = js_KeyValue(kv, js, bucket);
    if (s == NATS_NOT_FOUND) {
        kvConfig cfg;
        kvConfig_Init(&cfg);
        cfg.Bucket = bucket;
        cfg.History = 1;
        cfg.Replicas = replicas;
        cfg.StorageType = js_FileStorage;
        s = js_CreateKeyValue(kv, js, &cfg);
    }
    return s;
}

/* The newest value of `key` in the key-value bucket `bucket`, read through
 * the stream leader (the STREAM.MSG.GET API), not through kvStore_Get's
 * direct get, which any replica may answer: a replica catching up after a
 * restart was seen to answer with a stale durable cursor. *msg is NULL when
 * the key has no value (never put, deleted or purged: a KV-Operation
 * header marks those). */
static inline natsStatus relay_kv_get_from_leader(natsMsg **msg, jsCtx *js, const char *bucket, const char *key,
                                                  int64_t waitMs) {
    char stream[512], subject[1024];
    *msg = NULL;
    int streamLength = snprintf(stream, sizeof stream, "KV_%s", bucket);
    int subjectLength = snprintf(subject, sizeof subject, "$KV.%s.%s", bucket, key);
    if (streamLength < 0 || (size_t)streamLength >= sizeof stream || subjectLength < 0
        || (size_t)subjectLength >= sizeof subject) return NATS_INVALID_ARG;
    /* Only the leader answers, so while the bucket's stream elects a new
     * one (3-5 s after its leader died) the request has no responder or
     * times out: retry every 100 ms until `waitMs` has passed. */
    int64_t deadline = nats_Now() + waitMs;
    natsStatus s;
    for (;;) {
        jsOptions o;
        jsOptions_Init(&o);
        int64_t left = deadline - nats_Now();
        o.Wait = left < 1000 ? (left > 50 ? left : 50) : 1000;
        jsErrCode err = 0;
        s = js_GetLastMsg(msg, js, stream, subject, &o, &err);
        if ((s != NATS_TIMEOUT && s != NATS_NO_RESPONDERS) || nats_Now() + 100 >= deadline) break;
        nats_Sleep(100);
    }
    if (s == NATS_NOT_FOUND) {
        *msg = NULL;
        return NATS_OK;
    }
    if (s != NATS_OK) return s;
    const char *operation = NULL;
    if (natsMsgHeader_Get(*msg, "KV-Operation", &operation) == NATS_OK && operation != NULL) {
        natsMsg_Destroy(*msg);
        *msg = NULL;
    }
    return NATS_OK;
}

/* An ordered push consumer of `subject` from `startSeq` on; `cb` runs on
 * nats.c's delivery thread for each message, in stream order. */
static inline natsStatus relay_js_subscribe_ordered(natsSubscription **sub, jsCtx *js, const char *stream,
                                                    const char *subject, uint64_t startSeq,
                                                    natsMsgHandler cb, void *closure) {
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = startSeq > 0 ? js_DeliverByStartSequence : js_DeliverAll;
    so.Config.OptStartSeq = startSeq;
    so.Config.Heartbeat = (int64_t)1000 * 1000 * 1000;
    return js_Subscribe(sub, js, subject, cb, closure, NULL, &so, NULL);
}

/* The stream sequence of a message an ordered consumer delivered, read from
 * its reply subject ($JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.
 * <consumer seq>.<time>.<pending>, or the 12-token form with domain and
 * account hash, stream sequence then 8th) without natsMsg_GetMetaData, which
 * allocates a struct and copies the stream and consumer names for every
 * message of the tail. 0 when the subject has neither form (the caller then
 * asks natsMsg_GetMetaData). */
static inline uint64_t relay_js_stream_sequence(natsMsg *msg) {
    const char *reply = natsMsg_GetReply(msg);
    if (reply == NULL || strncmp(reply, "$JS.ACK.", 8) != 0) return 0;
    const char *tokens[12];
    int count = 0;
    for (const char *c = reply + 8; *c != '\0' && count < 12; ) {
        tokens[count++] = c;
        while (*c != '\0' && *c != '.') c++;
        if (*c == '.') c++;
        else break;
    }
    /* `count` counts the tokens after "$JS.ACK.", at most 12. */
    int index = count == 7 ? 3 : (count >= 9 ? 5 : -1);
    if (index < 0) return 0;
    uint64_t value = 0;
    const char *c = tokens[index];
    if (*c < '0' || *c > '9') return 0;
    for (; *c >= '0' && *c <= '9'; c++) value = value * 10 + (uint64_t)(*c - '0');
    return (*c == '.' || *c == '\0') ? value : 0;
}

/* A header value of `msg`, or NULL; valid while `msg` lives. */
static inline const char *relay_nats_header(natsMsg *msg, const char *key) {
    const char *value = NULL;
    if (natsMsgHeader_Get(msg, key, &value) != NATS_OK) {
        return NULL;
    }
    return value;
}

/* ---- Pipelined publishing (JetStreamMessageLog's appends) ----
 *
 * A relay_pipeline owns its own JetStream context whose asynchronous-publish
 * ack handler is relay_pipeline_ack, with the pipeline as its closure.
 *
 * A *round* is one batch of messages. relay_pipeline_send publishes a round
 * with js_PublishMsgAsync, keeping at most `window` messages awaiting their
 * ack over all rounds in progress, and returns as soon as the round is sent.
 * It is called from the log's writer queue and, for retries, from its ack
 * queue; the mutex makes that safe, and each caller's messages leave in its
 * own order.
 * relay_pipeline_await (on another thread, once per round) then waits
 * until every message of that round has its ack or error, or no ack came for
 * `idleMs`, or `waitMs` passed. So the next round goes out while earlier ones
 * still await their acks: the window stays full, as with a plain async
 * publisher, instead of draining to zero once per round (docs/cluster.md,
 * "Performance", wave 6). relay_pipeline_publish is both in one call.
 *
 * The ack handler finds the message's round and index by its pointer (the
 * handler is given back the very natsMsg that was published) in the small
 * open-addressing table of each round in progress (a list: one to a few).
 *
 * Order: the messages leave in send order on one connection; the server
 * handles a connection's messages in order and forwards them to the stream
 * leader in that order, so without failures the stream sequences follow the
 * send order (JetStreamPipelineTests checks it).
 *
 * Lifetimes: each natsMsg is handed to nats.c by js_PublishMsgAsync (which
 * NULLs the caller's pointer); nats.c gives it back in the handler, which
 * destroys it, or in js_PublishAsyncGetPendingList after a timeout, where it
 * is destroyed too. A round (and the caller's results array, which must stay
 * valid until relay_pipeline_await returns) is unlinked from the list under
 * the mutex before relay_pipeline_await returns; a handler holds the mutex
 * while it touches a round, so none touches it afterwards, and a handler
 * still running for a reclaimed message finds no round. The pipeline itself
 * is freed by relay_pipeline_destroy, unless a round ended with handlers that
 * might still run (then it is left allocated: `abandoned`). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct relay_pub_result {
    bool done;
    natsStatus status;   /* NATS_OK: acknowledged */
    jsErrCode code;      /* JetStream's error code of a refusal, 0 otherwise */
    uint64_t sequence;
    bool duplicate;
    char text[200];      /* the error text (copied: nats.c's is valid only in the handler) */
} relay_pub_result;

typedef struct relay_round {
    relay_pub_result *results;  /* the caller's, `count` entries */
    natsMsg **keys;
    int *slots;
    size_t mask;
    int count;
    int outstanding;            /* published, neither acked nor failed yet */
    struct relay_round *next;
} relay_round;

typedef struct relay_pipeline {
    jsCtx *js;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Guarded by mu. */
    relay_round *rounds; /* sent and not yet awaited */
    int inflight;        /* awaiting an ack, over all rounds */
    int windowWaiters;   /* senders waiting for the window */
    int64_t lastAckNs;   /* when the last ack or error arrived (idle timeout) */
    bool abandoned;
    /* Statistics, guarded by mu. */
    uint64_t publishes, ackWaits;
    int peakInFlight;
} relay_pipeline;

static inline int64_t relay_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline size_t relay_pipeline_hash(const natsMsg *msg, size_t mask) {
    return (size_t)(((uintptr_t)msg >> 4) * (uintptr_t)0x9E3779B97F4A7C15ULL) & mask;
}

/* The index of `msg` in `round`, or -1. Called with mu held. */
static inline int relay_round_find(const relay_round *round, const natsMsg *msg) {
    for (size_t h = relay_pipeline_hash(msg, round->mask);; h = (h + 1) & round->mask) {
        if (round->keys[h] == msg) return round->slots[h];
        if (round->keys[h] == NULL) return -1;
    }
}

/* The round in progress holding `msg` and its index there, or NULL. mu held. */
static inline relay_round *relay_pipeline_find(relay_pipeline *p, const natsMsg *msg, int *index) {
    for (relay_round *round = p->rounds; round != NULL; round = round->next) {
        int i = relay_round_find(round, msg);
        if (i >= 0) {
            *index = i;
            return round;
        }
    }
    return NULL;
}

static inline void relay_pipeline_finish(relay_pipeline *p, relay_round *round, int index, natsStatus status,
                                         jsErrCode code, const char *text) {
    relay_pub_result *r = &round->results[index];
    if (r->done) return;
    r->done = true;
    r->status = status;
    r->code = code;
    if (text != NULL) snprintf(r->text, sizeof(r->text), "%s", text);
    round->outstanding--;
    p->inflight--;
    p->lastAckNs = relay_now_ns();
    /* Wake waiters only when what they wait for may have come: the awaiter
     * when its round is complete, the sender while it waits for the window
     * (a wake per ack, a futex call and a context switch each, cost more
     * than the ack itself). The idle timeout needs no wake: a waiter that
     * times out recomputes it from lastAckNs. Broadcast: both may wait. */
    if (round->outstanding == 0 || p->windowWaiters > 0) pthread_cond_broadcast(&p->cv);
}

/* nats.c's ack handler, on its reply-subscription thread. */
static void relay_pipeline_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    (void)js;
    relay_pipeline *p = (relay_pipeline *)closure;
    pthread_mutex_lock(&p->mu);
    int index = -1;
    relay_round *round = relay_pipeline_find(p, msg, &index);
    if (round != NULL) {
        if (pa != NULL) {
            round->results[index].sequence = pa->Sequence;
            round->results[index].duplicate = pa->Duplicate;
            relay_pipeline_finish(p, round, index, NATS_OK, 0, NULL);
        } else if (pae != NULL) {
            relay_pipeline_finish(p, round, index, pae->Err != NATS_OK ? pae->Err : NATS_ERR, pae->ErrCode,
                                  pae->ErrText != NULL ? pae->ErrText : natsStatus_GetText(pae->Err));
        } else {
            relay_pipeline_finish(p, round, index, NATS_ERR, 0, "an acknowledgement without ack or error");
        }
    }
    pthread_mutex_unlock(&p->mu);
    natsMsg_Destroy(msg);  /* ours again (see the lifetime note above) */
}

static inline natsStatus relay_pipeline_create(relay_pipeline **out, natsConnection *nc) {
    relay_pipeline *p = (relay_pipeline *)calloc(1, sizeof(relay_pipeline));
    if (p == NULL) return NATS_NO_MEMORY;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&p->mu, NULL);
    jsOptions o;
    jsOptions_Init(&o);
    o.PublishAsync.AckHandler = relay_pipeline_ack;
    o.PublishAsync.AckHandlerClosure = p;
    /* No MaxPending: relay_pipeline_send keeps its own window. */
    natsStatus s = natsConnection_JetStream(&p->js, nc, &o);
    if (s != NATS_OK) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return s;
    }
    *out = p;
    return NATS_OK;
}

/* Destroys the context (no more handlers once it is gone and no round is in
 * progress), then the pipeline unless a handler may still reach it. */
static inline void relay_pipeline_destroy(relay_pipeline *p) {
    jsCtx_Destroy(p->js);
    pthread_mutex_lock(&p->mu);
    bool keep = p->abandoned;
    pthread_mutex_unlock(&p->mu);
    if (keep) return;
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

static inline void relay_pipeline_statistics(relay_pipeline *p, uint64_t *publishes, uint64_t *ackWaits, int *peak) {
    pthread_mutex_lock(&p->mu);
    *publishes = p->publishes;
    *ackWaits = p->ackWaits;
    *peak = p->peakInFlight;
    pthread_mutex_unlock(&p->mu);
}

/* A message for relay_pipeline_send: `subject`, `data` (copied) and, when
 * `msgId` is not NULL, the Nats-Msg-Id header JetStream deduplicates on. */
static inline natsStatus relay_pipeline_message(natsMsg **msg, const char *subject, const char *msgId,
                                                const void *data, int len) {
    natsStatus s = natsMsg_Create(msg, subject, NULL, (const char *)data, len);
    if (s == NATS_OK && msgId != NULL) s = natsMsgHeader_Set(*msg, "Nats-Msg-Id", msgId);
    if (s != NATS_OK && *msg != NULL) {
        natsMsg_Destroy(*msg);
        *msg = NULL;
    }
    return s;
}

/* Waits on cv until *counter <= limit or a timeout; mu held. Returns false at
 * the idle timeout (no ack or error for idleNs) or the deadline. */
static inline bool relay_pipeline_wait(relay_pipeline *p, const int *counter, int limit, int64_t idleNs,
                                       int64_t deadlineNs) {
    p->ackWaits++;
    while (*counter > limit) {
        int64_t now = relay_now_ns();
        int64_t until = p->lastAckNs + idleNs < deadlineNs ? p->lastAckNs + idleNs : deadlineNs;
        if (now >= until) return false;
        struct timespec ts = { (time_t)(until / 1000000000LL), (long)(until % 1000000000LL) };
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    }
    return true;
}

/* Publishes msgs[0..count) (taking each: entries are NULL afterwards) as one
 * round whose outcomes go to results[0..count), which must stay valid until
 * relay_pipeline_await(p, round, ...) returns; that call must follow, once.
 * Waits only while `window` messages (over all rounds) await their ack; a
 * message not sent because none came for `idleMs` or `waitMs` passed gets
 * NATS_TIMEOUT at once. NULL when out of memory (every result then says so). */
static inline relay_round *relay_pipeline_send(relay_pipeline *p, natsMsg **msgs, int count, int window,
                                               int64_t idleMs, int64_t waitMs, relay_pub_result *results) {
    if (count <= 0) return NULL;
    memset(results, 0, sizeof(relay_pub_result) * (size_t)count);
    size_t size = 16;
    while (size < (size_t)count * 2) size <<= 1;
    relay_round *round = (relay_round *)calloc(1, sizeof(relay_round));
    natsMsg **keys = (natsMsg **)calloc(size, sizeof(natsMsg *));
    int *slots = (int *)calloc(size, sizeof(int));
    if (round == NULL || keys == NULL || slots == NULL) {
        free(round);
        free(keys);
        free(slots);
        for (int i = 0; i < count; i++) {
            results[i].done = true;
            results[i].status = NATS_NO_MEMORY;
            natsMsg_Destroy(msgs[i]);
            msgs[i] = NULL;
        }
        return NULL;
    }
    round->results = results;
    round->keys = keys;
    round->slots = slots;
    round->mask = size - 1;
    round->count = count;
    const int64_t idleNs = idleMs * 1000000LL, deadlineNs = relay_now_ns() + waitMs * 1000000LL;
    pthread_mutex_lock(&p->mu);
    round->next = p->rounds;
    p->rounds = round;
    if (p->inflight == 0) p->lastAckNs = relay_now_ns();  /* idle counts from the first message awaiting */
    int sent = 0;
    for (; sent < count; sent++) {
        if (p->inflight >= window) {
            p->windowWaiters++;
            bool room = relay_pipeline_wait(p, &p->inflight, window - 1, idleNs, deadlineNs);
            p->windowWaiters--;
            if (!room) break;
        }
        natsMsg *msg = msgs[sent];
        /* Registered before the publish: its ack may come before js_PublishMsgAsync returns. */
        size_t h = relay_pipeline_hash(msg, round->mask);
        while (keys[h] != NULL) h = (h + 1) & round->mask;
        keys[h] = msg;
        slots[h] = sent;
        round->outstanding++;
        p->inflight++;
        p->publishes++;
        if (p->inflight > p->peakInFlight) p->peakInFlight = p->inflight;
        pthread_mutex_unlock(&p->mu);
        natsStatus s = js_PublishMsgAsync(p->js, &msgs[sent], NULL);
        pthread_mutex_lock(&p->mu);
        if (s != NATS_OK) {
            /* Not taken: still ours (msgs[sent] is not NULL). nats_GetLastError
             * is this thread's; copied by finish. */
            natsStatus last = NATS_OK;
            const char *text = nats_GetLastError(&last);
            relay_pipeline_finish(p, round, sent, s, 0, text != NULL ? text : natsStatus_GetText(s));
        }
    }
    /* Not sent (no ack came while the window was full). */
    for (int i = sent; i < count; i++) {
        results[i].done = true;
        results[i].status = NATS_TIMEOUT;
        snprintf(results[i].text, sizeof(results[i].text), "not published: no acknowledgements within the wait");
    }
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < count; i++) natsMsg_Destroy(msgs[i]);  /* those nats.c did not take; NULL is a no-op */
    return round;
}

/* Waits for the outcomes of a round relay_pipeline_send returned (NULL: done
 * already), at most until no ack came for `idleMs` or `waitMs` passed; a
 * message without an outcome then gets NATS_TIMEOUT (it may still be stored:
 * a retry must reuse its Nats-Msg-Id). Frees the round. */
static inline void relay_pipeline_await(relay_pipeline *p, relay_round *round, int64_t idleMs, int64_t waitMs) {
    if (round == NULL) return;
    const int64_t idleNs = idleMs * 1000000LL, deadlineNs = relay_now_ns() + waitMs * 1000000LL;
    pthread_mutex_lock(&p->mu);
    if (round->outstanding > 0) relay_pipeline_wait(p, &round->outstanding, 0, idleNs, deadlineNs);
    if (round->outstanding > 0) {
        /* Take back what is still pending: nats.c then drops its acks. The
         * list may hold later rounds' messages too; they time out as well
         * (their awaiter retries them with the same id). */
        pthread_mutex_unlock(&p->mu);
        natsMsgList pending = { NULL, 0 };
        natsStatus ls = js_PublishAsyncGetPendingList(&pending, p->js);
        pthread_mutex_lock(&p->mu);
        if (ls == NATS_OK) {
            for (int i = 0; i < pending.Count; i++) {
                int index = -1;
                relay_round *owner = relay_pipeline_find(p, pending.Msgs[i], &index);
                if (owner != NULL) relay_pipeline_finish(p, owner, index, NATS_TIMEOUT, 0, "no acknowledgement in time");
            }
        }
        /* Handlers nats.c had already started: give them a moment to finish. */
        if (round->outstanding > 0)
            relay_pipeline_wait(p, &round->outstanding, 0, 1000000000LL, relay_now_ns() + 1000000000LL);
        if (round->outstanding > 0) p->abandoned = true;
        for (int i = 0; i < round->count; i++) {
            if (!round->results[i].done) relay_pipeline_finish(p, round, i, NATS_TIMEOUT, 0, "no acknowledgement in time");
        }
        pthread_mutex_unlock(&p->mu);
        if (ls == NATS_OK) natsMsgList_Destroy(&pending);
        pthread_mutex_lock(&p->mu);
    }
    /* Unlink the round: a late handler finds nothing. */
    for (relay_round **link = &p->rounds; *link != NULL; link = &(*link)->next) {
        if (*link == round) {
            *link = round->next;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    free(round->keys);
    free(round->slots);
    free(round);
}

/* relay_pipeline_send then relay_pipeline_await: one round, start to end. */
static inline void relay_pipeline_publish(relay_pipeline *p, natsMsg **msgs, int count, int window, int64_t idleMs,
                                          int64_t waitMs, relay_pub_result *results) {
    int64_t start = relay_now_ns();
    relay_round *round = relay_pipeline_send(p, msgs, count, window, idleMs, waitMs, results);
    int64_t left = waitMs - (relay_now_ns() - start) / 1000000LL;
    relay_pipeline_await(p, round, idleMs, left > 1 ? left : 1);
}
#endif
