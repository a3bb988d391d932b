# SPDX-License-Identifier: MIT
"""test_python_confluent.py - Confluent's own Python client against a real cairn server.

confluent_kafka.schema_registry.SchemaRegistryClient (python3-confluent-kafka
1.7 from Debian) is code nobody on this team wrote: if it can register, look
up, list, check compatibility, change config and delete through our server,
existing Confluent users can switch. (Its AvroSerializer needs fastavro,
which Debian 12 does not ship, so serialisation is covered by the Node test.)
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get('CAIRN_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'support'))
from cairn_server import CairnServer, record, run_tests  # noqa: E402

try:
    from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
    from confluent_kafka.schema_registry.error import SchemaRegistryError
    IMPORT_ERROR = None
except ImportError as e:  # reported as a failure below, never skipped
    IMPORT_ERROR = e

SRV = None

V1 = record('Payment', ('id', 'string'), ('amount', 'double'), namespace='com.acme')
V2 = record('Payment', ('id', 'string'), ('amount', 'double'), ('currency', 'string', 'EUR'),
            namespace='com.acme')
BAD = record('Payment', ('id', 'string'), ('amount', 'double'), ('region', 'string'),
             namespace='com.acme')


def setUpModule():
    global SRV
    if IMPORT_ERROR is not None:
        raise RuntimeError('python3-confluent-kafka is required (run with /usr/bin/python3): %s'
                           % IMPORT_ERROR)
    SRV = CairnServer()


def tearDownModule():
    if SRV:
        SRV.cleanup()


def avro(schema):
    return Schema(json.dumps(schema), 'AVRO')


class ConfluentPythonClient(unittest.TestCase):
    def client(self):
        # A new client per test: the client caches ids, and we want the server's answers.
        return SchemaRegistryClient({'url': SRV.url})

    def test_register_lookup_get(self):
        c = self.client()
        sid = c.register_schema('py-payments-value', avro(V1))
        self.assertIsInstance(sid, int)
        self.assertEqual(self.client().register_schema('py-payments-value', avro(V1)), sid)
        got = self.client().get_schema(sid)
        self.assertEqual(got.schema_type, 'AVRO')
        self.assertEqual(json.loads(got.schema_str), V1)
        reg = self.client().lookup_schema('py-payments-value', avro(V1))
        self.assertEqual((reg.schema_id, reg.subject, reg.version), (sid, 'py-payments-value', 1))
        self.assertEqual(json.loads(reg.schema.schema_str), V1)

    def test_versions_latest_and_subjects(self):
        c = self.client()
        id1 = c.register_schema('py-ver', avro(V1))
        id2 = c.register_schema('py-ver', avro(V2))
        self.assertNotEqual(id1, id2)
        self.assertEqual(c.get_versions('py-ver'), [1, 2])
        latest = c.get_latest_version('py-ver')
        self.assertEqual((latest.schema_id, latest.version, latest.subject), (id2, 2, 'py-ver'))
        self.assertEqual(json.loads(latest.schema.schema_str), V2)
        v1 = c.get_version('py-ver', 1)
        self.assertEqual((v1.schema_id, v1.version), (id1, 1))
        self.assertIn('py-ver', c.get_subjects())

    def test_compatibility_and_refusal(self):
        c = self.client()
        c.register_schema('py-compat', avro(V1))
        self.assertTrue(c.test_compatibility('py-compat', avro(V2)))
        self.assertFalse(c.test_compatibility('py-compat', avro(BAD)))
        self.assertTrue(c.test_compatibility('py-compat', avro(V2), version=1))
        with self.assertRaises(SchemaRegistryError) as cm:
            c.register_schema('py-compat', avro(BAD))
        self.assertEqual(cm.exception.http_status_code, 409)
        self.assertEqual(cm.exception.error_code, 409)
        self.assertEqual(c.get_versions('py-compat'), [1])

    def test_config(self):
        c = self.client()
        c.register_schema('py-config', avro(V1))
        self.assertEqual(c.get_compatibility(), 'BACKWARD')
        self.assertEqual(c.set_compatibility('py-config', 'none'), {'compatibility': 'NONE'})
        self.assertEqual(c.get_compatibility('py-config'), 'NONE')
        # now the otherwise incompatible schema registers
        c.register_schema('py-config', avro(BAD))
        self.assertEqual(c.get_versions('py-config'), [1, 2])
        with self.assertRaises(SchemaRegistryError) as cm:
            c.set_compatibility('py-config', 'SIDEWAYS')
        self.assertEqual(cm.exception.error_code, 42203)
        with self.assertRaises(SchemaRegistryError) as cm:
            c.get_compatibility('py-config-nothing')
        self.assertEqual(cm.exception.error_code, 40408)

    def test_delete_version_and_subject(self):
        c = self.client()
        c.register_schema('py-del', avro(V1))
        c.register_schema('py-del', avro(V2))
        self.assertEqual(c.delete_version('py-del', 2), 2)
        self.assertEqual(c.get_versions('py-del'), [1])
        self.assertEqual(c.delete_subject('py-del'), [1])
        self.assertNotIn('py-del', c.get_subjects())
        with self.assertRaises(SchemaRegistryError) as cm:
            c.get_versions('py-del')
        self.assertEqual(cm.exception.error_code, 40401)
        c.register_schema('py-del-hard', avro(V1))
        self.assertEqual(c.delete_subject('py-del-hard', permanent=True), [1])
        c2 = self.client()
        c2.register_schema('py-del-hard', avro(V2))
        self.assertEqual(c2.get_versions('py-del-hard'), [1])

    def test_errors_come_as_schema_registry_errors(self):
        c = self.client()
        with self.assertRaises(SchemaRegistryError) as cm:
            c.get_schema(987654)
        self.assertEqual((cm.exception.http_status_code, cm.exception.error_code), (404, 40403))
        with self.assertRaises(SchemaRegistryError) as cm:
            c.register_schema('py-invalid', Schema('{"type":"nonsense"}', 'AVRO'))
        self.assertEqual((cm.exception.http_status_code, cm.exception.error_code), (422, 42201))
        c.register_schema('py-lookup', avro(V1))
        with self.assertRaises(SchemaRegistryError) as cm:
            c.lookup_schema('py-lookup', avro(V2))
        self.assertEqual(cm.exception.error_code, 40403)
        with self.assertRaises(SchemaRegistryError) as cm:
            c.get_version('py-lookup', 5)
        self.assertEqual(cm.exception.error_code, 40402)

    def test_subject_with_slash(self):
        c = self.client()
        sid = c.register_schema('py/slash', avro(V1))
        self.assertIn('py/slash', c.get_subjects())
        self.assertEqual(c.get_latest_version('py/slash').schema_id, sid)


if __name__ == '__main__':
    run_tests()
