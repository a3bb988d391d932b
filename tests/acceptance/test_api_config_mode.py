# SPDX-License-Identifier: MIT
"""test_api_config_mode.py - REST acceptance: /config and /mode, global and per subject.

Global settings are shared by the whole server, so every test here puts
them back (DELETE /config, PUT /mode READWRITE) in tearDown; a failure in one
test therefore does not cascade into the others.
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get('CAIRN_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'support'))
from cairn_server import ApiAssertions, CairnServer, record, run_tests  # noqa: E402

SRV = None

V1 = record('Cfg', ('a', 'string'))
V_INT = record('Cfg', ('a', 'int'))  # incompatible with V1 except under NONE


def setUpModule():
    global SRV
    SRV = CairnServer()


def tearDownModule():
    if SRV:
        SRV.cleanup()


class Base(ApiAssertions, unittest.TestCase):
    def setUp(self):
        self.srv = SRV

    def tearDown(self):
        SRV.call('PUT', '/mode?force=true', {'mode': 'READWRITE'})
        SRV.call('DELETE', '/config')


class Config(Base):
    def test_global_default_is_backward(self):
        self.assertEqual(self.ok('GET', '/config'), {'compatibilityLevel': 'BACKWARD'})

    def test_put_get_delete_global(self):
        self.assertEqual(self.ok('PUT', '/config', {'compatibility': 'FULL'}),
                         {'compatibility': 'FULL'})
        self.assertEqual(self.ok('GET', '/config'), {'compatibilityLevel': 'FULL'})
        self.assertEqual(self.ok('DELETE', '/config'), {'compatibilityLevel': 'FULL'})
        self.assertEqual(self.ok('GET', '/config'), {'compatibilityLevel': 'BACKWARD'})

    def test_every_level_is_accepted(self):
        for lvl in ('NONE', 'BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE',
                    'FULL', 'FULL_TRANSITIVE'):
            self.assertEqual(self.ok('PUT', '/config', {'compatibility': lvl}),
                             {'compatibility': lvl})
            self.assertEqual(self.ok('GET', '/config'), {'compatibilityLevel': lvl})
            self.assertEqual(self.ok('PUT', '/config/cfg-every', {'compatibility': lvl}),
                             {'compatibility': lvl})
            self.assertEqual(self.ok('GET', '/config/cfg-every'), {'compatibilityLevel': lvl})

    def test_subject_without_level_40408(self):
        self.register('cfg-none', V1)
        self.err('GET', '/config/cfg-none', http_status=404, code=40408)

    def test_subject_default_to_global(self):
        self.register('cfg-dtg', V1)
        self.ok('PUT', '/config', {'compatibility': 'FORWARD'})
        self.assertEqual(self.ok('GET', '/config/cfg-dtg?defaultToGlobal=true'),
                         {'compatibilityLevel': 'FORWARD'})

    def test_put_get_delete_subject(self):
        self.register('cfg-s', V1)
        self.assertEqual(self.ok('PUT', '/config/cfg-s', {'compatibility': 'NONE'}),
                         {'compatibility': 'NONE'})
        self.assertEqual(self.ok('GET', '/config/cfg-s'), {'compatibilityLevel': 'NONE'})
        self.assertEqual(self.ok('GET', '/config/cfg-s?defaultToGlobal=true'),
                         {'compatibilityLevel': 'NONE'})
        self.assertEqual(self.ok('GET', '/config'), {'compatibilityLevel': 'BACKWARD'})
        self.assertEqual(self.ok('DELETE', '/config/cfg-s'), {'compatibilityLevel': 'NONE'})
        self.err('GET', '/config/cfg-s', http_status=404, code=40408)

    def test_subject_level_governs_registration(self):
        self.register('cfg-gov', V1)
        self.err('POST', '/subjects/cfg-gov/versions', {'schema': json.dumps(V_INT)},
                 http_status=409, code=409)
        self.ok('PUT', '/config/cfg-gov', {'compatibility': 'NONE'})
        self.register('cfg-gov', V_INT)
        self.assertEqual(self.versions('cfg-gov'), [1, 2])

    def test_global_level_governs_registration(self):
        self.register('cfg-glob', V1)
        self.ok('PUT', '/config', {'compatibility': 'NONE'})
        self.register('cfg-glob', V_INT)
        self.assertEqual(self.versions('cfg-glob'), [1, 2])

    def test_delete_subject_level_when_none_set(self):
        # Confluent answers 40401 when the subject has no level of its own.
        self.register('cfg-del-none', V1)
        self.err('DELETE', '/config/cfg-del-none', http_status=404, code=40401)
        self.assertEqual(self.ok('GET', '/config'), {'compatibilityLevel': 'BACKWARD'})

    def test_level_names_are_case_insensitive_on_input(self):
        self.assertEqual(self.ok('PUT', '/config/cfg-case', {'compatibility': 'full'}),
                         {'compatibility': 'FULL'})
        self.assertEqual(self.ok('GET', '/config/cfg-case'), {'compatibilityLevel': 'FULL'})

    def test_invalid_level_42203(self):
        for body in ({'compatibility': 'SIDEWAYS'}, {'compatibility': ''}, {},
                     {'compatibility': None}, {'compatibility': 3}):
            self.err('PUT', '/config', body, http_status=422, code=42203)
            self.err('PUT', '/config/cfg-bad', body, http_status=422, code=42203)
        self.assertEqual(self.ok('GET', '/config'), {'compatibilityLevel': 'BACKWARD'})
        self.err('GET', '/config/cfg-bad', http_status=404, code=40408)

    def test_level_kept_across_restart(self):
        self.ok('PUT', '/config/cfg-persist', {'compatibility': 'FULL_TRANSITIVE'})
        self.ok('PUT', '/mode/cfg-persist', {'mode': 'READONLY'})
        SRV.stop()
        SRV.start()
        self.assertEqual(self.ok('GET', '/config/cfg-persist'),
                         {'compatibilityLevel': 'FULL_TRANSITIVE'})
        self.assertEqual(self.ok('GET', '/mode/cfg-persist'), {'mode': 'READONLY'})


class Mode(Base):
    def test_global_default_is_readwrite(self):
        self.assertEqual(self.ok('GET', '/mode'), {'mode': 'READWRITE'})

    def test_readonly_refuses_registration_42205(self):
        self.register('mode-ro', V1)
        self.assertEqual(self.ok('PUT', '/mode', {'mode': 'READONLY'}), {'mode': 'READONLY'})
        self.assertEqual(self.ok('GET', '/mode'), {'mode': 'READONLY'})
        self.err('POST', '/subjects/mode-ro/versions',
                 {'schema': json.dumps(record('Cfg', ('a', 'string'), ('b', 'int', 1)))},
                 http_status=422, code=42205)
        self.err('POST', '/subjects/mode-ro-new/versions', {'schema': json.dumps(V1)},
                 http_status=422, code=42205)
        self.err('DELETE', '/subjects/mode-ro', http_status=422, code=42205)
        # reads still work
        self.assertEqual(self.versions('mode-ro'), [1])
        self.assertEqual(self.ok('PUT', '/mode', {'mode': 'READWRITE'}), {'mode': 'READWRITE'})
        self.register('mode-ro', record('Cfg', ('a', 'string'), ('b', 'int', 1)))
        self.assertEqual(self.versions('mode-ro'), [1, 2])
        self.assertNotIn('mode-ro-new', self.subjects())

    def test_subject_mode_40409_and_default_to_global(self):
        self.register('mode-s', V1)
        self.err('GET', '/mode/mode-s', http_status=404, code=40409)
        self.assertEqual(self.ok('GET', '/mode/mode-s?defaultToGlobal=true'),
                         {'mode': 'READWRITE'})

    def test_subject_readonly_only_blocks_that_subject(self):
        self.register('mode-sro', V1)
        self.assertEqual(self.ok('PUT', '/mode/mode-sro', {'mode': 'READONLY'}),
                         {'mode': 'READONLY'})
        self.assertEqual(self.ok('GET', '/mode/mode-sro'), {'mode': 'READONLY'})
        self.err('POST', '/subjects/mode-sro/versions',
                 {'schema': json.dumps(record('Cfg', ('a', 'string'), ('c', 'int', 1)))},
                 http_status=422, code=42205)
        self.register('mode-other', V1)
        self.assertEqual(self.ok('GET', '/mode'), {'mode': 'READWRITE'})
        self.assertEqual(self.ok('DELETE', '/mode/mode-sro'), {'mode': 'READONLY'})
        self.err('GET', '/mode/mode-sro', http_status=404, code=40409)
        self.register('mode-sro', record('Cfg', ('a', 'string'), ('c', 'int', 1)))

    def test_invalid_mode_42204(self):
        for body in ({'mode': 'SLEEPY'}, {'mode': ''}):
            self.err('PUT', '/mode', body, http_status=422, code=42204)
            self.err('PUT', '/mode/mode-bad', body, http_status=422, code=42204)
        self.assertEqual(self.ok('GET', '/mode'), {'mode': 'READWRITE'})

    def test_explicit_id_refused_in_readwrite_42205(self):
        self.err('POST', '/subjects/mode-rw-imp/versions',
                 {'schema': json.dumps(V1), 'id': 9001, 'version': 4},
                 http_status=422, code=42205)
        self.assertNotIn('mode-rw-imp', self.subjects())

    def test_import_accepts_explicit_id_and_version(self):
        s = 'mode-imp'
        self.assertEqual(self.ok('PUT', '/mode/' + s, {'mode': 'IMPORT'}), {'mode': 'IMPORT'})
        schema = record('Imported', ('i', 'long'))
        resp = self.ok('POST', '/subjects/%s/versions' % s,
                       {'schema': json.dumps(schema), 'id': 9000, 'version': 3})
        self.assertEqual(resp, {'id': 9000})
        got = self.ok('GET', '/subjects/%s/versions/3' % s)
        self.assertEqual((got['subject'], got['version'], got['id']), (s, 3, 9000))
        self.assertEqual(self.versions(s), [3])
        self.assertEqual(json.loads(self.ok('GET', '/schemas/ids/9000')['schema']), schema)
        # IMPORT skips compatibility checks
        resp = self.ok('POST', '/subjects/%s/versions' % s,
                       {'schema': json.dumps(record('Imported', ('i', 'string'))), 'id': 9001,
                        'version': 4})
        self.assertEqual(resp, {'id': 9001})
        self.ok('PUT', '/mode/' + s, {'mode': 'READWRITE'})
        self.assertEqual(self.ok('GET', '/subjects/%s/versions/latest' % s)['id'], 9001)
        # ids assigned after an import continue above it
        new_id = self.register('mode-after-imp', record('AfterImp', ('z', 'int')))
        self.assertGreater(new_id, 9001)

    def test_import_globally_needs_force_when_schemas_exist(self):
        self.register('mode-force', V1)
        self.err('PUT', '/mode', {'mode': 'IMPORT'}, http_status=422, code=42205)
        self.assertEqual(self.ok('GET', '/mode'), {'mode': 'READWRITE'})
        self.assertEqual(self.ok('PUT', '/mode?force=true', {'mode': 'IMPORT'}),
                         {'mode': 'IMPORT'})
        self.assertEqual(self.ok('GET', '/mode'), {'mode': 'IMPORT'})


if __name__ == '__main__':
    run_tests()
