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
#include <stdio.h>
#include <stdlib.h>
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
 * header marks those). *revision is the key's last revision (the stream
 * sequence of its last entry, a delete marker's too), 0 when it has none
 * (never put, or purged): what relay_kv_put_expecting compares against. */
static inline natsStatus relay_kv_get_from_leader(natsMsg **msg, uint64_t *revision, jsCtx *js, const char *bucket,
                                                  const char *key, int64_t waitMs) {
    char stream[512], subject[1024];
    *msg = NULL;
    *revision = 0;
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
    *revision = natsMsg_GetSequence(*msg);
    const char *operation = NULL;
    if (natsMsgHeader_Get(*msg, "KV-Operation", &operation) == NATS_OK && operation != NULL) {
        natsMsg_Destroy(*msg);
        *msg = NULL;
    }
    return NATS_OK;
}

/* Puts `data` as the value of `key` in the key-value bucket `bucket` only if
 * the key's last revision is still `last` (0: only if the key has no entry):
 * a publish to `$KV.<bucket>.<key>` with the header
 * Nats-Expected-Last-Subject-Sequence. A key purged since fails with
 * JSStreamWrongLastSequenceErr in *err (10071), as does any other entry
 * written since. On success *revision is the new entry's stream sequence. */
static inline natsStatus relay_kv_put_expecting(uint64_t *revision, jsCtx *js, const char *bucket, const char *key,
                                                const void *data, int length, uint64_t last, int64_t waitMs,
                                                jsErrCode *err) {
    char subject[1024];
    *revision = 0;
    int subjectLength = snprintf(subject, sizeof subject, "$KV.%s.%s", bucket, key);
    if (subjectLength < 0 || (size_t)subjectLength >= sizeof subject) return NATS_INVALID_ARG;
    jsPubOptions o;
    jsPubOptions_Init(&o);
    o.MaxWait = waitMs;
    if (last == 0) o.ExpectNoMessage = true;
    else o.ExpectLastSubjectSeq = last;
    jsPubAck *ack = NULL;
    natsStatus s = js_Publish(&ack, js, subject, data, length, &o, err);
    if (s == NATS_OK && ack != NULL) *revision = ack->Sequence;
    if (ack != NULL) jsPubAck_Destroy(ack);
    return s;
}

/* The stream info of `bucket`'s stream, listing the keys under `keyFilter`
 * (a subject filter of keys, e.g. "c.<owner>.>") that hold a message, in
 * `(*si)->State.Subjects` (NULL when none). Free `*si` with
 * jsStreamInfo_Destroy. One request to the stream's leader. */
static inline natsStatus relay_kv_subjects(jsStreamInfo **si, jsCtx *js, const char *bucket, const char *keyFilter,
                                           int64_t waitMs, jsErrCode *err) {
    char stream[512], filter[1024];
    *si = NULL;
    int streamLength = snprintf(stream, sizeof stream, "KV_%s", bucket);
    int filterLength = snprintf(filter, sizeof filter, "$KV.%s.%s", bucket, keyFilter);
    if (streamLength < 0 || (size_t)streamLength >= sizeof stream || filterLength < 0
        || (size_t)filterLength >= sizeof filter) return NATS_INVALID_ARG;
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = waitMs;
    o.Stream.Info.SubjectsFilter = filter;
    return js_GetStreamInfo(si, js, stream, &o, err);
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

/* Direct gets of the `count` sequences from `first` on, all sent before the
 * first reply is awaited: one round trip for the run instead of one per
 * message (a replay's read). out[i] is the reply for first + i, or NULL when
 * none came within waitMs; each reply is the caller's (natsMsg_Destroy), a
 * 404 (no such message: a Status header and no data) included. The replies
 * come to a subscription of this run's own (a fresh inbox), so a reply that
 * comes after the run ended is dropped with it. Fails only when the requests
 * could not be sent, and then nothing is left in `out`. count is at most
 * 1024. */
static inline natsStatus relay_js_direct_get_run(natsMsg **out, natsConnection *nc, const char *stream,
                                                 uint64_t first, int count, int64_t waitMs) {
    natsInbox *inbox = NULL;
    natsSubscription *sub = NULL;
    char subject[300], reply[128], filter[128], body[48];
    for (int i = 0; i < count; i++) out[i] = NULL;
    if (count <= 0 || count > 1024) return NATS_INVALID_ARG;
    natsStatus s = natsInbox_Create(&inbox);
    if (s != NATS_OK) return s;
    snprintf(filter, sizeof filter, "%s.*", (const char *)inbox);
    snprintf(subject, sizeof subject, "$JS.API.DIRECT.GET.%s", stream);
    s = natsConnection_SubscribeSync(&sub, nc, filter);
    for (int i = 0; s == NATS_OK && i < count; i++) {
        snprintf(reply, sizeof reply, "%s.%d", (const char *)inbox, i);
        int length = snprintf(body, sizeof body, "{\"seq\":%llu}", (unsigned long long)(first + (uint64_t)i));
        s = natsConnection_PublishRequest(nc, subject, reply, body, length);
    }
    int64_t deadline = nats_Now() + waitMs;
    for (int received = 0; s == NATS_OK && received < count;) {
        int64_t left = deadline - nats_Now();
        if (left <= 0) break;
        natsMsg *m = NULL;
        /* A timeout, or any other failure to take a reply (the connection
         * closing; replies dropped past nats.c's pending limits of 65,536
         * messages or 64 MiB, a slow consumer), ends the run with what came:
         * the rest are NULL, and the caller reads them the careful way. */
        if (natsSubscription_NextMsg(&m, sub, left) != NATS_OK) break;
        const char *replySubject = natsMsg_GetSubject(m);
        const char *dot = replySubject ? strrchr(replySubject, '.') : NULL;
        int index = -1;
        if (dot != NULL && dot[1] >= '0' && dot[1] <= '9') index = atoi(dot + 1);
        if (index < 0 || index >= count || out[index] != NULL) { natsMsg_Destroy(m); continue; }
        out[index] = m;
        received++;
    }
    if (sub != NULL) { natsSubscription_Unsubscribe(sub); natsSubscription_Destroy(sub); }
    natsInbox_Destroy(inbox);
    if (s != NATS_OK) {
        for (int i = 0; i < count; i++) { natsMsg_Destroy(out[i]); out[i] = NULL; }
    }
    return s;
}

/* A header value of `msg`, or NULL; valid while `msg` lives. */
static inline const char *relay_nats_header(natsMsg *msg, const char *key) {
    const char *value = NULL;
    if (natsMsgHeader_Get(msg, key, &value) != NATS_OK) {
        return NULL;
    }
    return value;
}

/* Pipelined publishing (JetStreamMessageLog's appends): pipeline.h. */
#endif
