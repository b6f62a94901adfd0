/* delayline: a userspace delay line between two network interfaces (kernels without sch_netem).
 *
 *   delayline IF_A IF_B DELAY_US LOSS MAX_SECONDS [SEED]
 *
 * Every Ethernet frame received on IF_A is sent out of IF_B (and B -> A) DELAY_US microseconds
 * later, or dropped with probability LOSS (0..1, independently per frame). LOSS is one probability
 * for both directions, or two, `LOSS_AB,LOSS_BA` (A -> B, then B -> A): loss on one direction only.
 * Frames leave through the interface's qdisc, so a tbf/htb on IF_A/IF_B egress is the
 * bottleneck: a full tbf queue drops the frame (tail drop, counted as "qdrop").
 * Built by perf/netlab.py with gcc at run time; it runs in the middle network namespace of the
 * accuracy lab. Offloads (TSO/GSO/GRO/checksum) must be off on the veths: frames are <= MTU.
 * Each direction runs in its own thread (its own ring, loss generator and wake-ups): the kernel work
 * a send carries (veth hops, bridge, the receiving TCP) then spreads over both cores instead of one
 * thread doing it for data and ACKs alike.
 * Stops on SIGTERM/SIGINT or after MAX_SECONDS; prints one line of counters per direction on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 32768          /* frames in flight per direction (~48 MiB) */
#define FRAME_MAX 1536
#define BATCH 64
#define EARLY_NS 50000ull    /* release frames due within 50 us: batches wake-ups (VM timers are costly) */

struct frame { uint64_t due_ns; uint16_t len; unsigned char data[FRAME_MAX]; };

struct line {                /* one direction: frames read from `in`, written to `out` */
    int in, out;
    uint64_t delay_ns, end_ns, rng;
    double loss;
    struct frame *ring;
    uint32_t head, tail;     /* tail: next to send; head: next free */
    uint64_t fwd, lost, full, qdrop, maxdepth, late_max_ns, late_1ms;
    uint64_t probe_taken[3], probe_lost[3];   /* ispeed UDP probes/echoes per phase (method v2) */
};

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double rnd(uint64_t *state) {   /* xorshift64*: reproducible per seed and direction */
    uint64_t x = *state;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *state = x;
    return (double)((x * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static int open_if(const char *name) {
    int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK, htons(ETH_P_ALL));
    if (fd < 0) { perror("socket(AF_PACKET)"); exit(1); }
    unsigned idx = if_nametoindex(name);
    if (!idx) { fprintf(stderr, "delayline: no interface %s\n", name); exit(2); }
    struct sockaddr_ll sll = {0};
    sll.sll_family = AF_PACKET; sll.sll_protocol = htons(ETH_P_ALL); sll.sll_ifindex = (int)idx;
    if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) { perror("bind"); exit(1); }
    struct packet_mreq mr = {0};
    mr.mr_ifindex = (int)idx; mr.mr_type = PACKET_MR_PROMISC;
    setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr);
    int one = 1, big = 64 << 20;
#ifdef PACKET_IGNORE_OUTGOING
    setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
#endif
    (void)one;
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) < 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    return fd;
}

/* The phase (0 idle, 1 download, 2 upload) of an ispeed UDP probe or echo in this IPv4 frame, else -1:
 * UDP payload byte 0 is the probe version (1), byte 1 the kind (phase | 0x80 in an echo). The lab
 * counts what the line dropped of each phase's probes: the truth the measured loss is checked against. */
static int probe_phase(const unsigned char *f, unsigned len) {
    if (len < 14 + 20 + 8 + 42 || f[12] != 0x08 || f[13] != 0x00 || f[14 + 9] != 17) return -1;
    unsigned ihl = (f[14] & 0x0fu) * 4u;
    if (ihl < 20 || 14 + ihl + 8 + 42 > len) return -1;
    const unsigned char *p = f + 14 + ihl + 8;
    int phase = p[1] & 0x7f;
    return p[0] == 1 && phase < 3 ? phase : -1;
}

static void take(struct line *l) {
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    struct sockaddr_ll from[BATCH];
    for (int round = 0; round < 16; round++) {
        uint32_t depth = l->head - l->tail;
        unsigned room = SLOTS - depth;
        if (room == 0) {   /* ring full: read and drop, so the kernel queue does not stall */
            char junk[FRAME_MAX];
            while (recv(l->in, junk, sizeof junk, MSG_DONTWAIT) > 0) l->full++;
            return;
        }
        unsigned n = room < BATCH ? room : BATCH;
        /* frames are read straight into free ring slots (contiguous or not) */
        for (unsigned i = 0; i < n; i++) {
            struct frame *f = &l->ring[(l->head + i) % SLOTS];
            iov[i].iov_base = f->data; iov[i].iov_len = FRAME_MAX;
            memset(&msgs[i].msg_hdr, 0, sizeof msgs[i].msg_hdr);
            msgs[i].msg_hdr.msg_iov = &iov[i]; msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &from[i]; msgs[i].msg_hdr.msg_namelen = sizeof from[i];
        }
        int got = recvmmsg(l->in, msgs, n, MSG_DONTWAIT, NULL);
        if (got <= 0) return;
        uint64_t due = now_ns() + l->delay_ns;
        uint32_t head = l->head;
        for (int i = 0; i < got; i++) {
            if (from[i].sll_pkttype == PACKET_OUTGOING) continue;
            struct frame *src = &l->ring[(l->head + (uint32_t)i) % SLOTS];
            int phase = probe_phase(src->data, msgs[i].msg_len);
            if (phase >= 0) l->probe_taken[phase]++;
            if (l->loss > 0 && rnd(&l->rng) < l->loss) {
                l->lost++;
                if (phase >= 0) l->probe_lost[phase]++;
                continue;
            }
            struct frame *dst = &l->ring[head % SLOTS];
            if (dst != src) memcpy(dst->data, src->data, msgs[i].msg_len);
            dst->len = (uint16_t)msgs[i].msg_len;
            dst->due_ns = due;
            head++;
        }
        l->head = head;
        if (l->head - l->tail > l->maxdepth) l->maxdepth = l->head - l->tail;
        if ((unsigned)got < n) return;
    }
}

/* Send every due frame (in sendmmsg batches); returns 1 if the socket pushed back. */
static int give(struct line *l) {
    uint64_t t = now_ns();
    while (l->tail != l->head) {
        struct mmsghdr msgs[BATCH];
        struct iovec iov[BATCH];
        unsigned n = 0;
        while (n < BATCH && l->tail + n != l->head) {
            struct frame *f = &l->ring[(l->tail + n) % SLOTS];
            if (f->due_ns > t + EARLY_NS) break;
            iov[n].iov_base = f->data; iov[n].iov_len = f->len;
            memset(&msgs[n].msg_hdr, 0, sizeof msgs[n].msg_hdr);
            msgs[n].msg_hdr.msg_iov = &iov[n]; msgs[n].msg_hdr.msg_iovlen = 1;
            n++;
        }
        if (n == 0) return 0;
        int sent = sendmmsg(l->out, msgs, n, MSG_DONTWAIT);
        if (sent < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
            if (errno == ENOBUFS) l->qdrop++;   /* a full queue behind us: tail drop */
            sent = 1;                           /* skip the frame that failed */
        } else {
            l->fwd += (uint64_t)sent;
        }
        for (int i = 0; i < sent; i++) {
            struct frame *f = &l->ring[l->tail % SLOTS];
            if (t > f->due_ns) {
                if (t - f->due_ns > l->late_max_ns) l->late_max_ns = t - f->due_ns;
                if (t - f->due_ns > 1000000ull) l->late_1ms++;
            }
            l->tail++;
        }
    }
    return 0;
}

/* One direction's loop: read what arrives, send what is due, sleep until the next frame is due. */
static void *run_line(void *arg) {
    struct line *l = arg;
    while (!stop && now_ns() < l->end_ns) {
        struct pollfd p[2] = {{.fd = l->in, .events = POLLIN}, {.fd = l->out, .events = 0}};
        int blocked = give(l);
        if (blocked) p[1].events = POLLOUT;
        uint64_t t = now_ns(), wait = 50000000ull;   /* at most 50 ms between checks */
        if (l->tail != l->head && !blocked) {
            uint64_t due = l->ring[l->tail % SLOTS].due_ns;
            wait = due > t + EARLY_NS ? due - t - EARLY_NS : 0;
            if (wait > 50000000ull) wait = 50000000ull;
        }
        struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000ull), .tv_nsec = (long)(wait % 1000000000ull)};
        int r = ppoll(p, 2, &ts, NULL);
        if (r < 0 && errno != EINTR) { perror("ppoll"); break; }
        if (r > 0 && (p[0].revents & POLLIN)) take(l);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: delayline IF_A IF_B DELAY_US LOSS|LOSS_AB,LOSS_BA MAX_SECONDS [SEED]\n");
        return 2;
    }
    uint64_t delay_ns = (uint64_t)(atof(argv[3]) * 1000.0);
    double loss = atof(argv[4]);   /* A -> B; B -> A too unless a second value follows a comma */
    const char *comma = strchr(argv[4], ',');
    double loss_ba = comma ? atof(comma + 1) : loss;
    double max_s = atof(argv[5]);
    uint64_t seed = argc > 6 ? strtoull(argv[6], NULL, 10) * 2654435761ull + 1 : 88172645463325252ull;
    prctl(PR_SET_TIMERSLACK, 50000UL, 0, 0, 0);   /* wake-ups may coalesce within 50 us (inherited by threads) */
    /* SIGTERM/SIGINT go to the main thread only; the line threads see `stop` within 50 ms */
    sigset_t block, old;
    sigemptyset(&block); sigaddset(&block, SIGTERM); sigaddset(&block, SIGINT);
    pthread_sigmask(SIG_BLOCK, &block, &old);
    int a = open_if(argv[1]), b = open_if(argv[2]);
    uint64_t end = now_ns() + (uint64_t)(max_s * 1e9);
    struct line lines[2] = {
        {.in = a, .out = b, .delay_ns = delay_ns, .end_ns = end, .loss = loss, .rng = seed},
        {.in = b, .out = a, .delay_ns = delay_ns, .end_ns = end, .loss = loss_ba, .rng = seed ^ 0x9e3779b97f4a7c15ull},
    };
    pthread_t threads[2];
    for (int i = 0; i < 2; i++) {
        lines[i].ring = calloc(SLOTS, sizeof(struct frame));
        if (!lines[i].ring) { perror("calloc"); return 1; }
        int err = pthread_create(&threads[i], NULL, run_line, &lines[i]);
        if (err) { fprintf(stderr, "delayline: pthread_create: %s\n", strerror(err)); return 1; }
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    fprintf(stderr, "delayline ready %s<->%s delay_us=%s loss=%g,%g\n", argv[1], argv[2], argv[3], loss, loss_ba);
    while (!stop && now_ns() < end) {
        struct timespec nap = {0, 50000000L};
        nanosleep(&nap, NULL);   /* a signal cuts the nap short */
    }
    stop = 1;
    for (int i = 0; i < 2; i++) pthread_join(threads[i], NULL);
    for (int i = 0; i < 2; i++) {
        struct line *l = &lines[i];
        fprintf(stderr, "delayline %s->%s fwd=%llu lost=%llu full=%llu qdrop=%llu maxdepth=%llu late_max_us=%.1f late_1ms=%llu"
                " probes_taken=%llu/%llu/%llu probes_lost=%llu/%llu/%llu\n",
                argv[1 + i], argv[2 - i], (unsigned long long)l->fwd, (unsigned long long)l->lost,
                (unsigned long long)l->full, (unsigned long long)l->qdrop,
                (unsigned long long)l->maxdepth, (double)l->late_max_ns / 1000.0, (unsigned long long)l->late_1ms,
                (unsigned long long)l->probe_taken[0], (unsigned long long)l->probe_taken[1],
                (unsigned long long)l->probe_taken[2], (unsigned long long)l->probe_lost[0],
                (unsigned long long)l->probe_lost[1], (unsigned long long)l->probe_lost[2]);
    }
    return 0;
}
