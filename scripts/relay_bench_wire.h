/*
 * relay_bench_wire.h - the connection and wire half of relay_bench.c (one
 * translation unit: relay_bench.c includes this file, so the build is still
 * `cc -O2 -Wall -o relay_bench relay_bench.c -lssl -lcrypto -lpthread`).
 * TCP + TLS 1.3 with non-blocking sockets, buffered frames written many per
 * SSL_write and parsed in place from large SSL_read buffers, HELLO/WELCOME and
 * BYE (Protocol/relay-v1.md sections 2-4), the options and the error list.
 */
#ifndef RELAY_BENCH_WIRE_H
#define RELAY_BENCH_WIRE_H
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HEADER_BYTES 20          /* BenchPayload.headerSize */
#define MAX_FRAME 1114112u       /* what we announce in HELLO (the spec's default) */
#define WRITE_BATCH (256 * 1024) /* bytes of frames gathered before one SSL_write */
#define READ_CHUNK (256 * 1024)  /* free space kept for each SSL_read */
#define MAX_SUBS 64

enum { T_HELLO = 0x01, T_WELCOME = 0x02, T_PUB = 0x10, T_PUBACK = 0x11, T_PUBERR = 0x12, T_SUB = 0x20,
       T_SUBACK = 0x21, T_CREDIT = 0x23, T_MSG = 0x30, T_PING = 0x40, T_PONG = 0x41, T_ERR = 0x50, T_BYE = 0x51 };

/* ---------- options ---------- */
static const char *o_scenario;
static const char *o_host = "127.0.0.1";
static int o_port;
static const char *o_ca, *o_cert, *o_key;
static long o_count = 100000;
static int o_size = 128;
static int o_window = 1000;
static int o_subs = -1;
static double o_rate;
static double o_timeout = 120;
static long o_warmup;
static int o_concurrency = 8;
static int o_broker_pid;
static const char *o_durability = "unknown";
static int o_fault; /* 0 none, 1 missing, 2 duplicate */

static SSL_CTX *g_ctx;
static uint64_t g_deadline;
static atomic_int g_timed_out;

/* ---------- small helpers ---------- */
static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = (uint8_t)v; }
static void put64(uint8_t *p, uint64_t v) { put32(p, (uint32_t)(v >> 32)); put32(p + 4, (uint32_t)v); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) << 32 | get32(p + 4); }

static void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size);
	if (!p) { fprintf(stderr, "relay_bench: out of memory\n"); exit(3); }
	return p;
}

/* Up to 8 errors of the run, reported in "errors". */
static pthread_mutex_t err_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_errors[8][256];
static int g_nerrors;

static void add_error(const char *fmt, ...)
{
	char text[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&err_mu);
	if (g_nerrors < 8) snprintf(g_errors[g_nerrors++], sizeof g_errors[0], "%s", text);
	pthread_mutex_unlock(&err_mu);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest rank over every sample (sorted in place), in microseconds; 0 when there is none. */
static double percentile_us(uint64_t *v, size_t n, double p)
{
	if (n == 0) return 0;
	size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999999);
	if (rank < 1) rank = 1;
	if (rank > n) rank = n;
	return (double)v[rank - 1] / 1000.0;
}

/* user + system CPU seconds of a process from /proc/<pid>/stat (fields 14, 15), as relayctl bench reads it. */
static double proc_cpu_s(int pid)
{
	if (pid <= 0) return -1;
	char path[64], buf[2048];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f) return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	char *p = strrchr(buf, ')');
	if (!p) return -1;
	unsigned long long ut = 0, st = 0;
	/* after ") ": state, then fields 4..13, then utime, stime */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2) return -1;
	long tck = sysconf(_SC_CLK_TCK);
	return (double)(ut + st) / (double)(tck > 0 ? tck : 100);
}

static double self_cpu_s(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---------- one connection: TCP + TLS 1.3, buffered frames ---------- */
typedef struct {
	int fd;
	SSL *ssl;
	uint8_t *rbuf;
	size_t rcap, roff, rlen; /* unparsed bytes are rbuf[roff..rlen) */
	uint8_t *wbuf;
	size_t wcap, wlen;
	char tls[16];
} conn_t;

static void ssl_error_text(char *out, size_t len, const char *what)
{
	unsigned long e = ERR_get_error();
	char detail[200] = "no OpenSSL error";
	if (e) ERR_error_string_n(e, detail, sizeof detail);
	snprintf(out, len, "%s: %s (errno %d %s)", what, detail, errno, strerror(errno));
	ERR_clear_error();
}

/* Waits for the socket (POLLIN/POLLOUT) for at most timeout_ns, and never past `limit`. 1 ready, 0 not. */
static int wait_fd_until(int fd, short events, uint64_t timeout_ns, uint64_t limit)
{
	uint64_t now = now_ns();
	if (now >= limit) return 0;
	if (timeout_ns > limit - now) timeout_ns = limit - now;
	struct pollfd p = { fd, events, 0 };
	struct timespec ts = { (time_t)(timeout_ns / 1000000000ull), (long)(timeout_ns % 1000000000ull) };
	int r = ppoll(&p, 1, &ts, NULL);
	return r > 0;
}

static int wait_fd(int fd, short events, uint64_t timeout_ns) { return wait_fd_until(fd, events, timeout_ns, g_deadline); }

static int conn_open(conn_t *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof *c);
	c->fd = -1;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;
	char port[16];
	snprintf(port, sizeof port, "%d", o_port);
	if (getaddrinfo(o_host, port, &hints, &ai) != 0 || !ai) {
		snprintf(err, errlen, "cannot resolve %s", o_host);
		return -1;
	}
	c->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		snprintf(err, errlen, "cannot connect to %s:%d: %s", o_host, o_port, strerror(errno));
		freeaddrinfo(ai);
		if (c->fd >= 0) close(c->fd);
		c->fd = -1;
		return -1;
	}
	freeaddrinfo(ai);
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	c->ssl = SSL_new(g_ctx);
	SSL_set_fd(c->ssl, c->fd);
	/* The server certificate must name --host: an IP SAN for an address, else a DNS name (and SNI). */
	unsigned char addr[16];
	if (inet_pton(AF_INET, o_host, addr) == 1 || inet_pton(AF_INET6, o_host, addr) == 1) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), o_host);
	} else {
		SSL_set1_host(c->ssl, o_host);
		SSL_set_tlsext_host_name(c->ssl, o_host);
	}
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(c->ssl);
		if (r == 1) break;
		int e = SSL_get_error(c->ssl, r);
		if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) && now_ns() < g_deadline) {
			wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 100000000ull);
			continue;
		}
		long v = SSL_get_verify_result(c->ssl);
		char what[160];
		snprintf(what, sizeof what, "TLS handshake with %s:%d failed%s%s", o_host, o_port,
			 v != X509_V_OK ? ", certificate: " : "", v != X509_V_OK ? X509_verify_cert_error_string(v) : "");
		ssl_error_text(err, errlen, what);
		return -1;
	}
	snprintf(c->tls, sizeof c->tls, "%s", SSL_get_version(c->ssl));
	c->rcap = 2 * READ_CHUNK;
	c->rbuf = xcalloc(c->rcap, 1);
	c->wcap = WRITE_BATCH + MAX_FRAME;
	c->wbuf = xcalloc(c->wcap, 1);
	return 0;
}

static void conn_free(conn_t *c)
{
	if (c->ssl) SSL_free(c->ssl);
	if (c->fd >= 0) close(c->fd);
	free(c->rbuf);
	free(c->wbuf);
	memset(c, 0, sizeof *c);
	c->fd = -1;
}

/* Writes everything buffered (partial writes resume) before `limit`; errors are reported unless quiet. 0 ok, -1 error. */
static int conn_flush_until(conn_t *c, uint64_t limit, bool quiet)
{
	size_t off = 0;
	while (off < c->wlen) {
		ERR_clear_error();
		int n = SSL_write(c->ssl, c->wbuf + off, (int)(c->wlen - off));
		if (n > 0) { off += (size_t)n; continue; }
		int e = SSL_get_error(c->ssl, n);
		if ((e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) && now_ns() < limit) {
			wait_fd_until(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 100000000ull, limit);
			continue;
		}
		char text[256];
		ssl_error_text(text, sizeof text, now_ns() >= limit ? "write not finished by the deadline" : "write failed");
		if (!quiet) add_error("%s", text);
		return -1;
	}
	c->wlen = 0;
	return 0;
}

static int conn_flush(conn_t *c) { return conn_flush_until(c, g_deadline, false); }

/* One SSL_read into the buffer, waiting up to timeout_ns for data. >0 bytes, 0 none yet, -1 closed/error. */
static int conn_read(conn_t *c, uint64_t timeout_ns)
{
	if (c->roff == c->rlen) c->roff = c->rlen = 0;
	if (c->rcap - c->rlen < READ_CHUNK) {
		if (c->roff > 0) {
			memmove(c->rbuf, c->rbuf + c->roff, c->rlen - c->roff);
			c->rlen -= c->roff;
			c->roff = 0;
		}
		if (c->rcap - c->rlen < READ_CHUNK) {
			c->rcap *= 2;
			c->rbuf = realloc(c->rbuf, c->rcap);
			if (!c->rbuf) { fprintf(stderr, "relay_bench: out of memory\n"); exit(3); }
		}
	}
	bool waited = false;
	for (;;) {
		ERR_clear_error();
		int n = SSL_read(c->ssl, c->rbuf + c->rlen, (int)(c->rcap - c->rlen));
		if (n > 0) { c->rlen += (size_t)n; return n; }
		int e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (waited || timeout_ns == 0) return 0;
			waited = true;
			if (!wait_fd(c->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, timeout_ns)) return 0;
			continue;
		}
		char text[256];
		if (e == SSL_ERROR_ZERO_RETURN) snprintf(text, sizeof text, "the broker closed the connection");
		else ssl_error_text(text, sizeof text, "read failed");
		add_error("%s", text);
		return -1;
	}
}

/* The next whole frame in the buffer, parsed in place: 1 and its parts, 0 incomplete, -1 bad length. */
static int next_frame(conn_t *c, uint8_t *type, uint8_t *flags, const uint8_t **body, uint32_t *blen)
{
	size_t have = c->rlen - c->roff;
	if (have < 4) return 0;
	const uint8_t *p = c->rbuf + c->roff;
	uint32_t len = get32(p);
	if (len < 2 || len > MAX_FRAME) {
		add_error("frame length %u from the broker is outside 2...%u", len, MAX_FRAME);
		return -1;
	}
	if (have < 4 + (size_t)len) return 0;
	*type = p[4];
	*flags = p[5];
	*body = p + 6;
	*blen = len - 2;
	c->roff += 4 + (size_t)len;
	return 1;
}

/* Appends one frame header to the write buffer; returns where the body goes. */
static uint8_t *frame_begin(conn_t *c, uint8_t type, uint32_t body_len)
{
	uint8_t *p = c->wbuf + c->wlen;
	put32(p, body_len + 2);
	p[4] = type;
	p[5] = 0;
	c->wlen += 6 + body_len;
	return p + 6;
}

/* A str16 of ERR/PUBERR/SUBACK/BYE as printable text. */
static void str16_text(const uint8_t *p, uint32_t avail, char *out, size_t outlen)
{
	uint32_t n = avail >= 2 ? get16(p) : 0;
	if (n > avail - 2) n = avail >= 2 ? avail - 2 : 0;
	if (n >= outlen) n = (uint32_t)outlen - 1;
	for (uint32_t i = 0; i < n; i++) out[i] = (p[2 + i] >= 32 && p[2 + i] < 127) ? (char)p[2 + i] : '?';
	out[n] = 0;
}

/* Connection-level frames every loop handles the same way. 0 handled, -1 the connection ends. */
static int common_frame(conn_t *c, uint8_t type, const uint8_t *body, uint32_t blen)
{
	char text[200];
	if (type == T_PING && blen == 8) {
		uint8_t *b = frame_begin(c, T_PONG, 8);
		memcpy(b, body, 8);
		return 0;
	}
	if (type >= 0x80 || type == T_PONG) return 0; /* extension frames are skipped (spec §2) */
	if (type == T_ERR && blen >= 8) {
		str16_text(body + 6, blen - 6, text, sizeof text);
		add_error("ERR 0x%04x (subscription %u): %s", get16(body), get32(body + 2), text);
		return -1;
	}
	if (type == T_BYE && blen >= 4) {
		str16_text(body + 2, blen - 2, text, sizeof text);
		add_error("BYE 0x%04x from the broker: %s", get16(body), text);
		return -1;
	}
	add_error("unexpected frame type 0x%02x (%u bytes)", type, blen);
	return -1;
}

/* Reads until one whole frame is there (setup only). 1 got one, -1 error or deadline. */
static int read_frame(conn_t *c, uint8_t *type, uint8_t *flags, const uint8_t **body, uint32_t *blen)
{
	for (;;) {
		int r = next_frame(c, type, flags, body, blen);
		if (r != 0) return r;
		if (now_ns() >= g_deadline) { add_error("deadline passed during setup"); return -1; }
		if (conn_read(c, 100000000ull) < 0) return -1;
	}
}

/* TCP + TLS + HELLO/WELCOME. 0 ok; -1 with err set. */
static int relay_connect(conn_t *c, const uint8_t session[16], char *err, size_t errlen)
{
	if (conn_open(c, err, errlen) != 0) return -1;
	static const char name[] = "relay_bench.c";
	uint32_t nlen = sizeof name - 1;
	uint8_t *b = frame_begin(c, T_HELLO, 2 + 2 + 4 + 16 + 2 + nlen + 2);
	put16(b, 1);
	put16(b + 2, 1);
	put32(b + 4, MAX_FRAME);
	memcpy(b + 8, session, 16);
	put16(b + 24, (uint16_t)nlen);
	memcpy(b + 26, name, nlen);
	put16(b + 26 + nlen, 0); /* no extensions */
	uint8_t type, flags;
	const uint8_t *body;
	uint32_t blen;
	int before = g_nerrors;
	if (conn_flush(c) != 0 || read_frame(c, &type, &flags, &body, &blen) != 1) {
		snprintf(err, errlen, "no WELCOME: %s", g_nerrors > before ? g_errors[g_nerrors - 1] : "connection failed");
		return -1;
	}
	if (type != T_WELCOME) {
		common_frame(c, type, body, blen);
		snprintf(err, errlen, "refused instead of WELCOME: %s", g_nerrors > 0 ? g_errors[g_nerrors - 1] : "?");
		return -1;
	}
	return 0;
}

static void relay_close(conn_t *c)
{
	if (c->ssl) {
		uint8_t *b = frame_begin(c, T_BYE, 4);
		put16(b, 0);
		put16(b + 2, 0);
		/* A goodbye gets 2 s even after the deadline; a failed one is not the run's error. */
		if (conn_flush_until(c, now_ns() + 2000000000ull, true) == 0) SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	conn_free(c);
}

#endif /* RELAY_BENCH_WIRE_H */
