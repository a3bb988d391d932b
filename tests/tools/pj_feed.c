/* SPDX-License-Identifier: MIT */
/*
 * pj_feed.c - cairn-pj-feed: appends events to a log from JSON lines on
 * stdin, keeping the log open, for the projection tests (one
 * `cairn events append` process per event costs an open and, on Kafka, a
 * claim each time).
 *
 *   cairn-pj-feed --log URL < events.jsonl
 *
 * One line per event: {"stream": S, "type": T, "value": <any JSON>} appends
 * the value's compact JSON text; {"stream": S, "type": T, "hex": "00..."}
 * appends those bytes (a wire-format value the test encoded itself). The
 * header cairn.type is set to T. Events are appended pipelined (expected
 * version "any": the tool is the only writer), and the tool
 * waits for every append to be durable before it prints
 * "appended=N end=E" and exits 0; any failure exits 2 with a message.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <jansson.h>

#include "cairn/eventstore.h"
#include "common.h"

#define PIPELINE 256

int main(int argc, char **argv)
{
    const char *url = NULL;
    cairn_log_t *log = NULL;
    cairn_error_t err = {0};
    uint64_t tickets[PIPELINE];
    size_t nt = 0, n = 0, lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int code = 0;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--log") && i + 1 < argc)
            url = argv[++i];
        else {
            fprintf(stderr, "usage: cairn-pj-feed --log URL < events.jsonl\n");
            return 2;
        }
    }
    if (!url) {
        fprintf(stderr, "usage: cairn-pj-feed --log URL < events.jsonl\n");
        return 2;
    }
    if (cairn_log_open(url, NULL, &log, &err) != CAIRN_OK) {
        fprintf(stderr, "cairn-pj-feed: %s\n", err.text);
        return 2;
    }
    while (code == 0 && (len = getline(&line, &cap, stdin)) > 0) {
        json_error_t je;
        lineno++;
        json_t *o = json_loadb(line, (size_t)len, 0, &je);
        const char *stream = json_string_value(json_object_get(o, "stream"));
        const char *type = json_string_value(json_object_get(o, "type"));
        json_t *value = json_object_get(o, "value");
        const char *hex = json_string_value(json_object_get(o, "hex"));
        char *text = NULL;
        unsigned char *bytes = NULL;
        size_t vlen = 0;
        if (!o || !stream || !type || (!value && !hex)) {
            fprintf(stderr, "cairn-pj-feed: line %zu: need stream, type and value or hex\n",
                    lineno);
            code = 2;
        } else if (hex) {
            size_t hl = strlen(hex);
            bytes = malloc(hl / 2 + 1);
            for (size_t i = 0; bytes && i + 1 < hl + 1 && i < hl; i += 2) {
                int a = cairn__hex_digit(hex[i]),
                    b = i + 1 < hl ? cairn__hex_digit(hex[i + 1]) : -1;
                if (a < 0 || b < 0) {
                    fprintf(stderr, "cairn-pj-feed: line %zu: bad hex\n", lineno);
                    code = 2;
                    break;
                }
                bytes[vlen++] = (unsigned char)(a * 16 + b);
            }
        } else {
            text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
            vlen = text ? strlen(text) : 0;
        }
        if (code == 0) {
            cairn_header_t h = {"cairn.type", type, strlen(type)};
            cairn_record_t r = {.value = hex ? (const void *)bytes : (const void *)text,
                                .value_len = vlen,
                                .headers = &h,
                                .header_count = 1};
            if (nt == PIPELINE) {
                for (size_t i = 0; i < nt && code == 0; i++)
                    if (cairn_log_wait_durable(log, tickets[i], &err) != CAIRN_OK)
                        code = 2;
                nt = 0;
            }
            if (code == 0 && cairn_log_append_nowait(log, stream, CAIRN_EXPECT_ANY, &r, 1, NULL,
                                                     &tickets[nt], &err) != CAIRN_OK)
                code = 2;
            else
                nt++, n++;
            if (code)
                fprintf(stderr, "cairn-pj-feed: line %zu: %s\n", lineno, err.text);
        }
        free(text);
        free(bytes);
        json_decref(o);
    }
    for (size_t i = 0; i < nt && code == 0; i++)
        if (cairn_log_wait_durable(log, tickets[i], &err) != CAIRN_OK) {
            fprintf(stderr, "cairn-pj-feed: %s\n", err.text);
            code = 2;
        }
    if (code == 0)
        printf("appended=%zu end=%llu\n", n, (unsigned long long)cairn_log_end(log));
    free(line);
    cairn_log_close(log);
    return code;
}
