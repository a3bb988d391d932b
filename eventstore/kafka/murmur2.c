/* SPDX-License-Identifier: MIT */
/*
 * murmur2.c - Kafka's murmur2 key hash and the partition it picks.
 *
 * The Java client (and kafkajs, and librdkafka's "murmur2_random"
 * partitioner) put a keyed record in partition
 * (murmur2(key) & 0x7fffffff) % partitions, where murmur2 is Austin
 * Appleby's MurmurHash2 with Kafka's seed 0x9747b28c, reading the key as
 * little-endian 32-bit words. We compute it ourselves so that
 * cairn_log_partition_of answers without a producer, and we also produce
 * with the explicit partition, so the stream -> partition map never depends
 * on a client setting; tests/unit/eventstore/test_murmur2.c checks that it
 * agrees with librdkafka's partitioner and with Kafka's published values.
 */
#include "kafka_int.h"

uint32_t cairn__kafka_murmur2(const void *data, size_t len)
{
    const unsigned char *p = data;
    const uint32_t m = 0x5bd1e995u;
    const int r = 24;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    size_t words = len / 4;

    for (size_t i = 0; i < words; i++) {
        const unsigned char *w = p + i * 4;
        uint32_t k =
            (uint32_t)w[0] | (uint32_t)w[1] << 8 | (uint32_t)w[2] << 16 | (uint32_t)w[3] << 24;
        k *= m;
        k ^= k >> r;
        k *= m;
        h *= m;
        h ^= k;
    }
    const unsigned char *tail = p + words * 4;
    size_t rest = len & 3;
    if (rest == 3)
        h ^= (uint32_t)tail[2] << 16;
    if (rest >= 2)
        h ^= (uint32_t)tail[1] << 8;
    if (rest >= 1) {
        h ^= (uint32_t)tail[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

int cairn__kafka_partition_of(const void *key, size_t len, int partitions)
{
    if (partitions <= 0)
        return 0;
    return (int)((cairn__kafka_murmur2(key, len) & 0x7fffffffu) % (uint32_t)partitions);
}
