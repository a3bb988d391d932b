# SPDX-License-Identifier: MIT
"""test_projections_deadletter.py - "on_error": "park" and `cairn projections
dead-letters list|retry|discard`, on PostgreSQL and Redis, file log.

Three poison events follow a valid history:
- X: a deposit that the sink refuses -- on PostgreSQL a CHECK constraint the
  test added, on Redis a balance field the test overwrote with text
  (HINCRBY fails inside EXEC: the batch is partly applied);
- Y: a deposit whose amount is "12x" (PostgreSQL refuses the cast; the Redis
  projector's own check refuses a non-integer);
- Z: a record whose value is not JSON (parked raw, in hex).

Checked: the run goes on past them and exits 0, with every event counted in
the checkpoint; each is listed once (also after another run: parking is
idempotent); a retry before the cause is fixed fails and keeps it; after the
fix (constraint dropped / field restored) the retry applies X and removes its
dead letter; Y and Z cannot be applied and are discarded; the read models
then equal the fold with X applied and Y and Z left out.
"""
import os
import random
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
import projections_fixture as fx  # noqa: E402
from servers import Postgres, Redis  # noqa: E402

check = fx.Checker()


def listed(name, specs):
    code, so, se = fx.run(['dead-letters', 'list', name] + specs)
    rows = {}
    for line in so.splitlines():
        m = re.match(r'id=(\S+) .*stream="([^"]*)".* reason="((?:[^"\\]|\\.)*)" format=(\w+)', line)
        if m:
            rows[m.group(2)] = (m.group(1), m.group(3), m.group(4))
    return code, rows, so, se


def main():
    seed = int(os.environ.get('CAIRN_PJ_SEED', random.randrange(1 << 30)))
    print('seed=%d (CAIRN_PJ_SEED replays it)' % seed, flush=True)
    rng = random.Random(seed)
    tmp = check.tmpdir('cairn-pj-dead-')
    log_url = 'file:' + os.path.join(tmp, 'log')
    hist = fx.History(rng.randrange(1 << 30), accounts=30)
    with Postgres() as pg, Redis() as rd:
        pspec = fx.pg_spec('dl_pg', pg.conninfo, 'dl_acc', batch_size=25)
        rspec = fx.redis_spec('dl_rd', rd.port, 'dl:', batch_size=25)
        pspec['on_error'] = rspec['on_error'] = 'park'
        specs = [fx.write_spec(tmp, pspec), fx.write_spec(tmp, rspec)]
        bad = dict(pspec, name='dl_bad', on_error='later')
        code, so, se = fx.run(['check', fx.write_spec(tmp, bad)])
        check(code == 2 and '/on_error' in se and '"park"' in se,
              'an unknown on_error is refused at load, naming /on_error: %s' % se.strip())
        fx.feed(log_url, hist.generate(600))
        code, so, se = fx.run(['run', '--log', log_url, '--exit-at-end'] + specs)
        check(code == 0, 'first run exits 0 (%d: %s)' % (code, se.strip()[-300:]))

        opened = sorted(a for a, s in hist.state.items() if s == 'open')
        x, y, z = opened[:3]
        # The causes: a constraint in PostgreSQL, a text balance in Redis.
        pg.query('ALTER TABLE dl_acc ADD CONSTRAINT dl_small CHECK (balance < 1000000)')
        before_x = fx.fold_redis(hist.events, 'dl:')['dl:acc:' + x]['balance']
        rd.command('HSET', 'dl:acc:' + x, 'balance', 'oops')
        more = hist.generate(100)
        more = [e for e in more if e['stream'] not in (x, y, z)]
        hist.events = hist.events[:-100] + more
        poison = [{'stream': x, 'type': 'Deposited', 'value': {'id': x, 'amount': 5000000}},
                  {'stream': y, 'type': 'Deposited', 'value': {'id': y, 'amount': '12x'}},
                  {'stream': z, 'type': 'Renamed', 'hex': '7b6e6f7420a9'}]
        fx.feed(log_url, more + poison[:2])
        fx.feed(log_url, poison[2:] + hist.generate(0))
        fold_events = hist.events + [
            poison[0],
            {'stream': y, 'type': 'Parked', 'value': {'id': y}},
            {'stream': z, 'type': 'Parked', 'value': {'id': z}}]
        n = len(fold_events)
        for attempt in range(2):
            code, so, se = fx.run(['run', '--log', log_url, '--exit-at-end'] + specs)
            check(code == 0, 'run %d goes on past the poison events and exits 0 (%d: %s)'
                  % (attempt + 1, code, se.strip()[-400:]))
        code, so, se = fx.run(['status', '--log', log_url] + specs)
        check(so.count(' events=%d ' % n) == 2 and so.count(' lag=0') == 2 and 'poison' not in so,
              'both checkpoints count all %d events, parked ones included: %s' % (n, so.strip()))

        ids = {}
        for name in ('dl_pg', 'dl_rd'):
            code, rows, so, se = listed(name, specs)
            check(code == 0 and sorted(rows) == sorted([x, y, z]) and len(so.splitlines()) == 4,
                  '%s: the three poison events are listed once each: %s %s'
                  % (name, so.strip(), se.strip()))
            check(rows.get(z, ('', '', ''))[2] == 'raw' and rows.get(x, ('', '', ''))[2] == 'json',
                  '%s: the undecodable value is parked raw, the others decoded' % name)
            ids[name] = {k: v[0] for k, v in rows.items()}
        code, rows, so, se = listed('dl_pg', specs)
        check('dl_small' in rows.get(x, ('', '', ''))[1] and '12x' in rows.get(y, ('', '', ''))[1],
              'postgres reasons name the constraint and the bad number: %s' % so.strip())
        code, rows, so, se = listed('dl_rd', specs)
        check('partly applied' in rows.get(x, ('', '', ''))[1],
              'redis reason for the EXEC error says the batch was partly applied: %s' % so.strip())

        # Retry before the cause is fixed: fails, stays parked.
        for name in ('dl_pg', 'dl_rd'):
            code, so, se = fx.run(['dead-letters', 'retry', name, ids[name][x]] + specs)
            check(code == 2 and 'retry=failed' in so,
                  '%s: retry before the fix fails (%d): %s' % (name, code, so.strip()))
            code, rows, so, se = listed(name, specs)
            check(x in rows, '%s: the dead letter stays after a failed retry' % name)
        # A raw dead letter whose value was damaged in the table: a clear error,
        # and it stays parked as it is.
        zid = ids['dl_pg'][z]
        orig = pg.query("SELECT value FROM cairn_dead_letters WHERE projector = 'dl_pg' AND "
                        "id = '%s'" % zid)[0][0]
        pg.query("UPDATE cairn_dead_letters SET value = '0g' || value WHERE projector = 'dl_pg' "
                 "AND id = '%s'" % zid)
        code, so, se = fx.run(['dead-letters', 'retry', 'dl_pg', zid] + specs)
        check(code == 2 and 'retry=failed' in so and 'not hex (character 2 of' in so,
              'dl_pg: a damaged raw value fails its retry saying so (%d): %s %s'
              % (code, so.strip(), se.strip()))
        left = pg.query("SELECT value FROM cairn_dead_letters WHERE projector = 'dl_pg' AND "
                        "id = '%s'" % zid)
        check(left and left[0][0] == '0g' + orig, 'dl_pg: the damaged dead letter stays parked')
        pg.query("UPDATE cairn_dead_letters SET value = '%s' WHERE projector = 'dl_pg' AND "
                 "id = '%s'" % (orig, zid))
        # Fix the causes, retry everything: X applies, Y and Z cannot.
        pg.query('ALTER TABLE dl_acc DROP CONSTRAINT dl_small')
        rd.command('HSET', 'dl:acc:' + x, 'balance', before_x)
        for name in ('dl_pg', 'dl_rd'):
            code, so, se = fx.run(['dead-letters', 'retry', name] + specs)
            check(code == 2 and 'id=%s retry=ok' % ids[name][x] in so and
                  'retried=1 failed=2' in so,
                  '%s: after the fix the retry applies X, not Y and Z (%d): %s'
                  % (name, code, so.strip()))
            for k in (y, z):
                code, so, se = fx.run(['dead-letters', 'discard', name, ids[name][k]] + specs)
                check(code == 0 and 'discard=ok' in so, '%s: discard %s (%d): %s %s'
                      % (name, ids[name][k], code, so.strip(), se.strip()))
            code, so, se = fx.run(['dead-letters', 'discard', name, ids[name][y]] + specs)
            check(code == 2, '%s: discarding it again is an error (%d)' % (name, code))
            code, rows, so, se = listed(name, specs)
            check(code == 0 and not rows and 'dead_letters=0' in so,
                  '%s: nothing is left parked: %s' % (name, so.strip()))

        want = fx.fold_pg(fold_events)
        got = fx.read_pg(pg, 'dl_acc')
        check(got == want, 'postgres model equals the fold with X retried, Y and Z discarded %s'
              % fx.diff(got, want))
        want_r = fx.fold_redis(fold_events, 'dl:')
        got_r = fx.read_redis(rd, 'dl:')
        check(got_r == want_r, 'redis model equals the fold with X retried, Y and Z discarded %s'
              % fx.diff(got_r, want_r))
        code, so, se = fx.run(['status', '--log', log_url] + specs)
        check(so.count(' events=%d ' % n) == 2, 'retries left the checkpoints alone: %s'
              % so.strip())
    check.exit()


if __name__ == '__main__':
    main()
