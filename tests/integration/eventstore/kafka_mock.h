/* SPDX-License-Identifier: MIT */
/*
 * kafka_mock.h - what the Kafka backend's integration tests share: start
 * $CAIRN_TOOLS_DIR/cairn-mock-kafka as its own process (its first stdout
 * line is the bootstrap address), send it control commands over its Unix
 * socket, and small helpers for child processes that append and write what
 * they were told, one line per append, into a result file.
 *
 * Header-only (static functions) so that each test stays one executable.
 */
#ifndef CAIRN_TESTS_KAFKA_MOCK_H
#define CAIRN_TESTS_KAFKA_MOCK_H

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct kmock {
    pid_t pid;
    char bootstrap[512];
    char ctl[108];
    char dir[64];
};

static inline long long kmock_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void kmock_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Starts the mock with @p brokers brokers and the topics "NAME:P" of @p topics
 * (NULL-terminated). Returns 0, or -1 with a message on stderr. */
static inline int kmock_start(struct kmock *m, int brokers, const char *const *topics)
{
    const char *tools = getenv("CAIRN_TOOLS_DIR");
    static char f_brokers[] = "--brokers", f_control[] = "--control", f_topic[] = "--topic";
    static char topic_args[24][128];
    char bin[PATH_MAX], nb[16];
    char *argv[64];
    int a = 0, fds[2];

    memset(m, 0, sizeof(*m));
    m->pid = -1;
    if (!tools || !*tools) {
        fprintf(stderr, "CAIRN_TOOLS_DIR is not set: it names the directory of cairn-mock-kafka\n");
        return -1;
    }
    snprintf(bin, sizeof(bin), "%s/cairn-mock-kafka", tools);
    if (access(bin, X_OK) != 0) {
        fprintf(stderr, "no executable %s (from CAIRN_TOOLS_DIR)\n", bin);
        return -1;
    }
    snprintf(m->dir, sizeof(m->dir), "/tmp/cairn-kmock-XXXXXX");
    if (!mkdtemp(m->dir))
        return -1;
    snprintf(m->ctl, sizeof(m->ctl), "%s/ctl", m->dir);
    snprintf(nb, sizeof(nb), "%d", brokers);
    argv[a++] = bin;
    argv[a++] = f_brokers;
    argv[a++] = nb;
    argv[a++] = f_control;
    argv[a++] = m->ctl;
    for (size_t i = 0; topics && topics[i] && i < 24; i++) {
        snprintf(topic_args[i], sizeof(topic_args[i]), "%s", topics[i]);
        argv[a++] = f_topic;
        argv[a++] = topic_args[i];
    }
    argv[a] = NULL;
    if (pipe(fds) != 0)
        return -1;
    m->pid = fork();
    if (m->pid < 0)
        return -1;
    if (m->pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(bin, argv);
        _exit(127);
    }
    close(fds[1]);
    size_t n = 0;
    struct pollfd pf = {.fd = fds[0], .events = POLLIN};
    long long deadline = kmock_now_ms() + 60000;
    while (n + 1 < sizeof(m->bootstrap) && kmock_now_ms() < deadline) {
        if (poll(&pf, 1, 1000) <= 0)
            continue;
        ssize_t k = read(fds[0], m->bootstrap + n, 1);
        if (k <= 0 || m->bootstrap[n] == '\n')
            break;
        n++;
    }
    m->bootstrap[n] = '\0';
    close(fds[0]);
    if (!n) {
        fprintf(stderr, "%s printed no bootstrap address\n", bin);
        return -1;
    }
    /* wait for the control socket */
    for (int i = 0; i < 100 && access(m->ctl, F_OK) != 0; i++)
        kmock_sleep_ms(20);
    return 0;
}

static inline void kmock_stop(struct kmock *m)
{
    char path[128];
    if (m->pid > 0) {
        kill(m->pid, SIGTERM);
        waitpid(m->pid, NULL, 0);
        m->pid = -1;
    }
    if (m->dir[0]) {
        DIR *d = opendir(m->dir);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof(path), "%s/%.60s", m->dir, e->d_name);
            unlink(path);
        }
        if (d)
            closedir(d);
        rmdir(m->dir);
    }
}

/* Sends one control line; returns 0 when the mock answered "ok". */
static inline int kmock_ctl(struct kmock *m, const char *line)
{
    struct sockaddr_un sa;
    char reply[256];
    size_t n = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", m->ctl);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || write(fd, line, strlen(line)) < 0 ||
        write(fd, "\n", 1) != 1) {
        close(fd);
        return -1;
    }
    while (n + 1 < sizeof(reply)) {
        ssize_t k = read(fd, reply + n, 1);
        if (k <= 0 || reply[n] == '\n')
            break;
        n++;
    }
    reply[n] = '\0';
    close(fd);
    if (strncmp(reply, "ok", 2) != 0) {
        fprintf(stderr, "mock control '%s': %s\n", line, reply);
        return -1;
    }
    return 0;
}

/* Counts the lines of @p path that start with @p prefix. */
static inline int kmock_count_lines(const char *path, const char *prefix)
{
    char line[512];
    int n = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, prefix, strlen(prefix)) == 0)
            n++;
    fclose(f);
    return n;
}

#endif
