/*
 * relay_bench.c - a load generator for Relay in C + OpenSSL, written from the
 * wire spec (Protocol/relay-v1.md) alone, so the broker can be measured with
 * a client that costs little CPU (the Swift client of `relayctl bench` shares
 * the machine's cores with relayd). It measures what `relayctl bench` does
 * (Sources/RelayBench) and prints the same JSON fields, one line, so
 * scripts/bench-peers.sh reads both; its own rows say "client":"relay-c".
 *
 *   relay_bench pubsub  --count N --size B --window W [--subscribers K] [--rate R] [--warmup M]
 *   relay_bench fanout  --subscribers K ...   (pubsub with K subscribers, default 4)
 *   relay_bench replay  --count N --window W  (fill N, then one subscriber from earliest)
 *   relay_bench connect --count N --concurrency C
 *   common: --host H --port P --ca F --cert F --key F [--broker-pid PID] [--durability S]
 *           [--timeout SECONDS] [--fault missing|duplicate]
 *
 * Like the peers' generators (../shared/peers/mqtt_bench.c): fixed counts, one
 * deadline (--timeout) over every wait, separate TLS connections for the
 * publisher and each subscriber, all in this process (the publisher on the
 * main thread, each subscriber on a thread of its own), nearest-rank
 * percentiles over every message, and every delivery checked.
 *
 * The payload is relayctl bench's BenchPayload: publisher u32, counter u64,
 * send time u64 (CLOCK_MONOTONIC ns), big endian, then 'r' up to --size. Each
 * subscriber checks every counter arrives once and in order (bitmap), and that
 * the broker's sequence never goes back. --fault makes the checker drop or
 * double one delivery, to prove the check can fail (the tests use it).
 *
 * Cheap on CPU by design: non-blocking sockets, many frames per SSL_write
 * (up to 256 KiB), large SSL_read buffers, frames parsed in place, no
 * allocation per message. TLS 1.3 only, mutual TLS, full handshakes (no
 * session cache, no tickets), the server certificate checked against --ca and
 * --host.
 *
 * Exit: 0 every check passed; 1 a check failed or the deadline passed;
 * 2 usage; 3 the broker could not be reached.
 *
 * Build: cc -O2 -Wall -o relay_bench relay_bench.c -lssl -lcrypto -lpthread
 * (relay_bench_wire.h, next to this file, holds the connection and framing code)
 */
#include "relay_bench_wire.h"
#include <sys/prctl.h>

/* ---------- subscriber ---------- */
typedef struct {
	conn_t c;
	int idx;
	int window;
	long count;                 /* counters 0..count-1 are expected */
	atomic_long expected;       /* distinct deliveries that complete it (lowered to acked) */
	atomic_int stop;            /* set after the grace period */
	atomic_int complete;
	uint64_t *seen;             /* bitmap of counters */
	uint64_t *lat;              /* e2e latency per delivery, ns */
	long nlat;
	long distinct, dups, ooo, corrupt, frames;
	long injected;              /* --fault applied (once) */
	long missing;               /* deliveries the --fault missing checker dropped */
	int64_t highest;
	uint64_t last_seq;
	uint64_t first_ns, last_ns; /* last_ns: the delivery that completed it */
	int failed;
	pthread_t thr;
} sub_t;

static int sub_open(sub_t *s, const char *topic, int start_kind, const uint8_t session[16])
{
	char err[300];
	if (relay_connect(&s->c, session, err, sizeof err) != 0) {
		add_error("subscriber %d: %s", s->idx, err);
		return -1;
	}
	uint32_t tl = (uint32_t)strlen(topic);
	uint8_t *b = frame_begin(&s->c, T_SUB, 4 + 2 + tl + 1 + 8 + 2 + 4 + 1);
	put32(b, 1);
	put16(b + 4, (uint16_t)tl);
	memcpy(b + 6, topic, tl);
	b += 6 + tl;
	b[0] = (uint8_t)start_kind; /* 0 latest, 1 earliest */
	put64(b + 1, 0);
	put16(b + 9, 0);           /* ephemeral: no durable name */
	put32(b + 11, (uint32_t)s->window); /* initial credit = the window, as relayctl bench */
	b[15] = 0;                 /* ack_mode none */
	uint8_t type, flags;
	const uint8_t *body;
	uint32_t blen;
	if (conn_flush(&s->c) != 0 || read_frame(&s->c, &type, &flags, &body, &blen) != 1) {
		add_error("subscriber %d: no SUBACK", s->idx);
		return -1;
	}
	if (type != T_SUBACK || blen < 16 || get16(body + 4) != 0) {
		char text[200] = "";
		if (type == T_SUBACK && blen >= 16) str16_text(body + 14, blen - 14, text, sizeof text);
		add_error("subscriber %d: SUB refused (frame 0x%02x, code 0x%04x) %s", s->idx, type,
			  type == T_SUBACK && blen >= 6 ? get16(body + 4) : 0, text);
		return -1;
	}
	s->seen = xcalloc((size_t)(s->count + 63) / 64, 8);
	s->lat = xcalloc((size_t)s->count, 8);
	s->highest = -1;
	return 0;
}

/* Checks one delivery: the payload header and the broker's sequence. */
static void sub_record(sub_t *s, const uint8_t *body, uint32_t blen, uint64_t now)
{
	s->frames++;
	if (s->first_ns == 0) s->first_ns = now;
	/* MSG: subscription_id u32, sequence u64, timestamp u64, topic str16, principal str16, fingerprint[32], headers, payload */
	if (blen < 20 + 2) { s->corrupt++; return; }
	uint64_t seq = get64(body + 4);
	uint32_t off = 20;
	off += 2 + get16(body + off);                      /* topic */
	if (off + 2 > blen) { s->corrupt++; return; }
	off += 2 + get16(body + off);                      /* publisher principal */
	off += 32;                                          /* publisher fingerprint */
	if (off + 2 > blen) { s->corrupt++; return; }
	uint32_t nh = get16(body + off);
	off += 2;
	for (uint32_t i = 0; i < nh * 2 && off + 2 <= blen; i++) off += 2 + get16(body + off);
	if (off + HEADER_BYTES > blen) { s->corrupt++; return; }
	const uint8_t *pl = body + off;
	uint32_t publisher = get32(pl);
	uint64_t counter = get64(pl + 4), sent = get64(pl + 12);
	if (publisher != 0 || counter >= (uint64_t)s->count) { s->corrupt++; return; }
	int reps = 1;
	if (o_fault && counter == 0 && s->injected == 0) { /* --fault: drop or double the first delivery in the checker */
		s->injected = 1;
		reps = o_fault == 1 ? 0 : 2;
		s->missing = o_fault == 1;
	}
	long before = s->dups + s->ooo;
	for (int r = 0; r < reps; r++) {
		uint64_t bit = 1ull << (counter & 63);
		if (s->seen[counter >> 6] & bit) { s->dups++; continue; }
		s->seen[counter >> 6] |= bit;
		s->distinct++;
		if ((int64_t)counter < s->highest) s->ooo++;
		else s->highest = (int64_t)counter;
		if (s->nlat < s->count) s->lat[s->nlat++] = now - sent;
	}
	/* A second order check, on the broker's numbering; counted only when the payload check saw nothing. */
	if (seq <= s->last_seq && before == s->dups + s->ooo) s->ooo++;
	if (seq > s->last_seq) s->last_seq = seq;
}

/* Reads and checks deliveries until `expected` distinct arrived, then keeps reading (late duplicates) until stop. */
static void *sub_run(void *arg)
{
	sub_t *s = arg;
	long granted_back = 0; /* MSG consumed since the last CREDIT */
	while (!atomic_load(&s->stop)) {
		if (now_ns() >= g_deadline) { atomic_store(&g_timed_out, 1); break; }
		int r = conn_read(&s->c, 20000000ull);
		if (r < 0) { s->failed = 1; break; }
		if (r == 0) continue;
		uint64_t now = now_ns();
		uint8_t type, flags;
		const uint8_t *body;
		uint32_t blen;
		int f;
		while ((f = next_frame(&s->c, &type, &flags, &body, &blen)) == 1) {
			if (type == T_MSG) {
				sub_record(s, body, blen, now);
				granted_back++;
			} else if (common_frame(&s->c, type, body, blen) != 0) {
				s->failed = 1;
				break;
			}
		}
		if (f < 0 || s->failed) { s->failed = 1; break; }
		/* Credit back once half the window is used (as the Swift client), so the broker never starves. */
		if (granted_back >= s->window / 2 && granted_back > 0) {
			uint8_t *b = frame_begin(&s->c, T_CREDIT, 8);
			put32(b, 1);
			put32(b + 4, (uint32_t)granted_back);
			granted_back = 0;
		}
		if (s->c.wlen && conn_flush(&s->c) != 0) { s->failed = 1; break; }
		if (!atomic_load(&s->complete) && s->distinct + s->missing >= atomic_load(&s->expected)) {
			s->last_ns = now;
			atomic_store(&s->complete, 1);
		}
	}
	if (!atomic_load(&s->complete) && s->last_ns == 0) s->last_ns = now_ns();
	atomic_store(&s->complete, 1);
	return NULL;
}

/* ---------- publisher ---------- */
typedef struct {
	conn_t c;
	long count;
	int size, window;
	double rate;
	const char *topic;
	uint64_t *sent_at;  /* per counter: send time (closed loop) or due time (open loop) */
	uint64_t *lat;      /* publish -> PUBACK, ns */
	long sent, acked, failed;
	uint64_t first_send, last_ack;
	int timed_out, broken;
} pub_t;

/* Publishes count messages with at most window unanswered; returns when every one is answered (or the deadline). */
static void pub_run(pub_t *p)
{
	uint32_t tl = (uint32_t)strlen(p->topic);
	uint32_t body = 8 + 2 + tl + 2 + (uint32_t)p->size;
	size_t flen = 6 + body;
	/* One frame built once; each message patches its publish id and header. */
	uint8_t *tmpl = xcalloc(flen, 1);
	put32(tmpl, body + 2);
	tmpl[4] = T_PUB;
	put16(tmpl + 14, (uint16_t)tl);
	memcpy(tmpl + 16, p->topic, tl);
	put16(tmpl + 16 + tl, 0); /* no headers */
	size_t poff = 18 + tl;     /* payload offset in the frame */
	memset(tmpl + poff + HEADER_BYTES, 'r', (size_t)p->size - HEADER_BYTES);
	put32(tmpl + poff, 0);     /* publisher id 0 */
	p->sent_at = xcalloc((size_t)p->count, 8);
	p->lat = xcalloc((size_t)p->count, 8);
	double interval = p->rate > 0 ? 1e9 / p->rate : 0;
	/* The open loop sleeps in ppoll until each due time: ask for no timer slack (Linux's default
	 * adds up to 50 us to every such sleep, half an interval at 10,000 msg/s), so the PUB leaves
	 * on time. Latency still counts from the due time; this keeps the generator's own lateness out. */
	if (interval > 0) (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	uint64_t start = now_ns();
	while (p->acked + p->failed < p->count) {
		uint64_t now = now_ns();
		if (now >= g_deadline) { p->timed_out = 1; atomic_store(&g_timed_out, 1); break; }
		uint64_t next_due = 0;
		while (p->sent < p->count && p->sent - p->acked - p->failed < p->window && p->c.wlen < WRITE_BATCH) {
			uint64_t t = now;
			if (interval > 0) {
				uint64_t due = start + (uint64_t)((double)p->sent * interval);
				if (due > now) { next_due = due; break; }
				t = due; /* latency counts from the due time (no coordinated omission) */
			} else {
				t = now_ns();
			}
			if (p->sent == 0) p->first_send = t;
			uint8_t *f = p->c.wbuf + p->c.wlen;
			memcpy(f, tmpl, flen);
			put64(f + 6, (uint64_t)p->sent + 1); /* publish id: strictly increasing in this session */
			put64(f + poff + 4, (uint64_t)p->sent);
			put64(f + poff + 12, t);
			p->sent_at[p->sent] = t;
			p->c.wlen += flen;
			p->sent++;
		}
		if (p->c.wlen && conn_flush(&p->c) != 0) { p->broken = 1; break; }
		/* Wait for answers: not at all when more may go out now, until the next due time in the open loop. */
		uint64_t wait = 100000000ull;
		bool can_send = p->sent < p->count && p->sent - p->acked - p->failed < p->window;
		if (can_send) {
			/* One clock reading: with two (compare, then subtract) a due time falling between them
			 * wrapped the difference to ~2^64 ns, and the publisher slept until the next PUBACK, or
			 * with nothing in flight until the deadline (CLoadGeneratorTests/openLoopNeverOversleeps). */
			uint64_t t = now_ns();
			wait = (interval > 0 && next_due > t) ? next_due - t : 0;
		}
		int r = conn_read(&p->c, wait);
		if (r < 0) { p->broken = 1; break; }
		if (r == 0) continue;
		uint64_t t = now_ns();
		uint8_t type, flags;
		const uint8_t *b;
		uint32_t blen;
		int f;
		while ((f = next_frame(&p->c, &type, &flags, &b, &blen)) == 1) {
			if (type == T_PUBACK && blen == 24) {
				uint64_t id = get64(b);
				/* Every PUB is answered exactly once (spec 4.3): an unknown or repeated id fails the run. */
				if (id == 0 || id > (uint64_t)p->sent || p->sent_at[id - 1] == 0) {
					add_error("PUBACK for unknown or already answered publish id %" PRIu64, id);
					p->broken = 1;
					break;
				}
				p->lat[p->acked++] = t - p->sent_at[id - 1];
				p->sent_at[id - 1] = 0;
				p->last_ack = t;
			} else if (type == T_PUBERR && blen >= 12) {
				char text[200];
				str16_text(b + 10, blen - 10, text, sizeof text);
				if (p->failed++ == 0) add_error("PUBERR 0x%04x: %s", get16(b + 8), text);
			} else if (common_frame(&p->c, type, b, blen) != 0) {
				p->broken = 1;
				break;
			}
		}
		if (f < 0 || p->broken) { p->broken = 1; break; }
		if (p->failed > 0 && p->acked + p->failed == p->sent) break; /* a refused publish ends the run */
	}
	free(tmpl);
}

/* ---------- scenarios ---------- */
typedef struct {
	const char *scenario;
	int subscribers;
	long count, published, acked, failed, expected_deliveries, delivered, lost, dups, ooo, corrupt;
	double pub_rate, deliv_rate, mb, ack50, ack99, ack999, e2e50, e2e99, brk, cli, elapsed;
	double hs_rate, conn50, conn99;
	int is_connect;
	char tls[16];
	int ok;
} result_t;

static void random_topic(char *out, size_t len, const char *name)
{
	uint64_t r = 0;
	RAND_bytes((unsigned char *)&r, sizeof r);
	snprintf(out, len, "bench.%s.%" PRIx64, name, r);
}

static void session_id(uint8_t s[16]) { RAND_bytes(s, 16); }

static double cpu_delta(double a, double b) { return (a < 0 || b < 0) ? -1 : b - a; }

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

/* Fills the deliveries side of the result from the subscribers. */
static void fill_deliveries(result_t *res, sub_t *subs, int k, long expected, uint64_t since)
{
	long total_lat = 0;
	uint64_t last = 0;
	for (int i = 0; i < k; i++) {
		sub_t *s = &subs[i];
		res->delivered += s->distinct;
		res->lost += expected > s->distinct ? expected - s->distinct : 0;
		res->dups += s->dups;
		res->ooo += s->ooo;
		res->corrupt += s->corrupt;
		total_lat += s->nlat;
		if (s->last_ns > last) last = s->last_ns;
		if (s->failed) add_error("subscriber %d: its connection failed", i);
		if (!atomic_load(&s->complete) || s->distinct + s->missing < expected) {
			if (atomic_load(&g_timed_out) == 0) add_error("subscriber %d: %ld of %ld messages", i, s->distinct, expected);
		}
	}
	res->expected_deliveries = expected * k;
	uint64_t *all = xcalloc((size_t)total_lat, 8);
	long n = 0;
	for (int i = 0; i < k; i++) {
		memcpy(all + n, subs[i].lat, (size_t)subs[i].nlat * 8);
		n += subs[i].nlat;
	}
	qsort(all, (size_t)n, 8, cmp_u64);
	res->e2e50 = percentile_us(all, (size_t)n, 50);
	res->e2e99 = percentile_us(all, (size_t)n, 99);
	free(all);
	if (last > since && since > 0) {
		res->deliv_rate = (double)res->delivered / ((double)(last - since) / 1e9);
		if (res->elapsed < (double)(last - since) / 1e9) res->elapsed = (double)(last - since) / 1e9;
	}
}

/* pubsub and fanout: 1 publisher, k subscribers on one topic, connected and subscribed before the first publish. */
static int run_pubsub(result_t *res, const char *name, long count, int k)
{
	char topic[96];
	random_topic(topic, sizeof topic, name);
	uint8_t session[16], none[16] = { 0 };
	session_id(session);
	sub_t *subs = xcalloc((size_t)(k > 0 ? k : 1), sizeof(sub_t));
	pub_t pub;
	memset(&pub, 0, sizeof pub);
	pub.count = count; pub.size = o_size; pub.window = o_window; pub.rate = o_rate; pub.topic = topic;
	res->scenario = name;
	res->subscribers = k;
	res->count = count;
	int setup_failed = 0;
	for (int i = 0; i < k && !setup_failed; i++) {
		subs[i].idx = i; subs[i].window = o_window; subs[i].count = count;
		atomic_store(&subs[i].expected, count);
		if (sub_open(&subs[i], topic, 0, none) != 0) setup_failed = 1;
	}
	char err[300];
	if (!setup_failed && relay_connect(&pub.c, session, err, sizeof err) != 0) {
		add_error("publisher: %s", err);
		setup_failed = 1;
	}
	if (setup_failed) {
		for (int i = 0; i < k; i++) conn_free(&subs[i].c);
		conn_free(&pub.c);
		return 3;
	}
	snprintf(res->tls, sizeof res->tls, "%s", pub.c.tls);
	for (int i = 0; i < k; i++) pthread_create(&subs[i].thr, NULL, sub_run, &subs[i]);
	double brk0 = proc_cpu_s(o_broker_pid), cli0 = self_cpu_s();
	pub_run(&pub);
	for (int i = 0; i < k; i++) atomic_store(&subs[i].expected, pub.acked);
	/* Wait for the subscribers (they stop themselves at the deadline). */
	for (;;) {
		int done = 1;
		for (int i = 0; i < k; i++) done &= atomic_load(&subs[i].complete);
		if (done || now_ns() >= g_deadline) break;
		sleep_ns(1000000);
	}
	double brk1 = proc_cpu_s(o_broker_pid), cli1 = self_cpu_s();
	sleep_ns(200000000ull); /* a short grace so late duplicates still count against the run */
	for (int i = 0; i < k; i++) atomic_store(&subs[i].stop, 1);
	for (int i = 0; i < k; i++) pthread_join(subs[i].thr, NULL);
	res->published = pub.sent;
	res->acked = pub.acked;
	res->failed = pub.failed;
	if (pub.broken) add_error("publisher: its connection failed after %ld acknowledgements", pub.acked);
	if (pub.last_ack > pub.first_send && pub.first_send > 0) {
		res->elapsed = (double)(pub.last_ack - pub.first_send) / 1e9;
		res->pub_rate = (double)pub.acked / res->elapsed;
	}
	qsort(pub.lat, (size_t)pub.acked, 8, cmp_u64);
	res->ack50 = percentile_us(pub.lat, (size_t)pub.acked, 50);
	res->ack99 = percentile_us(pub.lat, (size_t)pub.acked, 99);
	res->ack999 = percentile_us(pub.lat, (size_t)pub.acked, 99.9);
	fill_deliveries(res, subs, k, pub.acked, pub.first_send);
	res->mb = res->pub_rate * o_size / 1e6;
	res->brk = cpu_delta(brk0, brk1);
	res->cli = cli1 - cli0;
	relay_close(&pub.c);
	for (int i = 0; i < k; i++) {
		relay_close(&subs[i].c);
		free(subs[i].seen);
		free(subs[i].lat);
	}
	free(subs);
	free(pub.sent_at);
	free(pub.lat);
	return 0;
}

/* replay: fill count messages, then one subscriber reads them back from the earliest. */
static int run_replay(result_t *res)
{
	char topic[96], err[300];
	random_topic(topic, sizeof topic, "replay");
	uint8_t session[16], none[16] = { 0 };
	session_id(session);
	pub_t pub;
	memset(&pub, 0, sizeof pub);
	pub.count = o_count; pub.size = o_size; pub.window = o_window; pub.topic = topic;
	res->scenario = "replay";
	res->subscribers = 1;
	res->count = o_count;
	if (relay_connect(&pub.c, session, err, sizeof err) != 0) {
		add_error("publisher: %s", err);
		return 3;
	}
	snprintf(res->tls, sizeof res->tls, "%s", pub.c.tls);
	pub_run(&pub);
	relay_close(&pub.c);
	res->published = pub.sent;
	res->acked = pub.acked;
	res->failed = pub.failed;
	if (pub.broken) add_error("publisher: its connection failed after %ld acknowledgements", pub.acked);
	qsort(pub.lat, (size_t)pub.acked, 8, cmp_u64);
	res->ack50 = percentile_us(pub.lat, (size_t)pub.acked, 50);
	res->ack99 = percentile_us(pub.lat, (size_t)pub.acked, 99);
	res->ack999 = percentile_us(pub.lat, (size_t)pub.acked, 99.9);
	if (pub.last_ack > pub.first_send && pub.first_send > 0)
		res->pub_rate = (double)pub.acked / ((double)(pub.last_ack - pub.first_send) / 1e9);
	sub_t sub;
	memset(&sub, 0, sizeof sub);
	sub.window = o_window; sub.count = o_count;
	atomic_store(&sub.expected, pub.acked);
	double brk0 = proc_cpu_s(o_broker_pid), cli0 = self_cpu_s();
	uint64_t began = now_ns(); /* from the connect, as relayctl bench replay */
	if (sub_open(&sub, topic, 1, none) != 0) { conn_free(&sub.c); return 3; }
	pthread_create(&sub.thr, NULL, sub_run, &sub);
	while (!atomic_load(&sub.complete) && now_ns() < g_deadline) sleep_ns(1000000);
	double brk1 = proc_cpu_s(o_broker_pid), cli1 = self_cpu_s();
	sleep_ns(200000000ull);
	atomic_store(&sub.stop, 1);
	pthread_join(sub.thr, NULL);
	fill_deliveries(res, &sub, 1, pub.acked, began);
	res->mb = res->deliv_rate * o_size / 1e6;
	res->e2e50 = res->e2e99 = 0; /* send-to-delivery is the message's age here, not a latency */
	res->brk = cpu_delta(brk0, brk1);
	res->cli = cli1 - cli0;
	relay_close(&sub.c);
	free(sub.seen);
	free(sub.lat);
	free(pub.sent_at);
	free(pub.lat);
	return 0;
}

/* connect: open and close count connections, concurrency at a time; each a full mTLS handshake + HELLO/WELCOME. */
static atomic_long g_tickets;
typedef struct { uint64_t *lat; long n; pthread_t thr; } connector_t;

static void *connector_run(void *arg)
{
	connector_t *w = arg;
	uint8_t none[16] = { 0 };
	char err[300];
	while (now_ns() < g_deadline && atomic_fetch_add(&g_tickets, 1) < o_count) {
		conn_t c;
		uint64_t t0 = now_ns();
		if (relay_connect(&c, none, err, sizeof err) != 0) {
			add_error("connect failed: %s", err);
			conn_free(&c);
			continue;
		}
		w->lat[w->n++] = now_ns() - t0;
		relay_close(&c);
	}
	return NULL;
}

static int run_connect(result_t *res)
{
	res->scenario = "connect";
	res->is_connect = 1;
	res->count = o_count;
	snprintf(res->tls, sizeof res->tls, "TLSv1.3");
	connector_t *w = xcalloc((size_t)o_concurrency, sizeof *w);
	double brk0 = proc_cpu_s(o_broker_pid), cli0 = self_cpu_s();
	uint64_t t0 = now_ns();
	for (int i = 0; i < o_concurrency; i++) {
		w[i].lat = xcalloc((size_t)o_count, 8);
		pthread_create(&w[i].thr, NULL, connector_run, &w[i]);
	}
	long done = 0;
	for (int i = 0; i < o_concurrency; i++) { pthread_join(w[i].thr, NULL); done += w[i].n; }
	double secs = (double)(now_ns() - t0) / 1e9;
	res->brk = cpu_delta(brk0, proc_cpu_s(o_broker_pid));
	res->cli = self_cpu_s() - cli0;
	res->elapsed = secs;
	res->hs_rate = secs > 0 ? (double)done / secs : 0;
	uint64_t *all = xcalloc((size_t)done, 8);
	long n = 0;
	for (int i = 0; i < o_concurrency; i++) { memcpy(all + n, w[i].lat, (size_t)w[i].n * 8); n += w[i].n; free(w[i].lat); }
	qsort(all, (size_t)n, 8, cmp_u64);
	res->conn50 = percentile_us(all, (size_t)n, 50);
	res->conn99 = percentile_us(all, (size_t)n, 99);
	free(all);
	free(w);
	res->published = 0;
	if (done < o_count && g_nerrors == 0) {
		atomic_store(&g_timed_out, 1);
		add_error("only %ld of %ld connections within %.0f s", done, o_count, o_timeout);
	}
	res->acked = done; /* not printed; done == count is part of ok */
	return 0;
}

/* ---------- output ---------- */
static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\') printf("\\%c", *s);
		else if ((unsigned char)*s < 32) printf("\\u%04x", *s);
		else putchar(*s);
	}
	putchar('"');
}

static void print_result(const result_t *r)
{
	int timed_out = atomic_load(&g_timed_out);
	printf("{\"scenario\":\"%s\",\"client\":\"relay-c\",\"durability\":", r->scenario);
	json_string(o_durability);
	printf(",\"tls\":\"%s\",\"count\":%ld", r->tls[0] ? r->tls : "-", r->count);
	if (r->is_connect) {
		printf(",\"concurrency\":%d,\"handshakes_per_sec\":%.1f,\"connect_p50_us\":%.1f,\"connect_p99_us\":%.1f",
		       o_concurrency, r->hs_rate, r->conn50, r->conn99);
	} else {
		printf(",\"size\":%d,\"publishers\":1,\"subscribers\":%d,\"window\":%d,\"published\":%ld,\"acked\":%ld,"
		       "\"expected_deliveries\":%ld,\"delivered\":%ld", o_size, r->subscribers, o_window, r->published, r->acked,
		       r->expected_deliveries, r->delivered);
		if (o_rate > 0) printf(",\"offered_msgs_per_sec\":%.1f", o_rate);
		printf(",\"published_msgs_per_sec\":%.1f,\"delivered_msgs_per_sec\":%.1f,\"mb_per_sec\":%.3f,"
		       "\"publish_ack_p50_us\":%.1f,\"publish_ack_p99_us\":%.1f,\"publish_ack_p999_us\":%.1f,"
		       "\"e2e_p50_us\":%.1f,\"e2e_p99_us\":%.1f,\"lost\":%ld,\"duplicated\":%ld,\"out_of_order\":%ld,"
		       "\"corrupt\":%ld,\"failed_publishes\":%ld",
		       r->pub_rate, r->deliv_rate, r->mb, r->ack50, r->ack99, r->ack999, r->e2e50, r->e2e99, r->lost, r->dups,
		       r->ooo, r->corrupt, r->failed);
	}
	if (r->brk >= 0) printf(",\"broker_cpu_s\":%.3f", r->brk);
	printf(",\"client_cpu_s\":%.3f,\"elapsed_s\":%.3f,\"timed_out\":%s,\"errors\":[", r->cli, r->elapsed,
	       timed_out ? "true" : "false");
	for (int i = 0; i < g_nerrors; i++) {
		if (i) putchar(',');
		json_string(g_errors[i]);
	}
	printf("],\"ok\":%s}\n", r->ok ? "true" : "false");
	fflush(stdout);
	long per = r->is_connect ? r->acked : r->published;
	if (per > 0 && r->brk >= 0)
		fprintf(stderr, "relay_bench %s: broker CPU %.1f us, client CPU %.1f us per %s\n", r->scenario,
			r->brk * 1e6 / (double)per, r->cli * 1e6 / (double)per, r->is_connect ? "connection" : "message");
}

static void usage(void)
{
	fprintf(stderr,
		"usage: relay_bench pubsub|fanout|replay|connect --port P --ca F --cert F --key F [--host 127.0.0.1]\n"
		"         [--count N] [--size B] [--window W] [--subscribers K] [--rate MSG/S] [--warmup N]\n"
		"         [--concurrency C] [--broker-pid PID] [--durability S] [--timeout SECONDS] [--fault missing|duplicate]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 2 || argv[1][0] == '-') usage();
	o_scenario = argv[1];
	static const struct option opts[] = {
		{ "host", 1, 0, 'h' }, { "port", 1, 0, 'p' }, { "ca", 1, 0, 'a' }, { "cert", 1, 0, 'c' }, { "key", 1, 0, 'k' },
		{ "count", 1, 0, 'n' }, { "size", 1, 0, 's' }, { "window", 1, 0, 'w' }, { "subscribers", 1, 0, 'K' },
		{ "rate", 1, 0, 'r' }, { "timeout", 1, 0, 'T' }, { "warmup", 1, 0, 'W' }, { "concurrency", 1, 0, 'C' },
		{ "broker-pid", 1, 0, 'P' }, { "durability", 1, 0, 'd' }, { "fault", 1, 0, 'F' }, { 0, 0, 0, 0 },
	};
	int ch;
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'h': o_host = optarg; break;
		case 'p': o_port = atoi(optarg); break;
		case 'a': o_ca = optarg; break;
		case 'c': o_cert = optarg; break;
		case 'k': o_key = optarg; break;
		case 'n': o_count = atol(optarg); break;
		case 's': o_size = atoi(optarg); break;
		case 'w': o_window = atoi(optarg); break;
		case 'K': o_subs = atoi(optarg); break;
		case 'r': o_rate = atof(optarg); break;
		case 'T': o_timeout = atof(optarg); break;
		case 'W': o_warmup = atol(optarg); break;
		case 'C': o_concurrency = atoi(optarg); break;
		case 'P': o_broker_pid = atoi(optarg); break;
		case 'd': o_durability = optarg; break;
		case 'F':
			if (!strcmp(optarg, "missing")) o_fault = 1;
			else if (!strcmp(optarg, "duplicate")) o_fault = 2;
			else usage();
			break;
		default: usage();
		}
	}
	bool load = !strcmp(o_scenario, "pubsub") || !strcmp(o_scenario, "fanout") || !strcmp(o_scenario, "replay");
	if (!load && strcmp(o_scenario, "connect")) usage();
	if (o_subs < 0) o_subs = !strcmp(o_scenario, "fanout") ? 4 : 1;
	if (!o_ca || !o_cert || !o_key || o_port <= 0 || o_count < 1 || o_window < 1 || o_size < HEADER_BYTES ||
	    o_size > 1048576 || o_subs < 0 || o_subs > MAX_SUBS || o_rate < 0 || o_timeout <= 0 || o_concurrency < 1 || o_warmup < 0) {
		fprintf(stderr, "relay_bench: need --port, --ca, --cert, --key; --count, --window >= 1; --size %d..1048576; "
			"--subscribers 0..%d\n", HEADER_BYTES, MAX_SUBS);
		usage();
	}
	signal(SIGPIPE, SIG_IGN);
	g_ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(g_ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(g_ctx, TLS1_3_VERSION);
	/* Full handshakes only: no session cache, no tickets. */
	SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(g_ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(g_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_load_verify_locations(g_ctx, o_ca, NULL) != 1 ||
	    SSL_CTX_use_certificate_chain_file(g_ctx, o_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(g_ctx, o_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(g_ctx) != 1) {
		char text[300];
		ssl_error_text(text, sizeof text, "cannot load --ca/--cert/--key");
		fprintf(stderr, "relay_bench: %s\n", text);
		return 2;
	}
	SSL_CTX_set_verify(g_ctx, SSL_VERIFY_PEER, NULL);
	/* Send what Relay's Swift client sends: the leaf and its intermediates,
	 * never the root (the broker already has it; docs/security.md). Without
	 * this OpenSSL completes the chain from --ca in every handshake,
	 * verifying it on the client and sending the root, which relayd then
	 * decodes too: about 1.5 M more instructions per handshake on relayd's
	 * side than with the Swift client (docs/performance-history.md, "mTLS handshakes
	 * (wave 15)"). The chain is built once here, without the root. */
	SSL_CTX_build_cert_chain(g_ctx, SSL_BUILD_CHAIN_FLAG_NO_ROOT | SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR);
	ERR_clear_error();
	SSL_CTX_set_mode(g_ctx, SSL_MODE_NO_AUTO_CHAIN);

	result_t res;
	memset(&res, 0, sizeof res);
	int rc = 0;
	if (load && o_warmup > 0 && strcmp(o_scenario, "replay")) {
		/* An unmeasured 1:1 run on its own topic first, as relayctl bench --warmup. */
		int fault = o_fault;
		double rate = o_rate;
		o_fault = 0;
		o_rate = 0;
		g_deadline = now_ns() + 60000000000ull;
		result_t warm;
		memset(&warm, 0, sizeof warm);
		run_pubsub(&warm, "warmup", o_warmup, 1);
		o_fault = fault;
		o_rate = rate;
		g_nerrors = 0;
		atomic_store(&g_timed_out, 0);
	}
	g_deadline = now_ns() + (uint64_t)(o_timeout * 1e9);
	if (!strcmp(o_scenario, "replay")) rc = run_replay(&res);
	else if (!strcmp(o_scenario, "connect")) rc = run_connect(&res);
	else rc = run_pubsub(&res, o_scenario, o_count, o_subs);
	if (!res.scenario) res.scenario = o_scenario;
	if (res.is_connect)
		res.ok = rc == 0 && g_nerrors == 0 && !atomic_load(&g_timed_out) && res.acked == o_count;
	else
		res.ok = rc == 0 && g_nerrors == 0 && !atomic_load(&g_timed_out) && res.lost == 0 && res.dups == 0 &&
			 res.ooo == 0 && res.corrupt == 0 && res.failed == 0 && res.acked == res.count &&
			 res.delivered == res.expected_deliveries;
	print_result(&res);
	SSL_CTX_free(g_ctx);
	if (rc == 3) return 3;
	return res.ok ? 0 : 1;
}
