# SPDX-License-Identifier: MIT
"""test_projections_fold.py - the read models `cairn projections run` leaves
in PostgreSQL and in Redis equal a fold of the log computed here, on both
backends (the file log and Kafka through cairn-mock-kafka), with values as
plain JSON and in the Confluent wire format (Avro encoded here, decoded by the
runner through a real `cairn registry serve`).

Each case appends a first part of a random history, runs the projectors to
the log's end (--exit-at-end), compares, appends the rest, runs again (the
second run resumes from the checkpoints) and compares again; `status`
reports lag 0 and `wait` returns for the last record. Two PostgreSQL
projectors: one with small batches (37 events, each batch applied as it
comes) and one with batch_size 500, which catches up in folded batches
(events folded per key as they are decoded; the run's last line counts
them), here one per 50-record poll (CAIRN_PJ_FOLD_POLL, CAIRN_PJ_FOLD_MS=0),
so that several are in flight in turn and the last one ends the run. In the wire-format
cases the spec's types name their registry subjects, so the fields the
actions read are checked against the registered schemas; an unknown subject
and a field missing from a schema are refused with the pointer named.

Real servers (tests/support/servers.py): PostgreSQL 15 and Redis 7 on free
loopback ports, stopped by PID at the end, also on failure.
    CAIRN_BIN=build/cli/cairn CAIRN_TOOLS_DIR=build/tests CAIRN_SOURCE_DIR=. \\
        /usr/bin/python3 tests/integration/test_projections_fold.py
Seed: CAIRN_PJ_SEED (default: random, printed).
"""
import os
import random
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
import projections_fixture as fx  # noqa: E402
from cairn_server import CairnServer  # noqa: E402
from servers import Postgres, Redis  # noqa: E402

check = fx.Checker()


def one_case(tmp, pg, rd, label, log_url, seed, registry=None):
    table = 'acc_' + label
    prefix = label + ':'
    hist = fx.History(seed)
    pspec = fx.pg_spec('pg_' + label, pg.conninfo, table, batch_size=37)
    fspec = fx.pg_spec('pgf_' + label, pg.conninfo, table + '_f', batch_size=500)
    rspec = fx.redis_spec('rd_' + label, rd.port, prefix, batch_size=23)
    encode = None
    extra = []
    if registry:
        encode = fx.wire_encoder(fx.register_schemas(registry))
        extra = ['--registry', registry, '--values', 'wire']
        # The types name their subjects: fields are checked against the registry's schemas.
        subjects = {t: fx.subject_of(t) for t in fx.TYPES}
        fx.with_subjects(pspec, subjects)
        fx.with_subjects(fspec, subjects)
        fx.with_subjects(rspec, subjects)
    specs = [fx.write_spec(tmp, pspec), fx.write_spec(tmp, rspec), fx.write_spec(tmp, fspec)]
    for part, n in (('first', 300), ('second', 250)):
        out = fx.feed(log_url, hist.generate(n), encode)
        code, so, se = fx.run(['run', '--log', log_url, '--exit-at-end'] + extra + specs,
                              timeout=300)
        check(code == 0, '%s %s run: exit 0 (%d: %s)' % (label, part, code, se.strip()[-300:]))
        check(fx.sanitizer_clean(se), '%s %s run: no sanitizer report' % (label, part))
        check(re.search(r'projector=pg_%s state=stopped events=%d ' % (label, len(hist.events)),
                        so) is not None,
              '%s %s: the run reports %d events for pg (%s)' % (label, part, len(hist.events),
                                                                so.strip()[-200:]))
        want = fx.fold_pg(hist.events)
        got = fx.read_pg(pg, table)
        check(got == want, '%s %s: postgres table equals the fold (%d rows) %s' %
              (label, part, len(want), fx.diff(got, want)))
        folds = dict(re.findall(r'projector=(\S+) state=stopped .* folded=(\d+)', so))
        check(int(folds.get('pgf_' + label, 0)) >= 4 and folds.get('pg_' + label) == '0',
              '%s %s: the batch_size 500 projector caught up in folded batches (50-record '
              'polls, one batch each), the batch_size 37 one did not: %s' % (label, part, folds))
        got = fx.read_pg(pg, table + '_f')
        check(got == want, '%s %s: the folding projector\'s table equals the fold (%d rows) %s' %
              (label, part, len(want), fx.diff(got, want)))
        want_r = fx.fold_redis(hist.events, prefix)
        got_r = fx.read_redis(rd, prefix)
        check(got_r == want_r, '%s %s: redis keys equal the fold (%d keys) %s' %
              (label, part, len(want_r), fx.diff(got_r, want_r)))
    code, so, se = fx.run(['status', '--log', log_url] + specs)
    lines = so.strip().split('\n')
    check(code == 0 and len(lines) == 3 and all(' lag=0' in l for l in lines) and
          all(' events=%d ' % len(hist.events) in l for l in lines),
          '%s: status says lag 0 and %d events: %s' % (label, len(hist.events), so.strip()))
    cp = re.search(r'checkpoint=(\S+)', lines[0]).group(1) if lines and 'checkpoint=' in lines[0] \
        else ''
    code, so, se = fx.run(['wait', 'pg_' + label, cp, '--timeout', '5'] + specs)
    check(code == 0, '%s: wait for the checkpoint %s returns 0 (%s)' % (label, cp, se.strip()))


def registry_checks(tmp, pg, registry):
    """Types naming a subject: unknown subjects and fields not in the schema are refused."""
    log = 'file:' + os.path.join(tmp, 'log_wire')
    bad = fx.with_subjects(fx.pg_spec('pg_badsubj', pg.conninfo, 'badsubj'),
                           {'Opened': 'no-such-subject'})
    path = fx.write_spec(tmp, bad)
    for cmd in (['check', '--registry', registry, path],
                ['run', '--log', log, '--registry', registry, '--exit-at-end', path]):
        code, so, se = fx.run(cmd)
        check(code == 2 and '/types/Opened/subject' in se and
              "unknown registry subject 'no-such-subject'" in se,
              'registry: `%s` refuses an unknown subject naming its pointer: %s' %
              (cmd[0], se.strip()))
    # A field the declared list allows but the registry's schema lacks.
    bad = fx.pg_spec('pg_badfield', pg.conninfo, 'badfield')
    bad['types']['Renamed']['fields'].append('/nickname')
    bad['on']['Renamed'][0]['upsert']['owner'] = '/nickname'
    fx.with_subjects(bad, {'Renamed': fx.subject_of('Renamed')})
    path = fx.write_spec(tmp, bad)
    code, so, se = fx.run(['check', '--registry', registry, path])
    check(code == 2 and '/on/Renamed/0/upsert' in se and "unknown field '/nickname'" in se,
          'registry: a field missing from the schema is refused: %s' % se.strip())
    code, so, se = fx.run(['check', path])
    check(code == 0, 'registry: without --registry the same spec loads (%s)' % se.strip())
    check(not pg.query("SELECT 1 FROM pg_tables WHERE tablename IN ('badsubj', 'badfield')"),
          'registry: refused specs created no table')


def main():
    # Folded catch-up batches of one 50-record poll each, sent at once: many
    # batches (in flight while the next is folded) out of small logs.
    os.environ['CAIRN_PJ_FOLD_POLL'] = '50'
    os.environ['CAIRN_PJ_FOLD_MS'] = '0'
    seed = int(os.environ.get('CAIRN_PJ_SEED', random.randrange(1 << 30)))
    print('seed=%d (CAIRN_PJ_SEED replays it)' % seed, flush=True)
    tmp = check.tmpdir('cairn-pj-fold-')
    with Postgres() as pg, Redis() as rd, fx.MockKafka(['pj_json:3', 'pj_wire:3']) as kafka:
        one_case(tmp, pg, rd, 'file_json', 'file:' + os.path.join(tmp, 'log_json'), seed)
        one_case(tmp, pg, rd, 'kafka_json', kafka.url('pj_json'), seed + 1)
        with CairnServer() as reg:
            one_case(tmp, pg, rd, 'file_wire', 'file:' + os.path.join(tmp, 'log_wire'), seed + 2,
                     registry=reg.url)
            one_case(tmp, pg, rd, 'kafka_wire', kafka.url('pj_wire'), seed + 3,
                     registry=reg.url)
            registry_checks(tmp, pg, reg.url)
    check.exit()


if __name__ == '__main__':
    main()
