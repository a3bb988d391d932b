// SPDX-License-Identifier: MIT
//
// kafkajs_test.js - @kafkajs/confluent-schema-registry (pinned 3.9.0) against a
// cairn registry: register an Avro schema, encode a record in the Confluent
// wire format (magic byte 0, 4-byte big-endian schema id, Avro binary),
// decode it back, read the latest id, and see an incompatible registration
// refused. The library is the one most Node services use, so this proves
// they can point at cairn unchanged.
//
// usage: node kafkajs_test.js http://127.0.0.1:PORT
'use strict';

const assert = require('assert');
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');

const url = process.argv[2];
if (!url) {
    console.error('usage: node kafkajs_test.js URL');
    process.exit(2);
}

const subject = 'js-orders-value';
const v1 = {
    type: 'record',
    name: 'Order',
    namespace: 'com.acme',
    fields: [
        { name: 'id', type: 'string' },
        { name: 'qty', type: 'int' },
        { name: 'price', type: 'double' },
        { name: 'tags', type: { type: 'array', items: 'string' } },
    ],
};
const v2 = JSON.parse(JSON.stringify(v1));
v2.fields.push({ name: 'note', type: ['null', 'string'], default: null });
const incompatible = JSON.parse(JSON.stringify(v1));
incompatible.fields[1] = { name: 'qty', type: 'string' };

const results = [];
async function step(name, fn) {
    try {
        await fn();
        results.push([name, null]);
        console.log(`ok   ${name}`);
    } catch (e) {
        results.push([name, e]);
        console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    }
}

async function main() {
    const registry = new SchemaRegistry({ host: url, retry: { retries: 0 } });
    let id1;
    let id2;
    const order = { id: 'o-1', qty: 3, price: 9.5, tags: ['a', 'b'] };

    await step('register returns an id', async () => {
        const res = await registry.register(
            { type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject });
        assert.strictEqual(typeof res.id, 'number');
        id1 = res.id;
    });

    await step('register again returns the same id', async () => {
        const fresh = new SchemaRegistry({ host: url, retry: { retries: 0 } });
        const res = await fresh.register(
            { type: SchemaType.AVRO, schema: JSON.stringify(v1) }, { subject });
        assert.strictEqual(res.id, id1);
    });

    await step('encode writes magic byte 0 and the big-endian id', async () => {
        const buf = await registry.encode(id1, order);
        assert.ok(Buffer.isBuffer(buf));
        assert.ok(buf.length > 5);
        assert.strictEqual(buf[0], 0);
        assert.strictEqual(buf.readInt32BE(1), id1);
    });

    await step('decode (fresh client, schema fetched by id) gives the record back', async () => {
        const buf = await registry.encode(id1, order);
        const fresh = new SchemaRegistry({ host: url, retry: { retries: 0 } });
        const back = await fresh.decode(buf);
        assert.deepStrictEqual(JSON.parse(JSON.stringify(back)), order);
    });

    await step('compatible evolution registers a new id', async () => {
        const res = await registry.register(
            { type: SchemaType.AVRO, schema: JSON.stringify(v2) }, { subject });
        assert.notStrictEqual(res.id, id1);
        id2 = res.id;
    });

    await step('getLatestSchemaId returns the newest id', async () => {
        const fresh = new SchemaRegistry({ host: url, retry: { retries: 0 } });
        assert.strictEqual(await fresh.getLatestSchemaId(subject), id2);
        assert.strictEqual(await fresh.getRegistryId(subject, 1), id1);
        assert.strictEqual(await fresh.getRegistryId(subject, 'latest'), id2);
    });

    await step('old data decodes with the new reader schema', async () => {
        const buf = await registry.encode(id1, order);
        const fresh = new SchemaRegistry({ host: url, retry: { retries: 0 } });
        const reader = await fresh.getSchema(id2);
        const back = await fresh.decode(buf, { [SchemaType.AVRO]: { readerSchema: reader } });
        assert.deepStrictEqual(JSON.parse(JSON.stringify(back)), { ...order, note: null });
    });

    await step('getRegistryIdBySchema finds the registered schema', async () => {
        const fresh = new SchemaRegistry({ host: url, retry: { retries: 0 } });
        const id = await fresh.getRegistryIdBySchema(
            subject, { type: SchemaType.AVRO, schema: JSON.stringify(v1) });
        assert.strictEqual(id, id1);
    });

    await step('an incompatible schema is refused', async () => {
        let err = null;
        try {
            await registry.register(
                { type: SchemaType.AVRO, schema: JSON.stringify(incompatible) }, { subject });
        } catch (e) {
            err = e;
        }
        assert.ok(err, 'registration of an incompatible schema succeeded');
        assert.strictEqual(err.status, 409, `expected HTTP 409, got ${err.status}: ${err.message}`);
        const fresh = new SchemaRegistry({ host: url, retry: { retries: 0 } });
        assert.strictEqual(await fresh.getLatestSchemaId(subject), id2);
    });

    await step('an unknown id is an error on decode', async () => {
        const buf = Buffer.from([0, 0x00, 0x0f, 0x42, 0x3f, 0x02]);
        let err = null;
        try {
            await registry.decode(buf);
        } catch (e) {
            err = e;
        }
        assert.ok(err, 'decoding with an unknown schema id succeeded');
        assert.strictEqual(err.status, 404);
    });

    const failed = results.filter(([, e]) => e !== null);
    console.log(`summary: kafkajs_test.js ran=${results.length} failed=${failed.length} -> ` +
                (failed.length ? 'FAIL' : 'OK'));
    process.exit(failed.length ? 1 : 0);
}

main().catch((e) => {
    console.error(`FAIL unexpected: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
});
