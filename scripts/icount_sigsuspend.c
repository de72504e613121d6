/* icount_sigsuspend.c - LD_PRELOAD shim that lets relayd run under valgrind 3.19.
 *
 * relayd's async main ends in dispatch_main(), which parks the main thread in
 * libdispatch's _dispatch_sigsuspend(): sigsuspend() on a `static const
 * sigset_t`, i.e. a mask in read-only memory. valgrind's rt_sigsuspend
 * wrapper removes its own signal from the caller's mask in place, so it
 * writes into that read-only page and valgrind itself dies ("VALGRIND
 * INTERNAL ERROR: Valgrind received a signal 11 (SIGSEGV)", si_code=2, the
 * faulting address inside libdispatch.so). This shim hands the kernel a copy
 * of the mask on the stack instead; the thread still waits for a signal
 * exactly as before. Only scripts/icount.sh loads it, only under valgrind.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, (size_t)(_NSIG / 8));
}
