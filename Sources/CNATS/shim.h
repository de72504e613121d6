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

/* Publishes `data` to `subject` with `msgId` as Nats-Msg-Id and waits up to
 * `maxWaitMs` for the stream's ack. */
static inline natsStatus relay_js_publish(jsPubAck **ack, jsCtx *js, const char *subject, const char *msgId,
                                          const void *data, int len, int64_t maxWaitMs, jsErrCode *err) {
    jsPubOptions o;
    jsPubOptions_Init(&o);
    o.MaxWait = maxWaitMs;
    o.MsgId = msgId;  /* NULL: no dedup key */
    return js_Publish(ack, js, subject, data, len, &o, err);
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
        *count = ci->NumPending;
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

/* A header value of `msg`, or NULL; valid while `msg` lives. */
static inline const char *relay_nats_header(natsMsg *msg, const char *key) {
    const char *value = NULL;
    if (natsMsgHeader_Get(msg, key, &value) != NATS_OK) {
        return NULL;
    }
    return value;
}
#endif
