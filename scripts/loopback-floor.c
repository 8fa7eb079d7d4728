/* The host's floor for wire->decision: what the kernel alone costs per message
 * on loopback, measured with nothing but syscalls. Compare its TCP recv line
 * with the socket_read stage of scripts/bench-loopback.sh.
 *
 *   scripts/loopback-floor.sh        (compiles with cc, runs pinned to the last core)
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { ROUNDS = 20000, MSG = 1000 };

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median and 99th percentile of `n` samples, sorted in place. */
static void report(const char *what, double *s, int n) {
    qsort(s, n, sizeof *s, by_value);
    printf("%-44s p50 %7.0f ns   p99 %7.0f ns\n", what, s[n / 2], s[n * 99 / 100]);
}

int main(void) {
    static double s[ROUNDS];
    static char msg[MSG], buf[4096];

    for (int i = 0; i < ROUNDS; i++) {
        double t = now_ns();
        syscall(SYS_getppid);
        s[i] = now_ns() - t;
    }
    report("trivial syscall (getppid)", s, ROUNDS);

    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (l < 0 || bind(l, (void *)&a, sizeof a) || listen(l, 1) || getsockname(l, (void *)&a, &len)) {
        perror("listen on 127.0.0.1");
        return 1;
    }
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0 || connect(c, (void *)&a, sizeof a)) {
        perror("connect");
        return 1;
    }
    int srv = accept(l, NULL, NULL);
    for (int i = 0; i < ROUNDS; i++) {
        if (send(srv, msg, MSG, 0) != MSG) {
            perror("send");
            return 1;
        }
        double t = now_ns();
        ssize_t got = 0;
        while (got < MSG) {
            ssize_t n = recv(c, buf + got, MSG - got, 0);
            if (n <= 0) {
                perror("recv");
                return 1;
            }
            got += n;
        }
        s[i] = now_ns() - t;
    }
    report("TCP loopback recv of 1000 bytes already sent", s, ROUNDS);
    return 0;
}
