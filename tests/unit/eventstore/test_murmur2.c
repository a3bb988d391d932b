/* SPDX-License-Identifier: MIT */
/*
 * test_murmur2.c - Kafka's murmur2 partitioner (eventstore/kafka/murmur2.c):
 * the hash values Kafka's own Java tests publish, and agreement with
 * librdkafka's murmur2 partitioner over many keys and partition counts, so
 * that cairn_log_partition_of names the partition Java clients, kafkajs and
 * librdkafka's murmur2_random pick for a stream id.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "kafka/kafka_int.h"

static void test_murmur2_matches_kafka_published_values(void **state)
{
    /* From Kafka's UtilsTest.testMurmur2 (Java ints). */
    static const struct {
        const char *key;
        int32_t h;
    } cases[] = {
        {"21", -973932308},
        {"foobar", -790332482},
        {"a-little-bit-long-string", -985981536},
        {"a-little-bit-longer-string", -1486304829},
        {"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
        {"abc", 479470107},
    };
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal((int32_t)cairn__kafka_murmur2(cases[i].key, strlen(cases[i].key)),
                         cases[i].h);
}

static void test_partition_of_is_positive_modulo(void **state)
{
    (void)state;
    /* "21" hashes negative: & 0x7fffffff before the modulo, as Java's toPositive. */
    uint32_t h = cairn__kafka_murmur2("21", 2);
    assert_int_equal(cairn__kafka_partition_of("21", 2, 7), (int)((h & 0x7fffffffu) % 7));
    assert_int_equal(cairn__kafka_partition_of("21", 2, 1), 0);
    assert_int_equal(cairn__kafka_partition_of("x", 1, 0), 0);
}

static void test_partition_of_agrees_with_librdkafka_murmur2(void **state)
{
    char es[256];
    (void)state;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, es, sizeof(es));
    assert_non_null(rk);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, "murmur2-agreement", NULL);
    assert_non_null(rkt);
    static const int counts[] = {1, 2, 3, 4, 7, 12, 64, 100};
    char key[64];
    for (int i = 0; i < 3000; i++) {
        int len = snprintf(key, sizeof(key), "stream-%d-%x", i, (unsigned)(i * 2654435761u));
        /* every length 0..len, so that each tail case of the hash is covered */
        size_t klen = (size_t)(i % (len + 1));
        for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
            int32_t theirs =
                rd_kafka_msg_partitioner_murmur2(rkt, key, klen, counts[c], NULL, NULL);
            assert_int_equal(cairn__kafka_partition_of(key, klen, counts[c]), theirs);
        }
    }
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur2_matches_kafka_published_values),
        cmocka_unit_test(test_partition_of_is_positive_modulo),
        cmocka_unit_test(test_partition_of_agrees_with_librdkafka_murmur2),
    };
    return cmocka_run_group_tests_name("eventstore.murmur2", tests, NULL, NULL);
}
