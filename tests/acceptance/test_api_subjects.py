# SPDX-License-Identifier: MIT
"""test_api_subjects.py - REST acceptance: registration, subjects, versions, look-up, deletes.

Runs against a real `cairn registry serve` ($CAIRN_BIN) and asserts the
Confluent Schema Registry 7.x behaviour that clients and CI scripts rely on:
ids are global and reused for equal schemas, version numbers continue after
soft deletes and restart only after a hard delete, each delete order has its
own error code, and the response shapes are exactly Confluent's.
"""

import json
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.environ.get('CAIRN_SOURCE_DIR', os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..')), 'tests', 'support'))
from cairn_server import ApiAssertions, CairnServer, record, run_tests  # noqa: E402

SRV = None


def setUpModule():
    global SRV
    SRV = CairnServer()


def tearDownModule():
    if SRV:
        SRV.cleanup()


def rec_a(name='User'):
    return record(name, ('a', 'string'))


def rec_ab_default(name='User'):
    return record(name, ('a', 'string'), ('b', 'string', 'x'))


class Basics(ApiAssertions, unittest.TestCase):
    def setUp(self):
        self.srv = SRV

    def test_root_returns_empty_object(self):
        self.assertEqual(self.ok('GET', '/'), {})

    def test_health_answers_200(self):
        st, _, _ = self.call('GET', '/health')
        self.assertEqual(st, 200)

    def test_contexts_is_default_context(self):
        self.assertEqual(self.ok('GET', '/contexts'), ['.'])


class Register(ApiAssertions, unittest.TestCase):
    def setUp(self):
        self.srv = SRV

    def test_register_returns_id_object_only(self):
        st, _, resp = self.call('POST', '/subjects/reg-shape/versions',
                                {'schema': json.dumps(rec_a('Shape'))})
        self.assertEqual(st, 200, resp)
        self.assertEqual(list(resp.keys()), ['id'])
        self.assertIsInstance(resp['id'], int)

    def test_same_schema_twice_same_id_no_new_version(self):
        i1 = self.register('reg-twice', rec_a('Twice'))
        i2 = self.register('reg-twice', rec_a('Twice'))
        self.assertEqual(i1, i2)
        self.assertEqual(self.versions('reg-twice'), [1])

    def test_reformatted_schema_same_subject_same_id_no_new_version(self):
        i1 = self.register('reg-fmt', rec_a('Fmt'))
        text = '{\n  "fields" : [ { "type" : "string",   "name" : "a" } ],\n "name":"Fmt",' \
               '\t"type" :"record" }'
        i2 = self.register('reg-fmt', text)
        self.assertEqual(i1, i2)
        self.assertEqual(self.versions('reg-fmt'), [1])

    def test_same_schema_other_subject_reuses_id(self):
        i1 = self.register('reg-share-1', rec_a('Shared'))
        text = '{"name":"Shared","fields":[{"name":"a","type":"string"}],   "type":"record"}'
        i2 = self.register('reg-share-2', text)
        self.assertEqual(i1, i2)
        self.assertEqual(self.versions('reg-share-2'), [1])
        got = self.ok('GET', '/subjects/reg-share-2/versions/1')
        self.assertEqual(got['id'], i1)

    def test_added_default_field_is_new_id_and_version(self):
        i1 = self.register('reg-evolve', rec_a('Evolve'))
        i2 = self.register('reg-evolve', rec_ab_default('Evolve'))
        self.assertNotEqual(i1, i2)
        self.assertEqual(self.versions('reg-evolve'), [1, 2])
        self.assertEqual(self.ok('GET', '/subjects/reg-evolve/versions/2')['id'], i2)

    def test_ids_are_distinct_for_distinct_schemas(self):
        ids = {self.register('reg-distinct-%d' % n, record('D%d' % n, ('f', 'int')))
               for n in range(5)}
        self.assertEqual(len(ids), 5)

    def test_absent_schema_type_means_avro(self):
        i1 = self.register('reg-type', rec_a('Typed'))
        i2 = self.register('reg-type', rec_a('Typed'), schemaType='AVRO')
        self.assertEqual(i1, i2)
        got = self.ok('GET', '/subjects/reg-type/versions/latest')
        self.assertNotIn('schemaType', got)

    def test_metadata_and_ruleset_are_accepted(self):
        i = self.register('reg-meta', rec_a('Meta'),
                          metadata={'properties': {'owner': 'team-a'}},
                          ruleSet={'domainRules': [], 'migrationRules': []})
        self.assertEqual(self.ok('GET', '/subjects/reg-meta/versions/1')['id'], i)

    def test_unknown_extra_fields_are_ignored(self):
        i = self.register('reg-extra', rec_a('Extra'), somethingNew={'x': 1})
        self.assertGreater(i, 0)

    def test_primitive_schema_registers(self):
        i = self.register('reg-prim', '"string"')
        got = self.ok('GET', '/subjects/reg-prim/versions/1')
        self.assertEqual(got['id'], i)
        self.assertEqual(json.loads(got['schema']), 'string')

    def test_normalize_true_registers_and_is_idempotent(self):
        i1 = self.register('reg-norm', rec_a('Norm'), query='?normalize=true')
        text = '{"type":"record","fields":[{"type":{"type":"string"},"name":"a"}],"name":"Norm"}'
        i2 = self.register('reg-norm', text, query='?normalize=true')
        self.assertEqual(i1, i2)
        self.assertEqual(self.versions('reg-norm'), [1])
        found = self.ok('POST', '/subjects/reg-norm?normalize=true', {'schema': text})
        self.assertEqual(found['id'], i1)
        self.assertEqual(found['version'], 1)


class Subjects(ApiAssertions, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # lst-a, lst-b (soft-deleted), lst-c
        for s in ('lst-a', 'lst-b', 'lst-c'):
            st, resp = SRV.register(s, record('L' + s[-1], ('x', 'int')))
            assert st == 200, resp
        st, _, resp = SRV.call('DELETE', '/subjects/lst-b')
        assert st == 200, resp

    def setUp(self):
        self.srv = SRV

    def test_subjects_lists_live_subjects(self):
        all_ = self.subjects()
        self.assertIsInstance(all_, list)
        self.assertIn('lst-a', all_)
        self.assertIn('lst-c', all_)
        self.assertNotIn('lst-b', all_)

    def test_subject_prefix_filters(self):
        self.assertEqual(self.subjects('?subjectPrefix=lst-'), ['lst-a', 'lst-c'])
        self.assertEqual(self.subjects('?subjectPrefix=lst-zz'), [])

    def test_deleted_true_includes_soft_deleted(self):
        self.assertEqual(self.subjects('?subjectPrefix=lst-&deleted=true'),
                         ['lst-a', 'lst-b', 'lst-c'])

    def test_deleted_only_lists_soft_deleted(self):
        self.assertEqual(self.subjects('?subjectPrefix=lst-&deletedOnly=true'), ['lst-b'])

    def test_offset_and_limit(self):
        self.assertEqual(self.subjects('?subjectPrefix=lst-&deleted=true&offset=1&limit=1'),
                         ['lst-b'])
        self.assertEqual(self.subjects('?subjectPrefix=lst-&deleted=true&offset=2'), ['lst-c'])
        self.assertEqual(self.subjects('?subjectPrefix=lst-&deleted=true&limit=2'),
                         ['lst-a', 'lst-b'])
        self.assertEqual(self.subjects('?subjectPrefix=lst-&deleted=true&offset=5'), [])
        self.assertEqual(self.subjects('?subjectPrefix=lst-&limit=-1'), ['lst-a', 'lst-c'])

    def test_subjects_are_sorted(self):
        all_ = self.subjects('?deleted=true')
        self.assertEqual(all_, sorted(all_))


class Versions(ApiAssertions, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ids = []
        for sch in (rec_a('Ver'), rec_ab_default('Ver')):
            st, resp = SRV.register('ver-s', sch)
            assert st == 200, resp
            cls.ids.append(resp['id'])

    def setUp(self):
        self.srv = SRV

    def test_versions_list(self):
        self.assertEqual(self.versions('ver-s'), [1, 2])

    def test_version_by_number_exact_shape(self):
        got = self.ok('GET', '/subjects/ver-s/versions/1')
        self.assertEqual(set(got.keys()), {'subject', 'version', 'id', 'schema'})
        self.assertEqual(got['subject'], 'ver-s')
        self.assertEqual(got['version'], 1)
        self.assertEqual(got['id'], self.ids[0])
        self.assertEqual(json.loads(got['schema']), rec_a('Ver'))

    def test_latest_and_minus_one(self):
        for v in ('latest', '-1'):
            got = self.ok('GET', '/subjects/ver-s/versions/' + v)
            self.assertEqual(set(got.keys()), {'subject', 'version', 'id', 'schema'})
            self.assertEqual(got['version'], 2)
            self.assertEqual(got['id'], self.ids[1])
            self.assertEqual(json.loads(got['schema']), rec_ab_default('Ver'))

    def test_raw_schema(self):
        st, hd, body = self.call('GET', '/subjects/ver-s/versions/2/schema', raw=True)
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body), rec_ab_default('Ver'))
        meta = self.ok('GET', '/subjects/ver-s/versions/2')
        self.assertEqual(body.decode(), meta['schema'])
        st, _, body = self.call('GET', '/subjects/ver-s/versions/latest/schema', raw=True)
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body), rec_ab_default('Ver'))

    def test_versions_offset_limit(self):
        self.assertEqual(self.versions('ver-s', '?offset=1'), [2])
        self.assertEqual(self.versions('ver-s', '?limit=1'), [1])
        self.assertEqual(self.versions('ver-s', '?offset=0&limit=-1'), [1, 2])

    def test_referencedby_empty_for_unreferenced(self):
        self.assertEqual(self.ok('GET', '/subjects/ver-s/versions/1/referencedby'), [])

    def test_unknown_subject_40401(self):
        self.err('GET', '/subjects/ver-nope/versions', http_status=404, code=40401)
        self.err('GET', '/subjects/ver-nope/versions/1', http_status=404, code=40401)
        self.err('GET', '/subjects/ver-nope/versions/latest', http_status=404, code=40401)
        self.err('GET', '/subjects/ver-nope/versions/1/schema', http_status=404, code=40401)

    def test_unknown_version_40402(self):
        self.err('GET', '/subjects/ver-s/versions/3', http_status=404, code=40402)
        self.err('GET', '/subjects/ver-s/versions/3/schema', http_status=404, code=40402)


class Lookup(ApiAssertions, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        st, resp = SRV.register('look-s', rec_a('Look'))
        assert st == 200, resp
        cls.id1 = resp['id']
        st, resp = SRV.register('look-s', rec_ab_default('Look'))
        assert st == 200, resp
        cls.id2 = resp['id']

    def setUp(self):
        self.srv = SRV

    def test_lookup_returns_subject_version_id_schema(self):
        got = self.ok('POST', '/subjects/look-s', {'schema': json.dumps(rec_a('Look'))})
        self.assertEqual(set(got.keys()), {'subject', 'version', 'id', 'schema'})
        self.assertEqual(got['subject'], 'look-s')
        self.assertEqual(got['version'], 1)
        self.assertEqual(got['id'], self.id1)
        self.assertEqual(json.loads(got['schema']), rec_a('Look'))

    def test_lookup_reformatted_schema(self):
        text = '{ "name" : "Look", "type":"record", "fields":[{"type":"string","name":"a"},' \
               '{"default":"x","name":"b","type":"string"}]}'
        got = self.ok('POST', '/subjects/look-s', {'schema': text})
        self.assertEqual(got['version'], 2)
        self.assertEqual(got['id'], self.id2)

    def test_lookup_unknown_subject_40401(self):
        self.err('POST', '/subjects/look-nope', {'schema': json.dumps(rec_a('Look'))},
                 http_status=404, code=40401)

    def test_lookup_unknown_schema_40403(self):
        self.err('POST', '/subjects/look-s', {'schema': json.dumps(record('Other', ('z', 'long')))},
                 http_status=404, code=40403)

    def test_lookup_deleted_true_finds_soft_deleted(self):
        self.register('look-del', rec_a('LookDel'))
        self.register('look-del', rec_ab_default('LookDel'))
        self.assertEqual(self.ok('DELETE', '/subjects/look-del/versions/1'), 1)
        body = {'schema': json.dumps(rec_a('LookDel'))}
        self.err('POST', '/subjects/look-del', body, http_status=404, code=40403)
        got = self.ok('POST', '/subjects/look-del?deleted=true', body)
        self.assertEqual(got['version'], 1)
        self.assertEqual(got['subject'], 'look-del')


class Deletes(ApiAssertions, unittest.TestCase):
    def setUp(self):
        self.srv = SRV

    def two_versions(self, subject, name):
        i1 = self.register(subject, rec_a(name))
        i2 = self.register(subject, rec_ab_default(name))
        return i1, i2

    def test_soft_then_permanent_subject_delete(self):
        self.two_versions('del-subj', 'DelSubj')
        self.assertEqual(self.ok('DELETE', '/subjects/del-subj'), [1, 2])
        self.assertNotIn('del-subj', self.subjects())
        self.assertIn('del-subj', self.subjects('?deleted=true'))
        self.err('GET', '/subjects/del-subj/versions', http_status=404, code=40401)
        self.assertEqual(self.versions('del-subj', '?deleted=true'), [1, 2])
        got = self.ok('GET', '/subjects/del-subj/versions/1?deleted=true')
        self.assertEqual(got['version'], 1)
        self.assertEqual(self.ok('DELETE', '/subjects/del-subj?permanent=true'), [1, 2])
        self.assertNotIn('del-subj', self.subjects('?deleted=true'))
        self.err('GET', '/subjects/del-subj/versions?deleted=true', http_status=404, code=40401)

    def test_soft_delete_twice_40404(self):
        self.two_versions('del-twice', 'DelTwice')
        self.ok('DELETE', '/subjects/del-twice')
        self.err('DELETE', '/subjects/del-twice', http_status=404, code=40404)

    def test_permanent_before_soft_40405(self):
        self.two_versions('del-perm', 'DelPerm')
        self.err('DELETE', '/subjects/del-perm?permanent=true', http_status=404, code=40405)
        self.assertEqual(self.versions('del-perm'), [1, 2])

    def test_delete_unknown_subject_40401(self):
        self.err('DELETE', '/subjects/del-nope', http_status=404, code=40401)
        self.err('DELETE', '/subjects/del-nope/versions/1', http_status=404, code=40401)

    def test_version_soft_delete_twice_40406(self):
        self.two_versions('del-v', 'DelV')
        self.assertEqual(self.ok('DELETE', '/subjects/del-v/versions/1'), 1)
        self.err('DELETE', '/subjects/del-v/versions/1', http_status=404, code=40406)
        self.assertEqual(self.versions('del-v'), [2])
        self.assertEqual(self.versions('del-v', '?deleted=true'), [1, 2])
        self.assertEqual(self.versions('del-v', '?deletedOnly=true'), [1])
        self.err('GET', '/subjects/del-v/versions/1', http_status=404, code=40402)

    def test_version_permanent_before_soft_40407(self):
        self.two_versions('del-vp', 'DelVp')
        self.err('DELETE', '/subjects/del-vp/versions/2?permanent=true', http_status=404,
                 code=40407)
        self.assertEqual(self.versions('del-vp'), [1, 2])
        self.assertEqual(self.ok('DELETE', '/subjects/del-vp/versions/2'), 2)
        self.assertEqual(self.ok('DELETE', '/subjects/del-vp/versions/2?permanent=true'), 2)
        self.assertEqual(self.versions('del-vp', '?deleted=true'), [1])

    def test_delete_unknown_version_40402(self):
        self.two_versions('del-uv', 'DelUv')
        self.err('DELETE', '/subjects/del-uv/versions/7', http_status=404, code=40402)

    def test_delete_latest_version(self):
        self.two_versions('del-latest', 'DelLatest')
        self.assertEqual(self.ok('DELETE', '/subjects/del-latest/versions/latest'), 2)
        self.assertEqual(self.versions('del-latest'), [1])
        self.assertEqual(self.ok('GET', '/subjects/del-latest/versions/latest')['version'], 1)

    def test_versions_continue_after_soft_deletes(self):
        self.two_versions('del-cont', 'DelCont')
        self.ok('DELETE', '/subjects/del-cont/versions/1')
        self.ok('DELETE', '/subjects/del-cont/versions/2')
        i3 = self.register('del-cont', record('DelCont', ('q', 'double')))
        self.assertEqual(self.versions('del-cont'), [3])
        self.assertEqual(self.ok('GET', '/subjects/del-cont/versions/latest')['version'], 3)
        self.assertEqual(self.ok('GET', '/subjects/del-cont/versions/3')['id'], i3)

    def test_versions_restart_at_one_after_hard_delete(self):
        self.two_versions('del-restart', 'DelRestart')
        self.ok('DELETE', '/subjects/del-restart')
        self.ok('DELETE', '/subjects/del-restart?permanent=true')
        self.register('del-restart', record('DelRestart', ('q', 'double')))
        self.assertEqual(self.versions('del-restart'), [1])

    def test_reregistering_soft_deleted_schema_is_new_version_same_id(self):
        i1, i2 = self.two_versions('del-again', 'DelAgain')
        self.ok('DELETE', '/subjects/del-again/versions/2')
        again = self.register('del-again', rec_ab_default('DelAgain'))
        self.assertEqual(again, i2)
        self.assertEqual(self.versions('del-again'), [1, 3])
        self.ok('DELETE', '/subjects/del-again')
        self.assertEqual(self.register('del-again', rec_a('DelAgain')), i1)
        self.assertEqual(self.versions('del-again'), [4])

    def test_soft_deleted_ids_still_readable(self):
        i1, _ = self.two_versions('del-ids', 'DelIds')
        self.ok('DELETE', '/subjects/del-ids')
        got = self.ok('GET', '/schemas/ids/%d' % i1)
        self.assertEqual(json.loads(got['schema']), rec_a('DelIds'))
        st, _, body = self.call('GET', '/schemas/ids/%d/schema' % i1, raw=True)
        self.assertEqual(st, 200)
        self.assertEqual(json.loads(body), rec_a('DelIds'))

    def test_hard_deleted_id_is_gone(self):
        i1 = self.register('del-gone', record('DelGoneOnly', ('g', 'int')))
        self.ok('DELETE', '/subjects/del-gone')
        self.ok('DELETE', '/subjects/del-gone?permanent=true')
        self.err('GET', '/schemas/ids/%d' % i1, http_status=404, code=40403)


if __name__ == '__main__':
    run_tests()
