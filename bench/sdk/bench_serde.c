/* SPDX-License-Identifier: MIT */
/*
 * bench_serde.c - the SDK's Avro codec (sdk/avro_codec.h) next to avro-c on
 * one representative event record: 12 fields (strings, longs, a double, an
 * enum, a union null|string, an array of 3 small records, a map of 2).
 *
 *   encode.cairn  a json_t in, bytes out (cairn__avro_encode, one reused cairn_buf_t)
 *   encode.avroc  the same record from a reused avro_value_t (avro_value_write
 *                 into a reused memory writer)
 *   decode.cairn  bytes in, a new json_t out and freed (cairn__avro_decode,
 *                 identity resolver built once)
 *   decode.avroc  the same bytes into a reused avro_value_t (avro_value_read)
 *
 * Each round runs every case for about --seconds (0.5 by default), the four
 * taking turns in 20 slices so that they share the machine's load alike; the
 * figures are medians of --rounds rounds (5). Lines follow
 * STYLE.md: `name=sdk.serde.<case> iters=N ns_per_op=X`, then the ratios
 * (our rate / avro-c's) against the 0.6 target. --smoke: one short round.
 * Before timing, both encoders must produce the same bytes and our decoder
 * must give back the JSON value; the program exits non-zero otherwise.
 * Build Release without sanitizers when the figures matter (bench/README.md, "bench/sdk").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <avro.h>

#include "avro_codec.h"

#define SCHEMA                                                                                     \
    "{\"type\":\"record\",\"name\":\"OrderPlaced\",\"namespace\":\"shop.events\",\"fields\":["     \
    "{\"name\":\"event_id\",\"type\":\"string\"},"                                                 \
    "{\"name\":\"order_id\",\"type\":\"string\"},"                                                 \
    "{\"name\":\"customer_id\",\"type\":\"string\"},"                                              \
    "{\"name\":\"version\",\"type\":\"long\"},"                                                    \
    "{\"name\":\"placed_at\",\"type\":{\"type\":\"long\",\"logicalType\":\"timestamp-millis\"}},"  \
    "{\"name\":\"total_cents\",\"type\":\"long\"},"                                                \
    "{\"name\":\"tax_rate\",\"type\":\"double\"},"                                                 \
    "{\"name\":\"currency\",\"type\":\"string\"},"                                                 \
    "{\"name\":\"status\",\"type\":{\"type\":\"enum\",\"name\":\"Status\",\"symbols\":"            \
    "[\"NEW\",\"PAID\",\"SHIPPED\",\"CANCELLED\"]}},"                                              \
    "{\"name\":\"note\",\"type\":[\"null\",\"string\"],\"default\":null},"                         \
    "{\"name\":\"lines\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":"    \
    "\"Line\",\"fields\":[{\"name\":\"sku\",\"type\":\"string\"},{\"name\":\"qty\",\"type\":"      \
    "\"int\"},{\"name\":\"price_cents\",\"type\":\"long\"}]}}},"                                   \
    "{\"name\":\"attributes\",\"type\":{\"type\":\"map\",\"values\":\"string\"}}]}"

#define VALUE                                                                                      \
    "{\"event_id\":\"5b0c3f8e-2f4a-4f0e-9a43-7c1d2e3f4a5b\",\"order_id\":\"order-000123\","        \
    "\"customer_id\":\"customer-42\",\"version\":17,\"placed_at\":1700000000123,"                  \
    "\"total_cents\":129900,\"tax_rate\":0.2,\"currency\":\"EUR\",\"status\":\"PAID\","            \
    "\"note\":\"leave at the door\",\"lines\":["                                                   \
    "{\"sku\":\"SKU-1001\",\"qty\":1,\"price_cents\":99900},"                                      \
    "{\"sku\":\"SKU-2002\",\"qty\":2,\"price_cents\":10000},"                                      \
    "{\"sku\":\"SKU-3003\",\"qty\":1,\"price_cents\":10000}],"                                     \
    "\"attributes\":{\"channel\":\"web\",\"region\":\"eu-west\"}}"

#define SLICES 20

enum { ENC_CAIRN, ENC_AVROC, DEC_CAIRN, DEC_AVROC, NCASES };
static const char *const case_names[NCASES] = {"encode.cairn", "encode.avroc", "decode.cairn",
                                               "decode.avroc"};

typedef struct bench {
    const cairn_avro_node_t *root;
    cairn_avro_resolver_t *res;
    json_t *json;
    cairn_buf_t buf;
    avro_value_t value, scratch;
    avro_writer_t writer;
    avro_reader_t reader;
    char out[4096];
    char in[4096];
    size_t in_len;
} bench_t;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static _Noreturn void die(const char *what)
{
    fprintf(stderr, "bench_sdk_serde: %s\n", what);
    exit(1);
}

static void set_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f;
    if (avro_value_get_by_name(rec, name, &f, NULL) != 0 || avro_value_set_string(&f, s) != 0)
        die(avro_strerror());
}

static void set_long(avro_value_t *rec, const char *name, int64_t x)
{
    avro_value_t f;
    if (avro_value_get_by_name(rec, name, &f, NULL) != 0 || avro_value_set_long(&f, x) != 0)
        die(avro_strerror());
}

/* The VALUE record, filled by hand into avro-c's generic value. */
static void fill_avroc(avro_value_t *v)
{
    avro_value_t f, b, it;
    set_str(v, "event_id", "5b0c3f8e-2f4a-4f0e-9a43-7c1d2e3f4a5b");
    set_str(v, "order_id", "order-000123");
    set_str(v, "customer_id", "customer-42");
    set_long(v, "version", 17);
    set_long(v, "placed_at", 1700000000123LL);
    set_long(v, "total_cents", 129900);
    avro_value_get_by_name(v, "tax_rate", &f, NULL);
    avro_value_set_double(&f, 0.2);
    set_str(v, "currency", "EUR");
    avro_value_get_by_name(v, "status", &f, NULL);
    avro_value_set_enum(&f, 1);
    avro_value_get_by_name(v, "note", &f, NULL);
    avro_value_set_branch(&f, 1, &b);
    avro_value_set_string(&b, "leave at the door");
    avro_value_get_by_name(v, "lines", &f, NULL);
    static const struct {
        const char *sku;
        int qty;
        int64_t price;
    } lines[] = {{"SKU-1001", 1, 99900}, {"SKU-2002", 2, 10000}, {"SKU-3003", 1, 10000}};
    for (size_t i = 0; i < 3; i++) {
        avro_value_t q;
        avro_value_append(&f, &it, NULL);
        set_str(&it, "sku", lines[i].sku);
        avro_value_get_by_name(&it, "qty", &q, NULL);
        avro_value_set_int(&q, lines[i].qty);
        set_long(&it, "price_cents", lines[i].price);
    }
    avro_value_get_by_name(v, "attributes", &f, NULL);
    avro_value_add(&f, "channel", &it, NULL, NULL);
    avro_value_set_string(&it, "web");
    avro_value_add(&f, "region", &it, NULL, NULL);
    avro_value_set_string(&it, "eu-west");
}

static int run_once(bench_t *b, int c)
{
    json_t *out;
    switch (c) {
    case ENC_CAIRN:
        cairn_buf_reset(&b->buf);
        return cairn__avro_encode(b->root, b->json, &b->buf, NULL) != CAIRN_OK;
    case ENC_AVROC:
        avro_writer_memory_set_dest(b->writer, b->out, sizeof b->out);
        return avro_value_write(b->writer, &b->value) != 0;
    case DEC_CAIRN:
        if (cairn__avro_decode(b->res, b->in, b->in_len, &out, NULL) != CAIRN_OK)
            return 1;
        json_decref(out);
        return 0;
    default:
        avro_reader_memory_set_source(b->reader, b->in, (int64_t)b->in_len);
        return avro_value_read(b->reader, &b->scratch) != 0;
    }
}

/* Runs case @p c for about @p seconds; adds ops and time to the totals. */
static void time_slice(bench_t *b, int c, double seconds, size_t *iters, double *spent)
{
    size_t n = 0;
    double t0 = now_s(), t;
    do {
        for (int i = 0; i < 200; i++) {
            if (run_once(b, c))
                die(case_names[c]);
        }
        n += 200;
        t = now_s();
    } while (t - t0 < seconds);
    *iters += n;
    *spent += t - t0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    double seconds = 0.5;
    int rounds = 5;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--smoke") == 0) {
            seconds = 0.05;
            rounds = 1;
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench_sdk_serde [--smoke] [--seconds S] [--rounds N]\n");
            return 2;
        }
    }
    if (rounds < 1 || rounds > 99 || seconds <= 0)
        die("bad --rounds or --seconds");

    bench_t b;
    cairn_error_t err = {0};
    cairn_avro_model_t *model = NULL;
    if (cairn__avro_parse(SCHEMA, strlen(SCHEMA), NULL, 0, &model, &err) != CAIRN_OK)
        die(err.text);
    b.root = cairn__avro_model_root(model);
    if (cairn__avro_resolver_new(b.root, b.root, &b.res, &err) != CAIRN_OK)
        die(err.text);
    json_error_t je;
    if (!(b.json = json_loads(VALUE, 0, &je)))
        die(je.text);
    cairn_buf_init(&b.buf, 1 << 20);

    avro_schema_t as;
    if (avro_schema_from_json_length(SCHEMA, strlen(SCHEMA), &as) != 0)
        die(avro_strerror());
    avro_value_iface_t *iface = avro_generic_class_from_schema(as);
    if (!iface || avro_generic_value_new(iface, &b.value) != 0 ||
        avro_generic_value_new(iface, &b.scratch) != 0)
        die(avro_strerror());
    fill_avroc(&b.value);
    b.writer = avro_writer_memory(b.out, sizeof b.out);
    b.reader = avro_reader_memory(b.in, 0);

    /* Both encoders agree, and we decode back to the same JSON. */
    if (run_once(&b, ENC_CAIRN) || run_once(&b, ENC_AVROC))
        die("first encode failed");
    size_t alen = (size_t)avro_writer_tell(b.writer);
    if (alen != b.buf.len || memcmp(b.out, b.buf.data, alen) != 0)
        die("cairn and avro-c encode the record differently");
    memcpy(b.in, b.buf.data, b.buf.len);
    b.in_len = b.buf.len;
    json_t *back = NULL;
    if (cairn__avro_decode(b.res, b.in, b.in_len, &back, &err) != CAIRN_OK ||
        !json_equal(back, b.json))
        die("decode does not give the value back");
    json_decref(back);
    /* avro_value_read into a reused value must not accumulate array items */
    for (int i = 0; i < 2; i++) {
        if (run_once(&b, DEC_AVROC))
            die("avro-c decode failed");
    }
    avro_value_t lines;
    size_t nlines = 0;
    avro_value_get_by_name(&b.scratch, "lines", &lines, NULL);
    avro_value_get_size(&lines, &nlines);
    if (nlines != 3)
        die("avro-c's reused value kept items of the previous read");

    /* Within a round the cases take turns in 20 slices each, so that a
     * change of load on the shared machine hits all four alike. */
    double ns[NCASES][99];
    size_t iters[NCASES] = {0};
    for (int r = 0; r < rounds; r++) {
        size_t n[NCASES] = {0};
        double spent[NCASES] = {0};
        for (int slice = 0; slice < SLICES; slice++) {
            for (int c = 0; c < NCASES; c++)
                time_slice(&b, c, seconds / SLICES, &n[c], &spent[c]);
        }
        for (int c = 0; c < NCASES; c++) {
            ns[c][r] = spent[c] * 1e9 / (double)n[c];
            iters[c] = n[c];
        }
    }
    double med[NCASES];
    for (int c = 0; c < NCASES; c++) {
        qsort(ns[c], (size_t)rounds, sizeof ns[c][0], cmp_double);
        med[c] = ns[c][rounds / 2];
        printf("name=sdk.serde.%s iters=%zu ns_per_op=%.1f bytes=%zu rounds=%d\n", case_names[c],
               iters[c], med[c], b.in_len, rounds);
    }
    double renc = med[ENC_AVROC] / med[ENC_CAIRN], rdec = med[DEC_AVROC] / med[DEC_CAIRN];
    printf("name=sdk.serde.ratio encode=%.2f decode=%.2f target=0.60 %s\n", renc, rdec,
           renc >= 0.6 && rdec >= 0.6 ? "met" : "MISSED");

    avro_writer_free(b.writer);
    avro_reader_free(b.reader);
    avro_value_decref(&b.value);
    avro_value_decref(&b.scratch);
    avro_value_iface_decref(iface);
    avro_schema_decref(as);
    cairn_buf_release(&b.buf);
    json_decref(b.json);
    cairn__avro_resolver_free(b.res);
    cairn__avro_model_free(model);
    return 0;
}
