/* SPDX-License-Identifier: MIT */
/*
 * mock_kafka.c - cairn-mock-kafka: librdkafka's in-process mock cluster
 * (rdkafka_mock.h) run as its own process, so that every Kafka test and
 * benchmark talks to it over loopback TCP exactly as to a real cluster and
 * nothing in eventstore/ special-cases it.
 *
 *   cairn-mock-kafka [--brokers N] [--topic NAME:PARTITIONS ...]
 *                    [--control PATH | --control-fifo PATH]
 *
 * The first line of stdout is the bootstrap address ("127.0.0.1:port,...",
 * random ports), flushed at once; nothing else goes to stdout except the
 * FIFO's replies. The process then runs until SIGTERM or SIGINT (never on
 * stdin EOF: CI has no stdin), destroys the cluster and exits 0.
 *
 * Fault injection works only on the in-process handle, so the tool takes
 * commands, one per line, on a control channel:
 *   --control PATH       a Unix stream socket; each line gets one reply line
 *                        "ok[ detail]" or "error <text>" on the same
 *                        connection (several clients may connect at once);
 *   --control-fifo PATH  a FIFO (for shell scripts: echo down 1 > PATH); the
 *                        replies go to stdout as "control: ok" lines.
 * Commands ("help" lists them):
 *   ping | bootstrap | help
 *   topic NAME PARTITIONS             create a topic
 *   down BROKER_ID / up BROKER_ID     rd_kafka_mock_broker_set_down / _up
 *   rtt BROKER_ID MS                  added round-trip time of a broker
 *   errors APIKEY COUNT ERRCODE       the next COUNT requests of APIKEY fail
 *                                     (APIKEY: number or name, e.g. 0 or
 *                                     Produce; ERRCODE: number or name, e.g.
 *                                     NOT_LEADER_FOR_PARTITION, with or
 *                                     without the RD_KAFKA_RESP_ERR_ prefix)
 *   clear APIKEY                      drop the pending errors of APIKEY
 *   leader TOPIC PARTITION BROKER_ID  move a partition's leader (-1: none;
 *                                     like the mock, creates an unknown topic)
 * Every input is validated: a bad line gets "error ..." and changes nothing.
 *
 * Limits of the mock (librdkafka 2.0.2) that tests must respect:
 * - it keeps ONE copy of each partition, whatever the replication factor:
 *   fault tests show retries, duplicates and outcome-unknown handling, not
 *   replication or leader fail-over with data;
 * - retention is fixed at 5 MiB or 100k message sets per partition; older
 *   data silently goes (the low watermark rises): keep runs under that or
 *   spread them over partitions and topics;
 * - transactions are API-deep only (no fencing, aborted data visible); the
 *   admin CreateTopics call is unsupported (use --topic or "topic").
 *
 * Threads: the main thread waits for SIGTERM/SIGINT with sigwait (both are
 * blocked before librdkafka starts its threads, which inherit the mask); a
 * control thread serves the channel with poll() and is woken through a pipe
 * to stop. The rd_kafka_mock_* calls are thread-safe (they post to the
 * mock's own thread).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define MAX_BROKERS    32
#define MAX_PARTITIONS 10000
#define MAX_TOPICS     64
#define MAX_CLIENTS    16
#define LINE_MAX_BYTES 512
#define MAX_ERRORS     100000
#define MAX_RTT_MS     60000
#define MAX_TOKENS     8

struct client {
    int fd;
    size_t len;
    int overflow; /* the current line is refused (1: too long, 2: a NUL byte): discard to its
                     newline */
    char line[LINE_MAX_BYTES];
};

struct tool {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    int brokers;
    const char *control_path;
    int control_is_fifo;
    int listen_fd; /* socket mode */
    int fifo_fd;   /* FIFO mode */
    struct client fifo_client;
    struct client clients[MAX_CLIENTS];
    int wake[2]; /* the main thread writes to wake[1] to stop the control thread */
};

static const struct {
    const char *name;
    int key;
} api_names[] = {
    {"Produce", 0},          {"Fetch", 1},           {"ListOffsets", 2},
    {"Metadata", 3},         {"OffsetCommit", 8},    {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},      {"Heartbeat", 12},
    {"LeaveGroup", 13},      {"SyncGroup", 14},      {"ApiVersions", 18},
    {"CreateTopics", 19},    {"InitProducerId", 22}, {"AddPartitionsToTxn", 24},
    {"AddOffsetsToTxn", 25}, {"EndTxn", 26},         {"TxnOffsetCommit", 28},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: cairn-mock-kafka [--brokers N] [--topic NAME:PARTITIONS ...]\n"
               "                        [--control SOCKET_PATH | --control-fifo FIFO_PATH]\n"
               "Prints the bootstrap address on the first line of stdout and runs until\n"
               "SIGTERM or SIGINT. Control commands: ping, bootstrap, help, topic NAME N,\n"
               "down ID, up ID, rtt ID MS, errors APIKEY COUNT ERRCODE, clear APIKEY,\n"
               "leader TOPIC PARTITION ID.\n");
}

/* Parses a whole decimal integer in [lo, hi]; 0 on success. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end = NULL;
    long v = 0;
    if (s == NULL || *s == '\0')
        return -1;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* Kafka's topic-name rule: 1..249 of [A-Za-z0-9._-], not "." or "..". */
static int valid_topic(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 0 || len > 249)
        return 0;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return 0;
    for (i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int parse_api_key(const char *s, int *out)
{
    long v = 0;
    size_t i = 0;
    if (parse_long(s, 0, 32767, &v) == 0) {
        *out = (int)v;
        return 0;
    }
    for (i = 0; i < sizeof api_names / sizeof api_names[0]; i++) {
        if (strcmp(s, api_names[i].name) == 0) {
            *out = api_names[i].key;
            return 0;
        }
    }
    return -1;
}

/* A broker error code by number or by librdkafka's name (prefix optional). */
static int parse_err_code(const char *s, rd_kafka_resp_err_t *out)
{
    const struct rd_kafka_err_desc *descs = NULL;
    size_t n = 0;
    size_t i = 0;
    long v = 0;
    static const char prefix[] = "RD_KAFKA_RESP_ERR_";

    if (parse_long(s, -200, 32767, &v) == 0) {
        *out = (rd_kafka_resp_err_t)v;
        return 0;
    }
    if (strncmp(s, prefix, sizeof prefix - 1) == 0)
        s += sizeof prefix - 1;
    if (*s == '\0')
        return -1;
    rd_kafka_get_err_descs(&descs, &n);
    for (i = 0; i < n; i++) {
        if (descs[i].name != NULL && strcmp(descs[i].name, s) == 0) {
            *out = descs[i].code;
            return 0;
        }
    }
    return -1;
}

static int check_broker(const struct tool *t, const char *s, int32_t *id, char *reply, size_t size)
{
    long v = 0;
    if (parse_long(s, 1, t->brokers, &v) != 0) {
        snprintf(reply, size, "error bad broker id \"%.32s\" (1..%d)", s, t->brokers);
        return -1;
    }
    *id = (int32_t)v;
    return 0;
}

static void reply_err(char *reply, size_t size, const char *what, rd_kafka_resp_err_t e)
{
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        snprintf(reply, size, "ok");
    else
        snprintf(reply, size, "error %s: %s (%s)", what, rd_kafka_err2str(e), rd_kafka_err2name(e));
}

static int create_topic(struct tool *t, const char *name, int partitions, char *reply, size_t size)
{
    int rf = t->brokers < 3 ? t->brokers : 3;
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(t->mc, name, partitions, rf);
    reply_err(reply, size, "topic create failed", e);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -1;
}

/* Runs one command line (NUL-terminated, newline removed); writes the reply. */
static void run_command(struct tool *t, char *line, char *reply, size_t size)
{
    char *tok[MAX_TOKENS];
    int n = 0;
    char *save = NULL;
    char *p = NULL;
    long v = 0;
    int32_t id = 0;

    for (p = strtok_r(line, " \t\r", &save); p != NULL; p = strtok_r(NULL, " \t\r", &save)) {
        if (n == MAX_TOKENS) {
            snprintf(reply, size, "error too many words");
            return;
        }
        tok[n++] = p;
    }
    if (n == 0) {
        snprintf(reply, size, "error empty command");
        return;
    }
#define NEED(k)                                                                                    \
    do {                                                                                           \
        if (n != (k) + 1) {                                                                        \
            snprintf(reply, size, "error %s takes %d argument%s", tok[0], (k),                     \
                     (k) == 1 ? "" : "s");                                                         \
            return;                                                                                \
        }                                                                                          \
    } while (0)

    if (strcmp(tok[0], "ping") == 0) {
        NEED(0);
        snprintf(reply, size, "ok");
    } else if (strcmp(tok[0], "help") == 0) {
        NEED(0);
        snprintf(reply, size,
                 "ok ping | bootstrap | topic NAME PARTITIONS | down ID | up ID | rtt ID MS | "
                 "errors APIKEY COUNT ERRCODE | clear APIKEY | leader TOPIC PARTITION ID");
    } else if (strcmp(tok[0], "bootstrap") == 0) {
        NEED(0);
        snprintf(reply, size, "ok %s", rd_kafka_mock_cluster_bootstraps(t->mc));
    } else if (strcmp(tok[0], "topic") == 0) {
        NEED(2);
        if (!valid_topic(tok[1], strlen(tok[1]))) {
            snprintf(reply, size, "error bad topic name \"%.64s\"", tok[1]);
            return;
        }
        if (parse_long(tok[2], 1, MAX_PARTITIONS, &v) != 0) {
            snprintf(reply, size, "error bad partition count \"%.32s\" (1..%d)", tok[2],
                     MAX_PARTITIONS);
            return;
        }
        create_topic(t, tok[1], (int)v, reply, size);
    } else if (strcmp(tok[0], "down") == 0 || strcmp(tok[0], "up") == 0) {
        NEED(1);
        if (check_broker(t, tok[1], &id, reply, size) != 0)
            return;
        if (tok[0][0] == 'd')
            reply_err(reply, size, "broker down failed", rd_kafka_mock_broker_set_down(t->mc, id));
        else
            reply_err(reply, size, "broker up failed", rd_kafka_mock_broker_set_up(t->mc, id));
    } else if (strcmp(tok[0], "rtt") == 0) {
        NEED(2);
        if (check_broker(t, tok[1], &id, reply, size) != 0)
            return;
        if (parse_long(tok[2], 0, MAX_RTT_MS, &v) != 0) {
            snprintf(reply, size, "error bad rtt \"%.32s\" (0..%d ms)", tok[2], MAX_RTT_MS);
            return;
        }
        reply_err(reply, size, "rtt failed", rd_kafka_mock_broker_set_rtt(t->mc, id, (int)v));
    } else if (strcmp(tok[0], "errors") == 0) {
        int key = 0;
        rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;
        rd_kafka_resp_err_t *codes = NULL;
        long i = 0;
        NEED(3);
        if (parse_api_key(tok[1], &key) != 0) {
            snprintf(reply, size, "error bad api key \"%.32s\"", tok[1]);
            return;
        }
        if (parse_long(tok[2], 1, MAX_ERRORS, &v) != 0) {
            snprintf(reply, size, "error bad count \"%.32s\" (1..%d)", tok[2], MAX_ERRORS);
            return;
        }
        if (parse_err_code(tok[3], &code) != 0 || code == RD_KAFKA_RESP_ERR_NO_ERROR) {
            snprintf(reply, size, "error bad error code \"%.64s\"", tok[3]);
            return;
        }
        codes = malloc((size_t)v * sizeof *codes);
        if (codes == NULL) {
            snprintf(reply, size, "error out of memory");
            return;
        }
        for (i = 0; i < v; i++)
            codes[i] = code;
        rd_kafka_mock_push_request_errors_array(t->mc, (int16_t)key, (size_t)v, codes);
        free(codes);
        snprintf(reply, size, "ok");
    } else if (strcmp(tok[0], "clear") == 0) {
        int key = 0;
        NEED(1);
        if (parse_api_key(tok[1], &key) != 0) {
            snprintf(reply, size, "error bad api key \"%.32s\"", tok[1]);
            return;
        }
        rd_kafka_mock_clear_request_errors(t->mc, (int16_t)key);
        snprintf(reply, size, "ok");
    } else if (strcmp(tok[0], "leader") == 0) {
        long part = 0;
        NEED(3);
        if (!valid_topic(tok[1], strlen(tok[1]))) {
            snprintf(reply, size, "error bad topic name \"%.64s\"", tok[1]);
            return;
        }
        if (parse_long(tok[2], 0, MAX_PARTITIONS - 1, &part) != 0) {
            snprintf(reply, size, "error bad partition \"%.32s\"", tok[2]);
            return;
        }
        if (strcmp(tok[3], "-1") == 0)
            id = -1;
        else if (check_broker(t, tok[3], &id, reply, size) != 0)
            return;
        reply_err(reply, size, "leader failed",
                  rd_kafka_mock_partition_set_leader(t->mc, tok[1], (int32_t)part, id));
    } else {
        snprintf(reply, size, "error unknown command \"%.32s\" (try help)", tok[0]);
    }
#undef NEED
}

/* Writes all of @p s (a reply line) to a socket; -1 when the peer is gone. */
static int send_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, s, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        len -= (size_t)w;
    }
    return 0;
}

static int answer(struct tool *t, struct client *c, const char *reply)
{
    char out[LINE_MAX_BYTES + 64];
    int len = 0;
    if (t->control_is_fifo) {
        printf("control: %s\n", reply);
        fflush(stdout);
        return 0;
    }
    len = snprintf(out, sizeof out, "%s\n", reply);
    if (len < 0)
        return -1;
    if ((size_t)len >= sizeof out) {
        out[sizeof out - 2] = '\n';
        len = (int)sizeof out - 1;
    }
    return send_all(c->fd, out, (size_t)len);
}

/* Feeds bytes read from a client into its line buffer and runs each complete
 * line. @returns -1 when the client must be dropped. */
static int feed(struct tool *t, struct client *c, const char *buf, size_t n)
{
    size_t i = 0;
    char reply[LINE_MAX_BYTES];
    for (i = 0; i < n; i++) {
        char ch = buf[i];
        if (ch == '\n') {
            if (c->overflow) {
                const char *why =
                    c->overflow == 2 ? "error NUL byte in line" : "error line too long";
                c->overflow = 0;
                c->len = 0;
                if (answer(t, c, why) != 0)
                    return -1;
                continue;
            }
            c->line[c->len] = '\0';
            c->len = 0;
            run_command(t, c->line, reply, sizeof reply);
            if (answer(t, c, reply) != 0)
                return -1;
        } else if (ch == '\0') {
            c->overflow = 2; /* a NUL makes the line unusable: refuse it whole */
        } else if (!c->overflow) {
            if (c->len + 1 >= sizeof c->line)
                c->overflow = 1;
            else
                c->line[c->len++] = ch;
        }
    }
    return 0;
}

static void *control_main(void *arg)
{
    struct tool *t = arg;
    struct pollfd pfd[2 + MAX_CLIENTS];
    int map[2 + MAX_CLIENTS];
    char buf[4096];

    for (;;) {
        nfds_t n = 0;
        nfds_t k = 0;
        int i = 0;
        pfd[n].fd = t->wake[0];
        pfd[n].events = POLLIN;
        map[n++] = -1;
        pfd[n].fd = t->control_is_fifo ? t->fifo_fd : t->listen_fd;
        pfd[n].events = POLLIN;
        map[n++] = -2;
        for (i = 0; i < MAX_CLIENTS; i++) {
            if (t->clients[i].fd >= 0) {
                pfd[n].fd = t->clients[i].fd;
                pfd[n].events = POLLIN;
                map[n++] = i;
            }
        }
        if (poll(pfd, n, -1) < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "cairn-mock-kafka: poll: %s\n", strerror(errno));
            return NULL;
        }
        if (pfd[0].revents != 0)
            return NULL;
        if (pfd[1].revents != 0) {
            if (t->control_is_fifo) {
                ssize_t r = read(t->fifo_fd, buf, sizeof buf);
                if (r > 0)
                    feed(t, &t->fifo_client, buf, (size_t)r);
            } else {
                int fd = accept(t->listen_fd, NULL, NULL);
                if (fd >= 0) {
                    for (i = 0; i < MAX_CLIENTS && t->clients[i].fd >= 0; i++)
                        ;
                    if (i == MAX_CLIENTS) {
                        static const char busy[] = "error too many control connections\n";
                        (void)send_all(fd, busy, sizeof busy - 1);
                        close(fd);
                    } else {
                        /* A client that never reads its replies must not stall
                         * the channel: a send that blocks 2 s drops it. */
                        struct timeval tv = {2, 0};
                        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
                        memset(&t->clients[i], 0, sizeof t->clients[i]);
                        t->clients[i].fd = fd;
                    }
                }
            }
        }
        for (k = 2; k < n; k++) {
            struct client *c = &t->clients[map[k]];
            ssize_t r = 0;
            if (pfd[k].revents == 0)
                continue;
            r = read(c->fd, buf, sizeof buf);
            if (r < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (r <= 0 || feed(t, c, buf, (size_t)r) != 0) {
                close(c->fd);
                c->fd = -1;
            }
        }
    }
}

static int open_control(struct tool *t)
{
    struct stat st;
    struct sockaddr_un sa;
    const char *path = t->control_path;

    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "cairn-mock-kafka: control path too long: %s\n", path);
        return -1;
    }
    if (t->control_is_fifo) {
        if (mkfifo(path, 0600) != 0 &&
            !(errno == EEXIST && stat(path, &st) == 0 && S_ISFIFO(st.st_mode))) {
            fprintf(stderr, "cairn-mock-kafka: mkfifo %s: %s\n", path, strerror(errno));
            return -1;
        }
        /* Read-write so that the FIFO never reports EOF when writers come and go. */
        t->fifo_fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
        if (t->fifo_fd < 0) {
            fprintf(stderr, "cairn-mock-kafka: open %s: %s\n", path, strerror(errno));
            return -1;
        }
        return 0;
    }
    /* A stale socket of an earlier run is replaced; anything else is refused. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fprintf(stderr, "cairn-mock-kafka: %s exists and is not a socket\n", path);
            return -1;
        }
        unlink(path);
    }
    t->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (t->listen_fd < 0) {
        fprintf(stderr, "cairn-mock-kafka: socket: %s\n", strerror(errno));
        return -1;
    }
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (bind(t->listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(t->listen_fd, MAX_CLIENTS) != 0) {
        fprintf(stderr, "cairn-mock-kafka: bind/listen %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct tool t;
    const char *topics[MAX_TOPICS];
    int ntopics = 0;
    long v = 0;
    int i = 0;
    int rc = 2;
    int sig = 0;
    int control_started = 0;
    pthread_t control;
    sigset_t stop;
    rd_kafka_conf_t *conf = NULL;
    char errstr[512];

    memset(&t, 0, sizeof t);
    t.brokers = 1;
    t.listen_fd = -1;
    t.fifo_fd = -1;
    t.wake[0] = t.wake[1] = -1;
    for (i = 0; i < MAX_CLIENTS; i++)
        t.clients[i].fd = -1;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (val == NULL) {
            fprintf(stderr, "cairn-mock-kafka: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--brokers") == 0) {
            if (parse_long(val, 1, MAX_BROKERS, &v) != 0) {
                fprintf(stderr, "cairn-mock-kafka: bad --brokers \"%s\" (1..%d)\n", val,
                        MAX_BROKERS);
                return 2;
            }
            t.brokers = (int)v;
        } else if (strcmp(a, "--topic") == 0) {
            const char *colon = strrchr(val, ':');
            if (colon == NULL || !valid_topic(val, (size_t)(colon - val)) ||
                parse_long(colon + 1, 1, MAX_PARTITIONS, &v) != 0) {
                fprintf(stderr, "cairn-mock-kafka: bad --topic \"%s\" (NAME:PARTITIONS)\n", val);
                return 2;
            }
            if (ntopics == MAX_TOPICS) {
                fprintf(stderr, "cairn-mock-kafka: at most %d --topic\n", MAX_TOPICS);
                return 2;
            }
            topics[ntopics++] = val;
        } else if (strcmp(a, "--control") == 0 || strcmp(a, "--control-fifo") == 0) {
            if (t.control_path != NULL || *val == '\0') {
                fprintf(stderr, "cairn-mock-kafka: one non-empty control path only\n");
                return 2;
            }
            t.control_path = val;
            t.control_is_fifo = strcmp(a, "--control-fifo") == 0;
        } else {
            fprintf(stderr, "cairn-mock-kafka: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
    }

    /* Block the stop signals before librdkafka starts threads (they inherit
     * the mask), so that only sigwait() below ever takes them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* The host handle talks to no cluster: keep its "no bootstrap.servers"
     * notice out of the test logs, keep warnings. */
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", "cairn-mock-kafka", errstr, sizeof errstr) !=
            RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "cairn-mock-kafka: conf: %s\n", errstr);
        return 1;
    }
    t.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (t.rk == NULL) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "cairn-mock-kafka: rd_kafka_new: %s\n", errstr);
        return 1;
    }
    t.mc = rd_kafka_mock_cluster_new(t.rk, t.brokers);
    if (t.mc == NULL) {
        fprintf(stderr, "cairn-mock-kafka: rd_kafka_mock_cluster_new failed\n");
        rc = 1;
        goto out;
    }
    for (i = 0; i < ntopics; i++) {
        char name[256];
        char reply[LINE_MAX_BYTES];
        const char *colon = strrchr(topics[i], ':');
        size_t len = (size_t)(colon - topics[i]);
        memcpy(name, topics[i], len);
        name[len] = '\0';
        if (create_topic(&t, name, atoi(colon + 1), reply, sizeof reply) != 0) {
            fprintf(stderr, "cairn-mock-kafka: topic %s: %s\n", name, reply);
            rc = 1;
            goto out;
        }
    }
    if (t.control_path != NULL) {
        if (pipe(t.wake) != 0 || open_control(&t) != 0) {
            rc = 1;
            goto out;
        }
        if (pthread_create(&control, NULL, control_main, &t) != 0) {
            fprintf(stderr, "cairn-mock-kafka: cannot start the control thread\n");
            rc = 1;
            goto out;
        }
        control_started = 1;
    }

    printf("%s\n", rd_kafka_mock_cluster_bootstraps(t.mc));
    fflush(stdout);
    fprintf(stderr, "cairn-mock-kafka: %d broker(s), %d topic(s), control %s%s, pid %ld\n",
            t.brokers, ntopics, t.control_path ? t.control_path : "none",
            t.control_is_fifo ? " (fifo)" : "", (long)getpid());

    while (sigwait(&stop, &sig) != 0)
        ;
    fprintf(stderr, "cairn-mock-kafka: signal %d, stopping\n", sig);
    rc = 0;

out:
    if (control_started) {
        (void)!write(t.wake[1], "x", 1);
        pthread_join(control, NULL);
    }
    for (i = 0; i < MAX_CLIENTS; i++)
        if (t.clients[i].fd >= 0)
            close(t.clients[i].fd);
    if (t.listen_fd >= 0) {
        close(t.listen_fd);
        unlink(t.control_path);
    }
    if (t.fifo_fd >= 0) {
        close(t.fifo_fd);
        unlink(t.control_path);
    }
    if (t.wake[0] >= 0) {
        close(t.wake[0]);
        close(t.wake[1]);
    }
    if (t.mc != NULL)
        rd_kafka_mock_cluster_destroy(t.mc);
    rd_kafka_destroy(t.rk);
    return rc;
}
