/*
 * relay_churn.c - probes of requests that are cheap for a client and dear for
 * relayd (docs/testing.md, "Cheap requests, expensive broker"), written on
 * relay_bench_wire.h (the connection and framing code of relay_bench.c).
 *
 *   relay_churn [common] warm N PREFIX          one PUB to each of PREFIX.0 ... PREFIX.<N-1>, every PUBACK awaited
 *   relay_churn [common] churn SECONDS|nCOUNT FILTER [DURABLE TOPIC]
 *                                               SUB (id 1, FILTER, latest, credit 0) then UNSUB 1, pipelined
 *                                               (256 SUBs unanswered at most); prints SUB+UNSUB pairs per second.
 *                                               FILTER "earliest:F" subscribes to F from the earliest message
 *                                               (credit 1), one SUB at a time
 *                                               With DURABLE: one message on TOPIC is read and acknowledged by
 *                                               the UNSUB first, so each later SUB resumes a cursor
 *   relay_churn [common] pubs SECONDS TOPIC WINDOW
 *                                               the innocent publisher: 1-byte PUBs, WINDOW unanswered; msgs/s, p50/p99 PUB->PUBACK
 *   relay_churn [common] idle K N [WINDOW]      K subscriptions s.0 ... s.<K-1> on one connection, then N PUBs to s.0,
 *                                               every MSG read (WINDOW PUBs unanswered, default 1000)
 *   relay_churn [common] probe FILTER          SUB FILTER from earliest (credit 1), then a PING: the time to the
 *                                               SUBACK and from it to the PONG (what the SUB's first delivery turn took)
 *   common: --port P --ca F --cert F --key F (before the mode), e.g. from `relayctl bench serve`
 *
 * Build: cc -O2 -o relay_churn relay_churn.c -lssl -lcrypto -lpthread
 */
#include "relay_bench_wire.h"

static void setup_ctx(void)
{
	g_ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_min_proto_version(g_ctx, TLS1_3_VERSION);
	SSL_CTX_set_session_cache_mode(g_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(g_ctx, SSL_OP_NO_TICKET);
	SSL_CTX_set_mode(g_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_load_verify_locations(g_ctx, o_ca, NULL) != 1 || SSL_CTX_use_certificate_chain_file(g_ctx, o_cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(g_ctx, o_key, SSL_FILETYPE_PEM) != 1) { fprintf(stderr, "bad pki\n"); exit(2); }
}

static void put_pub(conn_t *c, uint64_t id, const char *topic)
{
	uint32_t tl = (uint32_t)strlen(topic);
	uint8_t *b = frame_begin(c, T_PUB, 8 + 2 + tl + 2 + 1);
	put64(b, id); put16(b + 8, (uint16_t)tl); memcpy(b + 10, topic, tl); put16(b + 10 + tl, 0); b[12 + tl] = 'x';
}

static void die_errors(const char *what) { fprintf(stderr, "%s: %s\n", what, g_nerrors ? g_errors[g_nerrors - 1] : "?"); exit(1); }

int main(int argc, char **argv)
{
	int i = 1;
	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (!strcmp(argv[i], "--port")) o_port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--ca")) o_ca = argv[i + 1];
		else if (!strcmp(argv[i], "--cert")) o_cert = argv[i + 1];
		else if (!strcmp(argv[i], "--key")) o_key = argv[i + 1];
	}
	if (i >= argc) return 2;
	const char *mode = argv[i];
	setup_ctx();
	g_deadline = now_ns() + 600000000000ull;
	conn_t c = {0};
	uint8_t session[16] = {0};
	char err[300];
	if (relay_connect(&c, session, err, sizeof err) != 0) { fprintf(stderr, "%s\n", err); return 3; }
	uint8_t type, flags; const uint8_t *body; uint32_t blen;
	if (!strcmp(mode, "warm")) {
		long n = atol(argv[i + 1]);
		char topic[256];
		long acked = 0;
		for (long k = 0; k < n; k++) {
			snprintf(topic, sizeof topic, "%s.%ld", argv[i + 2], k);
			put_pub(&c, (uint64_t)k + 1, topic);
			if (c.wlen > WRITE_BATCH) { if (conn_flush(&c)) die_errors("flush"); }
		}
		if (conn_flush(&c)) die_errors("flush");
		while (acked < n) {
			if (read_frame(&c, &type, &flags, &body, &blen) != 1) die_errors("read");
			if (type == T_PUBACK) acked++; else if (common_frame(&c, type, body, blen)) die_errors("frame");
		}
		printf("warmed %ld\n", acked);
	} else if (!strcmp(mode, "churn")) {
		/* SECONDS, or nCOUNT: stop after COUNT SUB+UNSUB pairs */
		long maxops = argv[i + 1][0] == 'n' ? atol(argv[i + 1] + 1) : -1;
		double secs = maxops > 0 ? 600 : atof(argv[i + 1]);
		const char *filter = argv[i + 2];
		/* "earliest:FILTER" subscribes from the earliest message (credit 1) instead of the latest (credit 0) */
		int earliest = !strncmp(filter, "earliest:", 9);
		if (earliest) filter += 9;
		uint32_t tl = (uint32_t)strlen(filter);
		uint64_t end = now_ns() + (uint64_t)(secs * 1e9);
		long sent = 0, acks = 0;
		const long inflight = earliest ? 1 : 256; /* an earliest SUB waits for its SUBACK: its replay turn runs before the UNSUB is read */
		const char *durable = i + 3 < argc ? argv[i + 3] : "";
		uint32_t dl = (uint32_t)strlen(durable);
		if (dl) {
			/* Give the durable a cursor: one message, read, then UNSUB commits it. Every later SUB resumes it. */
			put_pub(&c, 1, argv[i + 4]);
			uint8_t *b = frame_begin(&c, T_SUB, 4 + 2 + tl + 1 + 8 + 2 + dl + 4 + 1);
			put32(b, 1); put16(b + 4, (uint16_t)tl); memcpy(b + 6, filter, tl); b += 6 + tl;
			b[0] = 1; put64(b + 1, 0); put16(b + 9, (uint16_t)dl); memcpy(b + 11, durable, dl); b += dl;
			put32(b + 11, 1); b[15] = 0;
			if (conn_flush(&c)) die_errors("flush");
			for (;;) {
				if (read_frame(&c, &type, &flags, &body, &blen) != 1) die_errors("read");
				if (type == T_MSG) break;
				if (type == T_SUBACK && get16(body + 4) != 0) { fprintf(stderr, "durable SUB refused\n"); return 1; }
			}
			b = frame_begin(&c, 0x22, 4); put32(b, 1);
		}
		uint64_t t0 = now_ns();
		while (now_ns() < end && (maxops < 0 || acks < maxops)) {
			while (sent - acks < inflight && c.wlen < WRITE_BATCH && (maxops < 0 || sent < maxops)) {
				uint8_t *b = frame_begin(&c, T_SUB, 4 + 2 + tl + 1 + 8 + 2 + dl + 4 + 1);
				put32(b, 1); put16(b + 4, (uint16_t)tl); memcpy(b + 6, filter, tl); b += 6 + tl;
				b[0] = (uint8_t)earliest; put64(b + 1, 0); put16(b + 9, (uint16_t)dl); memcpy(b + 11, durable, dl); b += dl;
				put32(b + 11, (uint32_t)earliest); b[15] = 0;
				b = frame_begin(&c, 0x22, 4); put32(b, 1);
				sent++;
			}
			if (conn_flush(&c)) die_errors("flush");
			if (conn_read(&c, 100000000ull) < 0) die_errors("read");
			int f;
			while ((f = next_frame(&c, &type, &flags, &body, &blen)) == 1) {
				if (type == T_SUBACK) { if (get16(body + 4) != 0) { char t[200]; str16_text(body + 14, blen - 14, t, sizeof t); fprintf(stderr, "SUB refused 0x%04x %s\n", get16(body + 4), t); return 1; } acks++; }
				else if (type == T_PUBACK || type == T_MSG) continue;
				else if (common_frame(&c, type, body, blen)) die_errors("frame");
			}
			if (f < 0) die_errors("parse");
		}
		printf("{\"churn_ops_per_sec\":%.0f,\"ops\":%ld}\n", acks / ((now_ns() - t0) / 1e9), acks);
	} else if (!strcmp(mode, "idle")) {
		/* idle K N: K subscriptions on s.<i> (credit 2^31), then N PUBs to s.0 (window 1000); every MSG read */
		long k = atol(argv[i + 1]), n = atol(argv[i + 2]), win = i + 3 < argc ? atol(argv[i + 3]) : 1000;
		char topic[64];
		for (long j = 0; j < k; j++) {
			snprintf(topic, sizeof topic, "s.%ld", j);
			uint32_t tl = (uint32_t)strlen(topic);
			uint8_t *b = frame_begin(&c, T_SUB, 4 + 2 + tl + 1 + 8 + 2 + 4 + 1);
			put32(b, (uint32_t)j + 1); put16(b + 4, (uint16_t)tl); memcpy(b + 6, topic, tl); b += 6 + tl;
			b[0] = 0; put64(b + 1, 0); put16(b + 9, 0); put32(b + 11, 0x7fffffff); b[15] = 0;
		}
		if (conn_flush(&c)) die_errors("flush");
		for (long got = 0; got < k;) {
			if (read_frame(&c, &type, &flags, &body, &blen) != 1) die_errors("read");
			if (type == T_SUBACK) { if (get16(body + 4)) { fprintf(stderr, "refused\n"); return 1; } got++; }
		}
		long sent = 0, acked = 0, msgs = 0;
		uint64_t t0 = now_ns();
		while (acked < n || msgs < n) {
			while (sent < n && sent - acked < win) { sent++; put_pub(&c, (uint64_t)sent, "s.0"); }
			if (conn_flush(&c)) die_errors("flush");
			if (conn_read(&c, 100000000ull) < 0) die_errors("read");
			int f;
			while ((f = next_frame(&c, &type, &flags, &body, &blen)) == 1) {
				if (type == T_PUBACK) acked++; else if (type == T_MSG) msgs++;
				else if (common_frame(&c, type, body, blen)) die_errors("frame");
			}
			if (f < 0) die_errors("parse");
		}
		printf("{\"subs\":%ld,\"msgs\":%ld,\"msgs_per_sec\":%.0f}\n", k, msgs, msgs / ((now_ns() - t0) / 1e9));
	} else if (!strcmp(mode, "probe")) {
		/* probe FILTER: SUB FILTER from earliest (credit 1), then PING; prints the time to SUBACK and to PONG */
		const char *filter = argv[i + 1];
		uint32_t tl = (uint32_t)strlen(filter);
		uint64_t t0 = now_ns(), tack = 0;
		uint8_t *b = frame_begin(&c, T_SUB, 4 + 2 + tl + 1 + 8 + 2 + 4 + 1);
		put32(b, 1); put16(b + 4, (uint16_t)tl); memcpy(b + 6, filter, tl); b += 6 + tl;
		b[0] = 1; put64(b + 1, 0); put16(b + 9, 0); put32(b + 11, 1); b[15] = 0;
		if (conn_flush(&c)) die_errors("flush");
		for (;;) {
			if (read_frame(&c, &type, &flags, &body, &blen) != 1) die_errors("read");
			if (type == T_SUBACK) { tack = now_ns(); break; }
		}
		b = frame_begin(&c, T_PING, 8); put64(b, 7);
		if (conn_flush(&c)) die_errors("flush");
		for (;;) {
			if (read_frame(&c, &type, &flags, &body, &blen) != 1) die_errors("read");
			if (type == T_PONG) break;
		}
		printf("{\"suback_ms\":%.1f,\"pong_after_suback_ms\":%.1f}\n", (tack - t0) / 1e6, (now_ns() - tack) / 1e6);
	} else if (!strcmp(mode, "pubs")) {
		double secs = atof(argv[i + 1]);
		const char *topic = argv[i + 2];
		long window = atol(argv[i + 3]);
		uint64_t start = now_ns(), end = start + (uint64_t)(secs * 1e9);
		long cap = 50000000; uint64_t *sentat = xcalloc((size_t)cap, 8); uint64_t *lat = xcalloc((size_t)cap, 8);
		long sent = 0, acked = 0;
		while (now_ns() < end && sent < cap) {
			uint64_t now = now_ns();
			while (sent - acked < window && sent < cap) { sentat[sent] = now; sent++; put_pub(&c, (uint64_t)sent, topic); }
			if (conn_flush(&c)) die_errors("flush");
			if (conn_read(&c, 100000000ull) < 0) die_errors("read");
			uint64_t t = now_ns();
			int f;
			while ((f = next_frame(&c, &type, &flags, &body, &blen)) == 1) {
				if (type == T_PUBACK) { uint64_t id = get64(body); lat[acked++] = t - sentat[id - 1]; }
				else if (common_frame(&c, type, body, blen)) die_errors("frame");
			}
			if (f < 0) die_errors("parse");
		}
		double el = (now_ns() - start) / 1e9;
		qsort(lat, (size_t)acked, 8, cmp_u64);
		printf("{\"msgs_per_sec\":%.0f,\"ack_p50_us\":%.0f,\"ack_p99_us\":%.0f,\"ack_max_us\":%.0f,\"acked\":%ld}\n", acked / el,
		       percentile_us(lat, (size_t)acked, 50), percentile_us(lat, (size_t)acked, 99), percentile_us(lat, (size_t)acked, 100), acked);
	}
	relay_close(&c);
	return 0;
}
