/* wake_probe: what a thread wake-up costs on this machine at a paced rate,
 * without relayd. Not shipped; see docs/performance.md ("Wave 25: the
 * low-load tail with one flush").
 *
 * The main thread sleeps to each due time (start + i/10,000 s, an absolute
 * clock_nanosleep with the default timer slack), then wakes a second thread
 * through an eventfd it waits on in epoll (what a NIO event loop sleeps in),
 * which wakes the main thread back the same way. Printed: the timer's
 * lateness, the one-way hop, and the round trip (p50, p90, p99, max).
 *
 * usage: wake_probe [COUNT]   (default 30,000)
 * build: cc -O2 -o /tmp/wake_probe scripts/wake_probe.c -lpthread
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int to_worker, to_main, worker_epoll, main_epoll;
static volatile uint64_t sent_at;
static uint64_t *hop;
static int count;

static void wait_and_clear(int epoll, int fd) {
	struct epoll_event ev;
	uint64_t value;
	while (epoll_wait(epoll, &ev, 1, -1) != 1) {}
	if (read(fd, &value, sizeof value) != sizeof value) exit(1);
}

static void signal_fd(int fd) {
	uint64_t one = 1;
	if (write(fd, &one, sizeof one) != sizeof one) exit(1);
}

static void *worker(void *unused) {
	(void)unused;
	for (int i = 0; i < count; i++) {
		wait_and_clear(worker_epoll, to_worker);
		hop[i] = now_ns() - sent_at;
		signal_fd(to_main);
	}
	return NULL;
}

static int compare(const void *a, const void *b) {
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *name, uint64_t *v) {
	qsort(v, (size_t)count, sizeof *v, compare);
	printf("%-28s p50 %6.1f us  p90 %6.1f  p99 %6.1f  max %7.1f\n", name, v[count / 2] / 1e3,
	       v[count * 9 / 10] / 1e3, v[count * 99 / 100] / 1e3, v[count - 1] / 1e3);
}

int main(int argc, char **argv) {
	count = argc > 1 ? atoi(argv[1]) : 30000;
	if (count < 100) count = 100;
	hop = calloc((size_t)count, sizeof *hop);
	uint64_t *late = calloc((size_t)count, sizeof *late), *round_trip = calloc((size_t)count, sizeof *round_trip);
	if (!hop || !late || !round_trip) return 1;
	to_worker = eventfd(0, 0);
	to_main = eventfd(0, 0);
	worker_epoll = epoll_create1(0);
	main_epoll = epoll_create1(0);
	struct epoll_event in = { .events = EPOLLIN };
	epoll_ctl(worker_epoll, EPOLL_CTL_ADD, to_worker, &in);
	epoll_ctl(main_epoll, EPOLL_CTL_ADD, to_main, &in);
	pthread_t thread;
	pthread_create(&thread, NULL, worker, NULL);
	uint64_t start = now_ns() + 1000000;
	for (int i = 0; i < count; i++) {
		uint64_t due = start + (uint64_t)i * 100000ull;
		struct timespec at = { (time_t)(due / 1000000000ull), (long)(due % 1000000000ull) };
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, NULL);
		uint64_t woke = now_ns();
		late[i] = woke > due ? woke - due : 0;
		sent_at = now_ns();
		signal_fd(to_worker);
		wait_and_clear(main_epoll, to_main);
		round_trip[i] = now_ns() - sent_at;
	}
	pthread_join(thread, NULL);
	report("timer wake lateness", late);
	report("eventfd+epoll hop", hop);
	report("hop and back (round trip)", round_trip);
	return 0;
}
