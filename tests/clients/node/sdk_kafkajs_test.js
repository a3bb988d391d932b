// SPDX-License-Identifier: MIT
//
// sdk_kafkajs_test.js - the Node half of tests/clients/test_sdk_kafkajs.sh:
// events that libcairn (the bank example, examples/bank) appended to a topic
// of the mock Kafka cluster are consumed with kafkajs (pinned 2.2.4) and
// decoded with @kafkajs/confluent-schema-registry (pinned 3.9.0), and must
// equal the JSON the service built; and values that this package encodes
// must decode in libcairn to the same JSON. Neither package was written
// here, so agreement shows that our wire format, subjects and JSON form
// (docs/JSON-FORM.md) are what the Confluent ecosystem expects.
//
// The only conversion between the two sides is the one docs/JSON-FORM.md
// names: avsc hands out Avro bytes as a Buffer, the JSON form writes them as
// a string whose code points 0-255 are the bytes (latin1).
//
// usage:
//   node sdk_kafkajs_test.js consume BROKERS TOPIC REGISTRY_URL BUILT.jsonl
//       BUILT.jsonl: one {"stream","version","type","value"} per event, as
//       `cairn-bank --print-events` printed them.
//   node sdk_kafkajs_test.js produce REGISTRY_URL TOPIC SCHEMA_DIR WIRE.hex EXPECTED.jsonl
//       registers the bank's event schemas under "<TOPIC>-<full name>"
//       (TopicRecordNameStrategy, as the SDK does), encodes a fixed set of
//       values, writes one hex wire value per line and the JSON form of each.
//   node sdk_kafkajs_test.js compare EXPECTED.jsonl DECODED.jsonl
//       DECODED.jsonl: `cairn-bank decode` output ({"schema_id","value"}).
'use strict';

const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { Kafka, logLevel } = require('kafkajs');
const { SchemaRegistry, SchemaType, COMPATIBILITY } = require('@kafkajs/confluent-schema-registry');

function readJsonLines(file) {
    return fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '')
        .map((l, i) => {
            try {
                return JSON.parse(l);
            } catch (e) {
                throw new Error(`${file}:${i + 1}: not JSON: ${l}`);
            }
        });
}

// avsc's decoded value -> the SDK's JSON form. Buffers (Avro bytes/fixed)
// become latin1 strings; everything else is already plain JSON.
function toJsonForm(v) {
    if (Buffer.isBuffer(v)) {
        return v.toString('latin1');
    }
    if (Array.isArray(v)) {
        return v.map(toJsonForm);
    }
    if (v !== null && typeof v === 'object') {
        const out = {};
        for (const k of Object.keys(v)) {
            out[k] = toJsonForm(v[k]);
        }
        return out;
    }
    return v;
}

function header(msg, name) {
    const h = msg.headers && msg.headers[name];
    if (h === undefined || h === null) {
        return null;
    }
    return Buffer.isBuffer(h) ? h.toString('utf8') : String(h);
}

async function consume(brokers, topic, registryUrl, builtFile) {
    const built = readJsonLines(builtFile);
    assert.ok(built.length > 0, `${builtFile} holds no events`);
    const kafka = new Kafka({
        clientId: 'cairn-sdk-kafkajs-test',
        brokers: brokers.split(','),
        logLevel: logLevel.ERROR,
        retry: { retries: 5 },
    });
    const registry = new SchemaRegistry({ host: registryUrl, retry: { retries: 0 } });
    // A fresh group per run; 6 s session timeout because the mock makes a
    // rejoin wait that long (shared/ENVIRONMENT.md).
    const consumer = kafka.consumer({
        groupId: `cairn-sdk-rt-${process.pid}-${Date.now()}`,
        sessionTimeout: 6000,
        heartbeatInterval: 1000,
    });
    const got = []; // {partition, offset, stream, type, value}
    let skipped = 0;
    let failure = null;
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const done = new Promise((resolve) => {
        consumer.run({
            eachMessage: async ({ partition, message }) => {
                // Cairn's own records share the topic: claim records (header
                // cairn.claim, no key), the partition-0 metadata record
                // (cairn.meta), and on a topic with several writers fenced
                // records too (eventstore/README.md). Claims and metadata
                // carry no cairn.type header, so a reader that is not Cairn's
                // skips records without one; this test has one writer, so
                // nothing is fenced and every typed record is an event.
                const type = header(message, 'cairn.type');
                if (type === null) {
                    skipped++;
                    return;
                }
                try {
                    const value = await registry.decode(message.value);
                    got.push({
                        partition,
                        offset: BigInt(message.offset),
                        stream: message.key ? message.key.toString('utf8') : null,
                        type,
                        value: toJsonForm(value),
                    });
                } catch (e) {
                    failure = e;
                }
                if (got.length >= built.length || failure) {
                    resolve();
                }
            },
        });
    });
    const timeout = new Promise((resolve) => setTimeout(resolve, 60000));
    await Promise.race([done, timeout]);
    await consumer.disconnect();
    if (failure) {
        throw failure;
    }
    console.log(`consumed ${got.length} events, skipped ${skipped} records without cairn.type`);
    assert.ok(skipped >= 1, 'no claim or metadata record seen: the topic is not a Cairn log');
    assert.strictEqual(got.length, built.length,
        `kafkajs saw ${got.length} events, the service built ${built.length}`);

    // One stream stays in one partition and in order: the k-th typed record
    // of a key is the k-th event of that stream.
    const byStream = new Map();
    got.sort((a, b) => (a.partition - b.partition) || (a.offset < b.offset ? -1 : 1));
    for (const r of got) {
        if (!byStream.has(r.stream)) {
            byStream.set(r.stream, []);
        }
        byStream.get(r.stream).push(r);
    }
    const streams = new Set(built.map((b) => b.stream));
    assert.deepStrictEqual([...byStream.keys()].sort(), [...streams].sort());
    const parts = new Map();
    for (const r of got) {
        if (parts.has(r.stream)) {
            assert.strictEqual(parts.get(r.stream), r.partition,
                `stream ${r.stream} is in two partitions`);
        }
        parts.set(r.stream, r.partition);
    }
    let compared = 0;
    for (const s of streams) {
        const want = built.filter((b) => b.stream === s).sort((a, b) => a.version - b.version);
        const have = byStream.get(s);
        assert.strictEqual(have.length, want.length, `stream ${s}: count`);
        for (let i = 0; i < want.length; i++) {
            assert.strictEqual(want[i].version, i + 1, `stream ${s}: built versions not 1..N`);
            assert.strictEqual(have[i].type, want[i].type, `stream ${s} v${i + 1}: type`);
            assert.deepStrictEqual(have[i].value, want[i].value,
                `stream ${s} v${i + 1}: decoded value differs`);
            compared++;
        }
    }
    console.log(`ok   ${compared} events decoded by kafkajs equal the JSON the service built`);
}

// The values the reverse direction encodes: the edge cases of the JSON form
// the bank's schemas can show (plain and null unions, bytes at code points 0
// and 255, non-ASCII strings, longs beyond 2^32, an enum, a default).
const REVERSE = [
    ['AccountOpened', { account: 'js-1', owner: 'Zoë Ødegård', currency: 'GBP', overdraft: 0 }],
    ['AccountOpened', { account: 'js-2', owner: 'x', currency: 'USD', overdraft: 250000 }],
    ['Deposited', { account: 'js-1', amount: 1, balance: 1, memo: null, reference: Buffer.alloc(0) }],
    ['Deposited', {
        account: 'js-1', amount: 4294967296, balance: 4294967297, memo: 'salary ☕ 𝄞',
        reference: Buffer.from([0x00, 0x01, 0x7f, 0x80, 0xe9, 0xff]),
    }],
    ['Withdrawn', { account: 'js-1', amount: 97, balance: 4294967200, memo: 'rent' }],
    // Largest magnitudes avsc encodes exactly: it zigzags longs in double
    // arithmetic, so beyond 2^52 a negative long is written as its absolute
    // value (seen here with -9007199254740000: the same bytes as +).
    ['Withdrawn', { account: 'js-2', amount: 4503599627370000, balance: -4503599627370000, memo: null }],
];

async function produce(registryUrl, topic, schemaDir, wireFile, expectedFile) {
    const registry = new SchemaRegistry({ host: registryUrl, retry: { retries: 0 } });
    const ids = {};
    for (const name of ['AccountOpened', 'Deposited', 'Withdrawn']) {
        const text = fs.readFileSync(path.join(schemaDir, `${name}.avsc`), 'utf8');
        const schema = JSON.parse(text);
        const subject = `${topic}-${schema.namespace}.${schema.name}`;
        // The SDK sets the subjects it registers to BACKWARD_TRANSITIVE
        // (docs/SDK.md); this package refuses to register under a subject
        // whose level differs from the one it is given, so say that level.
        const res = await registry.register({ type: SchemaType.AVRO, schema: text },
            { subject, compatibility: COMPATIBILITY.BACKWARD_TRANSITIVE });
        ids[name] = res.id;
    }
    const wire = [];
    const expected = [];
    for (const [name, value] of REVERSE) {
        const buf = await registry.encode(ids[name], value);
        assert.strictEqual(buf[0], 0);
        assert.strictEqual(buf.readInt32BE(1), ids[name]);
        wire.push(buf.toString('hex'));
        expected.push(JSON.stringify({ schema_id: ids[name], value: toJsonForm(value) }));
    }
    fs.writeFileSync(wireFile, wire.join('\n') + '\n');
    fs.writeFileSync(expectedFile, expected.join('\n') + '\n');
    console.log(`encoded ${wire.length} values with @kafkajs/confluent-schema-registry`);
}

function compare(expectedFile, decodedFile) {
    const want = readJsonLines(expectedFile);
    const have = readJsonLines(decodedFile);
    assert.strictEqual(have.length, want.length,
        `libcairn decoded ${have.length} values, ${want.length} were encoded`);
    for (let i = 0; i < want.length; i++) {
        assert.deepStrictEqual(have[i], want[i], `value ${i + 1} decoded differently`);
    }
    console.log(`ok   ${want.length} values encoded by the npm client decode in libcairn to the same JSON`);
}

async function main() {
    const [cmd, ...args] = process.argv.slice(2);
    if (cmd === 'consume' && args.length === 4) {
        await consume(...args);
    } else if (cmd === 'produce' && args.length === 5) {
        await produce(...args);
    } else if (cmd === 'compare' && args.length === 2) {
        compare(...args);
    } else {
        console.error('usage: node sdk_kafkajs_test.js consume|produce|compare ... (see the file)');
        process.exit(2);
    }
}

main().then(() => process.exit(0), (e) => {
    console.error(`FAIL ${e && e.stack ? e.stack : e}`);
    process.exit(1);
});
