#ifndef RELAY_CNATS_PIPELINE_H
#define RELAY_CNATS_PIPELINE_H
/* ---- Pipelined publishing (JetStreamMessageLog's appends) ----
 *
 * A *round* is one batch of messages. relay_pipeline_send publishes a round,
 * keeping at most `window` messages awaiting their ack over all rounds in
 * progress, and returns as soon as the round is sent. It is called from the
 * log's writer queue and, for retries, from its ack queue; the mutex makes
 * that safe, and each caller's messages leave in its own order.
 * relay_pipeline_await (on another thread, once per round) then waits until
 * every message of that round has its ack or error, or no ack came for
 * `idleMs`, or `waitMs` passed. So the next round goes out while earlier ones
 * still await their acks: the window stays full, as with a plain async
 * publisher, instead of draining to zero once per round (docs/cluster.md,
 * "Performance", wave 6). relay_pipeline_publish is both in one call.
 *
 * JetStream publishes are plain core publishes with a reply subject: the
 * stream's leader answers each on its reply subject with a PubAck (JSON), or
 * the server answers "no responders" (status 503) when the stream has no
 * leader. The reply subject is `<inbox>.<round>.<index>`, under one inbox
 * the pipeline subscribes to (`<inbox>.>`, its own delivery thread), so the
 * ack handler (relay_pipeline_reply) finds the message's round by number (a
 * list of the rounds in progress: one to a few) and its result by index. This
 * is what nats.c's js_PublishMsgAsync does too, minus what relayd does not
 * need per message (docs/performance-history.md, "Cluster edge (wave 8)"): a
 * JetStream-context lock, a string-keyed map entry per publish (set, then
 * removed by the ack), the published message kept alive (with its header
 * map) until its ack, and a generic JSON parse of every ack into a map of
 * allocated fields. Here a message is destroyed as soon as it is written to
 * the connection's buffer, and an ack is read in place (relay_pub_ack_parse).
 *
 * Order: the messages leave in send order on one connection; the server
 * handles a connection's messages in order and forwards them to the stream
 * leader in that order, so without failures the stream sequences follow the
 * send order (JetStreamPipelineTests checks it).
 *
 * Lifetimes: every natsMsg is the caller's and is destroyed by
 * relay_pipeline_send once published (nats.c copies it into its write
 * buffer). A round (and the caller's results array, which must stay valid
 * until relay_pipeline_await returns) is unlinked from the list under the
 * mutex before relay_pipeline_await returns; the handler holds the mutex
 * while it touches a round, so none touches it afterwards, and a late ack
 * finds no round (it is dropped). The pipeline itself is freed by
 * relay_pipeline_destroy once the reply subscription's delivery thread has
 * ended (its on-complete callback says so), so no handler can still reach it;
 * if that does not happen within 2 s it is left allocated (`leaked`). */
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    uint64_t number;            /* the <round> token of its reply subjects */
    int count;
    int outstanding;            /* published, neither acked nor failed yet */
    struct relay_round *next;
} relay_round;

typedef struct relay_pipeline {
    natsConnection *nc;
    natsSubscription *sub;      /* `<inbox>.>`, handler relay_pipeline_reply */
    char inbox[96];
    size_t inboxLength;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* Guarded by mu. */
    relay_round *rounds; /* sent and not yet awaited */
    uint64_t lastRound;  /* the last round number handed out */
    int inflight;        /* awaiting an ack, over all rounds */
    int windowWaiters;   /* senders waiting for the window */
    int64_t lastAckNs;   /* when the last ack or error arrived (idle timeout) */
    bool completed;      /* the reply subscription's delivery thread has ended */
    /* Statistics, guarded by mu. */
    uint64_t publishes, ackWaits;
    int peakInFlight;
} relay_pipeline;

static inline int64_t relay_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
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

/* Reads a decimal at *c, moving *c past it; false if there is none. */
static inline bool relay_parse_decimal(const char **c, const char *end, uint64_t *value) {
    const char *start = *c;
    uint64_t v = 0;
    while (*c < end && **c >= '0' && **c <= '9') v = v * 10 + (uint64_t)(*(*c)++ - '0');
    *value = v;
    return *c > start;
}

/* Where the value of `"key":` starts in json[0..len), or NULL. JetStream's
 * PubAck is flat JSON written by the server ({"stream":..,"seq":..,
 * "duplicate":true} or {"error":{"code":..,"err_code":..,"description":..}}),
 * whose keys and stream names hold no quotes, so a key is found by its
 * quoted name followed by a colon: a quoted *value* equal to a key's name
 * (a stream named "seq" or "error") is followed by ',' or '}', never ':'. */
static inline const char *relay_json_value(const char *json, int len, const char *key) {
    size_t keyLength = strlen(key);
    for (const char *c = json, *end = json + len; c + keyLength + 3 <= end; c++) {
        if (c[0] == '"' && memcmp(c + 1, key, keyLength) == 0 && c[keyLength + 1] == '"') {
            const char *v = c + keyLength + 2;
            while (v < end && *v == ' ') v++;
            if (v >= end || *v != ':') continue;  /* a value, not a key */
            v++;
            while (v < end && *v == ' ') v++;
            return v < end ? v : NULL;
        }
    }
    return NULL;
}

/* Fills `r` from one reply `msg`: an ack (status NATS_OK, the stream
 * sequence, duplicate or not), a refusal (JetStream's err_code and
 * description), "no responders", or a reply that is none of these. Does not
 * mark `r` done (relay_pipeline_finish does). */
static inline natsStatus relay_pub_ack_parse(natsMsg *msg, relay_pub_result *r, jsErrCode *code, char *text,
                                             size_t textSize) {
    *code = 0;
    text[0] = '\0';
    if (natsMsg_IsNoResponders(msg)) {
        snprintf(text, textSize, "%s", natsStatus_GetText(NATS_NO_RESPONDERS));
        return NATS_NO_RESPONDERS;
    }
    const char *json = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    const char *end = json != NULL ? json + len : NULL;
    if (json == NULL || len <= 0) {
        snprintf(text, textSize, "an acknowledgement without ack or error");
        return NATS_ERR;
    }
    const char *error = relay_json_value(json, len, "error");
    if (error != NULL) {
        uint64_t errCode = 0;
        const char *c = relay_json_value(error, (int)(end - error), "err_code");
        if (c != NULL) relay_parse_decimal(&c, end, &errCode);
        *code = (jsErrCode)errCode;
        const char *d = relay_json_value(error, (int)(end - error), "description");
        if (d != NULL && *d == '"') {
            size_t n = 0;
            for (d++; d < end && *d != '"' && n + 1 < textSize; d++) {
                if (*d == '\\' && d + 1 < end) d++;  /* \" and \\ as the character itself */
                text[n++] = *d;
            }
            text[n] = '\0';
        }
        if (text[0] == '\0') snprintf(text, textSize, "JetStream refused the publish (error %llu)", (unsigned long long)errCode);
        return NATS_ERR;
    }
    const char *seq = relay_json_value(json, len, "seq");
    uint64_t sequence = 0;
    if (relay_json_value(json, len, "stream") == NULL || seq == NULL || !relay_parse_decimal(&seq, end, &sequence)) {
        snprintf(text, textSize, "not a JetStream acknowledgement: %.*s", len > 120 ? 120 : len, json);
        return NATS_ERR;
    }
    const char *duplicate = relay_json_value(json, len, "duplicate");
    r->sequence = sequence;
    r->duplicate = duplicate != NULL && end - duplicate >= 4 && memcmp(duplicate, "true", 4) == 0;
    return NATS_OK;
}

/* The reply subscription's handler, on its delivery thread: finds the round
 * and index in the subject `<inbox>.<round>.<index>` and records the outcome. */
static void relay_pipeline_reply(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    (void)nc;
    (void)sub;
    relay_pipeline *p = (relay_pipeline *)closure;
    const char *subject = natsMsg_GetSubject(msg);
    size_t length = subject != NULL ? strlen(subject) : 0;
    uint64_t number = 0, index = 0;
    const char *c = length > p->inboxLength + 1 ? subject + p->inboxLength + 1 : NULL, *end = subject + length;
    if (c != NULL && relay_parse_decimal(&c, end, &number) && c < end && *c++ == '.'
        && relay_parse_decimal(&c, end, &index) && c == end) {
        relay_pub_result parsed;
        parsed.sequence = 0;
        parsed.duplicate = false;
        jsErrCode code = 0;
        char text[sizeof(parsed.text)];
        /* Parsed before taking the mutex: the handler holds it only to record. */
        natsStatus status = relay_pub_ack_parse(msg, &parsed, &code, text, sizeof(text));
        pthread_mutex_lock(&p->mu);
        for (relay_round *round = p->rounds; round != NULL; round = round->next) {
            if (round->number != number) continue;
            if (index < (uint64_t)round->count && !round->results[index].done) {
                round->results[index].sequence = parsed.sequence;
                round->results[index].duplicate = parsed.duplicate;
                relay_pipeline_finish(p, round, (int)index, status, code, status == NATS_OK ? NULL : text);
            }
            break;
        }
        pthread_mutex_unlock(&p->mu);
    }
    natsMsg_Destroy(msg);  /* the handler owns it */
}

/* The reply subscription's delivery thread has ended: no handler runs any more. */
static void relay_pipeline_completed(void *closure) {
    relay_pipeline *p = (relay_pipeline *)closure;
    pthread_mutex_lock(&p->mu);
    p->completed = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

static inline natsStatus relay_pipeline_create(relay_pipeline **out, natsConnection *nc) {
    relay_pipeline *p = (relay_pipeline *)calloc(1, sizeof(relay_pipeline));
    if (p == NULL) return NATS_NO_MEMORY;
    p->nc = nc;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&p->mu, NULL);
    natsInbox *inbox = NULL;
    natsStatus s = natsInbox_Create(&inbox);
    if (s == NATS_OK) {
        /* An inbox is "_INBOX." and a NUID: far shorter than the buffer. */
        p->inboxLength = (size_t)snprintf(p->inbox, sizeof(p->inbox), "%s", (const char *)inbox);
        if (p->inboxLength + 3 > sizeof(p->inbox)) s = NATS_ERR;
        natsInbox_Destroy(inbox);
    }
    char wildcard[sizeof(p->inbox) + 2];
    snprintf(wildcard, sizeof(wildcard), "%s.>", p->inbox);
    if (s == NATS_OK) s = natsConnection_Subscribe(&p->sub, nc, wildcard, relay_pipeline_reply, p);
    /* No pending limit: an ack dropped as a slow consumer would cost a timeout and a retry. */
    if (s == NATS_OK) s = natsSubscription_SetPendingLimits(p->sub, -1, -1);
    if (s == NATS_OK) s = natsSubscription_SetOnCompleteCB(p->sub, relay_pipeline_completed, p);
    if (s != NATS_OK) {
        if (p->sub != NULL) {
            /* Not yet completed-tracked: unsubscribe, and leave p allocated
             * (its handler may still run once); a failed start, once. */
            natsSubscription_Unsubscribe(p->sub);
            natsSubscription_Destroy(p->sub);
            return s;
        }
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return s;
    }
    *out = p;
    return NATS_OK;
}

/* Ends the reply subscription, then frees the pipeline once its delivery
 * thread has ended (at most 2 s; otherwise it is left allocated). No round
 * may be in progress. */
static inline void relay_pipeline_destroy(relay_pipeline *p) {
    natsSubscription_Unsubscribe(p->sub);  /* fails harmlessly when the connection is closed: the thread ends then too */
    pthread_mutex_lock(&p->mu);
    struct timespec ts;
    int64_t until = relay_now_ns() + 2000000000LL;
    ts.tv_sec = (time_t)(until / 1000000000LL);
    ts.tv_nsec = (long)(until % 1000000000LL);
    while (!p->completed && relay_now_ns() < until) pthread_cond_timedwait(&p->cv, &p->mu, &ts);
    bool completed = p->completed;
    pthread_mutex_unlock(&p->mu);
    natsSubscription_Destroy(p->sub);
    if (!completed) return;  /* leaked: a handler might still reach it */
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

/* A number for the next round: its messages' reply subjects carry it
 * (relay_pipeline_message), and relay_pipeline_send is given it. */
static inline uint64_t relay_pipeline_next_round(relay_pipeline *p) {
    pthread_mutex_lock(&p->mu);
    uint64_t number = ++p->lastRound;
    pthread_mutex_unlock(&p->mu);
    return number;
}

/* Message `index` of round `round` for relay_pipeline_send: `subject`,
 * `data` (copied), the reply subject `<inbox>.<round>.<index>` and, when
 * `msgId` is not NULL, the Nats-Msg-Id header JetStream deduplicates on. */
static inline natsStatus relay_pipeline_message(relay_pipeline *p, uint64_t round, int index, natsMsg **msg,
                                                const char *subject, const char *msgId, const void *data, int len) {
    char reply[sizeof(p->inbox) + 48];
    snprintf(reply, sizeof(reply), "%s.%llu.%d", p->inbox, (unsigned long long)round, index);
    natsStatus s = natsMsg_Create(msg, subject, reply, (const char *)data, len);
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

/* Publishes msgs[0..count) of round `number` (relay_pipeline_next_round;
 * message i made by relay_pipeline_message with index i), destroying each
 * and NULLing the entries, as one round whose outcomes go to
 * results[0..count), which must stay valid until relay_pipeline_await(p,
 * round, ...) returns; that call must follow, once. Waits only while
 * `window` messages (over all rounds) await their ack; a message not sent
 * because none came for `idleMs` or `waitMs` passed gets NATS_TIMEOUT at
 * once. NULL when out of memory (every result then says so). */
static inline relay_round *relay_pipeline_send(relay_pipeline *p, uint64_t number, natsMsg **msgs, int count,
                                               int window, int64_t idleMs, int64_t waitMs, relay_pub_result *results) {
    if (count <= 0) return NULL;
    memset(results, 0, sizeof(relay_pub_result) * (size_t)count);
    relay_round *round = (relay_round *)calloc(1, sizeof(relay_round));
    if (round == NULL) {
        for (int i = 0; i < count; i++) {
            results[i].done = true;
            results[i].status = NATS_NO_MEMORY;
            natsMsg_Destroy(msgs[i]);
            msgs[i] = NULL;
        }
        return NULL;
    }
    round->results = results;
    round->number = number;
    round->count = count;
    const int64_t idleNs = idleMs * 1000000LL, deadlineNs = relay_now_ns() + waitMs * 1000000LL;
    pthread_mutex_lock(&p->mu);
    round->next = p->rounds;
    p->rounds = round;
    if (p->inflight == 0) p->lastAckNs = relay_now_ns();  /* idle counts from the first message awaiting */
    int sent = 0;
    while (sent < count) {
        if (p->inflight >= window) {
            p->windowWaiters++;
            bool room = relay_pipeline_wait(p, &p->inflight, window - 1, idleNs, deadlineNs);
            p->windowWaiters--;
            if (!room) break;
        }
        /* As many as the window has room for, counted as awaiting before
         * they are published (an ack may come before the publish returns),
         * then published without the mutex: one lock per batch, not two per
         * message (the handler takes it for every ack). */
        int batch = window - p->inflight;
        if (batch > count - sent) batch = count - sent;
        round->outstanding += batch;
        p->inflight += batch;
        p->publishes += (uint64_t)batch;
        if (p->inflight > p->peakInFlight) p->peakInFlight = p->inflight;
        pthread_mutex_unlock(&p->mu);
        for (int i = sent; i < sent + batch; i++) {
            natsStatus s = natsConnection_PublishMsg(p->nc, msgs[i]);
            if (s != NATS_OK) {
                /* Not sent: no reply will come. nats_GetLastError is this
                 * thread's; finish copies it (rare: a closed connection, a
                 * full reconnect buffer). */
                natsStatus last = NATS_OK;
                const char *text = nats_GetLastError(&last);
                pthread_mutex_lock(&p->mu);
                relay_pipeline_finish(p, round, i, s, 0, text != NULL ? text : natsStatus_GetText(s));
                pthread_mutex_unlock(&p->mu);
            }
            natsMsg_Destroy(msgs[i]);  /* copied into the connection's buffer (or not sent) */
            msgs[i] = NULL;
        }
        pthread_mutex_lock(&p->mu);
        sent += batch;
    }
    /* Not sent (no ack came while the window was full). */
    for (int i = sent; i < count; i++) {
        results[i].done = true;
        results[i].status = NATS_TIMEOUT;
        snprintf(results[i].text, sizeof(results[i].text), "not published: no acknowledgements within the wait");
    }
    pthread_mutex_unlock(&p->mu);
    for (int i = sent; i < count; i++) {
        natsMsg_Destroy(msgs[i]);
        msgs[i] = NULL;
    }
    return round;
}

/* Waits for the outcomes of a round relay_pipeline_send returned (NULL: done
 * already), at most until no ack came for `idleMs` or `waitMs` passed; a
 * message without an outcome then gets NATS_TIMEOUT (it may still be stored:
 * a retry must reuse its Nats-Msg-Id) and its late ack is dropped. Frees
 * the round. */
static inline void relay_pipeline_await(relay_pipeline *p, relay_round *round, int64_t idleMs, int64_t waitMs) {
    if (round == NULL) return;
    const int64_t idleNs = idleMs * 1000000LL, deadlineNs = relay_now_ns() + waitMs * 1000000LL;
    pthread_mutex_lock(&p->mu);
    if (round->outstanding > 0) relay_pipeline_wait(p, &round->outstanding, 0, idleNs, deadlineNs);
    for (int i = 0; round->outstanding > 0 && i < round->count; i++) {
        if (!round->results[i].done) relay_pipeline_finish(p, round, i, NATS_TIMEOUT, 0, "no acknowledgement in time");
    }
    /* Unlink the round: a late ack finds nothing. */
    for (relay_round **link = &p->rounds; *link != NULL; link = &(*link)->next) {
        if (*link == round) {
            *link = round->next;
            break;
        }
    }
    pthread_mutex_unlock(&p->mu);
    free(round);
}
#endif
