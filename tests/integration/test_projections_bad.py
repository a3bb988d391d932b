# SPDX-License-Identifier: MIT
"""test_projections_bad.py - bad input to `cairn projections`:

- bad spec files: a clear error at load naming the line (JSON syntax) or the
  JSON pointer of the bad member (unknown event types, unknown field paths,
  unknown column types, missing keys, unknown members and actions, bad key
  templates and sources), exit 2, from `check` and from `run`;
- an unreachable PostgreSQL or Redis: bounded retries, then a clear error
  within a bounded time, and the checkpoint untouched (seen after the server
  is back), and the next run ends right;
- PostgreSQL going away while the runner runs: it reconnects and goes on;
- poison events: a PostgreSQL projector stops exactly before an event its
  actions cannot read (checkpoint = that event's position, the events
  before it applied) and stops there again on a re-run; a Redis projector
  whose EXEC reply holds an error stops saying "batch partly applied",
  refuses to start again until `reset`, and after `reset` rebuilds the fold;
- poison events met while catching up in folded batches (batch_size 500):
  a folded batch the server refuses (a key too large for its index) and an
  event that cannot be folded (a sum past 64 bits) send the runner back to
  its checkpoint, from where it applies the events batch by batch and stops
  on the poison event, named with the server's reason; the checkpoint and
  the table agree, and a re-run stops there again.
"""
import copy
import json
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
import projections_fixture as fx  # noqa: E402
from servers import Postgres, Redis  # noqa: E402

check = fx.Checker()


def spec_errors(tmp):
    base = fx.pg_spec('bad', 'host=127.0.0.1 port=1 user=postgres dbname=postgres', 't')
    rbase = fx.redis_spec('badr', 1, 'p:')
    cases = []

    def case(name, spec, expect):
        cases.append((name, spec, expect))

    case('syntax', '{\n  "name": "x",\n  "batch_size": 5\n  "sink": {}\n}\n',
         ['bad-syntax.json:4:'])
    s = copy.deepcopy(base)
    s['on']['Bogus'] = [{'delete': {'id': '/id'}}]
    case('type', s, ['/on/Bogus', "unknown event type 'Bogus'"])
    s = copy.deepcopy(base)
    s['on']['Opened'][0]['upsert']['owner'] = '/ownr'
    case('field', s, ['/on/Opened/0/upsert/owner', "unknown field '/ownr'"])
    s = copy.deepcopy(base)
    s['sink']['postgres']['columns']['balance'] = 'bigintt'
    case('coltype', s, ['/sink/postgres/columns/balance', "unknown column type 'bigintt'"])
    s = copy.deepcopy(base)
    del s['on']['Renamed'][0]['upsert']['id']
    case('keycol', s, ['/on/Renamed/0/upsert', "missing key column 'id'"])
    s = copy.deepcopy(base)
    del s['sink']['postgres']['key']
    case('nokey', s, ['/sink/postgres', "missing member 'key'"])
    s = copy.deepcopy(base)
    s['sink']['postgres']['colums'] = {}
    case('member', s, ['/sink/postgres/colums', "unknown member 'colums'"])
    s = copy.deepcopy(base)
    s['on']['Closed'][0] = {'delete': {'id': '/id', 'owner': '/id'}}
    case('delkey', s, ['/on/Closed/0/delete/owner', 'key columns only'])
    s = copy.deepcopy(rbase)
    s['on']['Opened'][0] = {'hsett': {'key': 'acc:{/id}'}}
    case('action', s, ['/on/Opened/0/hsett', "unknown action 'hsett'"])
    s = copy.deepcopy(rbase)
    s['on']['Opened'][0]['hset']['key'] = 'acc:{/id'
    case('template', s, ['/on/Opened/0/hset/key', "'{' without"])
    s = copy.deepcopy(rbase)
    s['on']['Deposited'][0]['hincrby']['by'] = 'amount'
    case('source', s, ['/on/Deposited/0/hincrby/by', "'amount' is not a source"])
    s = copy.deepcopy(rbase)
    s['on']['Deposited'][1]['zadd']['member'] = '{/id}:{/nope}'
    case('tmplfield', s, ['/on/Deposited/1/zadd/member', "unknown field '/nope'"])

    log = 'file:' + os.path.join(tmp, 'emptylog')
    for name, spec, expect in cases:
        path = os.path.join(tmp, 'bad-%s.json' % name)
        with open(path, 'w') as f:
            f.write(spec if isinstance(spec, str) else json.dumps(spec, indent=2))
        for cmd in (['check', path], ['run', '--log', log, '--exit-at-end', path]):
            t0 = time.monotonic()
            code, so, se = fx.run(cmd, timeout=30)
            ok = code == 2 and all(e in se for e in expect) and time.monotonic() - t0 < 5
            check(ok, 'spec %s: `%s` exits 2 at once naming %s: %s' %
                  (name, cmd[0], ' and '.join(repr(e) for e in expect), se.strip()))


def pg_state(pg, name):
    return pg.query("SELECT checkpoint, events FROM cairn_checkpoints WHERE projector = '%s'"
                    % name)


def unreachable(tmp, pg, rd):
    hist = fx.History(7)
    log = 'file:' + os.path.join(tmp, 'log_unreach')
    specs = {'pg': fx.write_spec(tmp, fx.pg_spec('upg', pg.conninfo, 'unreach')),
             'rd': fx.write_spec(tmp, fx.redis_spec('urd', rd.port, 'unreach:'))}
    fx.feed(log, hist.generate(120))
    code, so, se = fx.run(['run', '--log', log, '--exit-at-end'] + list(specs.values()))
    check(code == 0, 'unreachable: the first run ends (%s)' % se.strip())
    fx.feed(log, hist.generate(80))
    before_pg = pg_state(pg, 'upg')
    before_rd = rd.command('HGETALL', 'cairn:checkpoint:urd')
    for kind, server, text in (('pg', pg, 'postgres unreachable after 3 attempts'),
                               ('rd', rd, 'unreachable after 3 attempts')):
        server.stop()
        t0 = time.monotonic()
        code, so, se = fx.run(['run', '--log', log, '--exit-at-end', '--retries', '3',
                               '--retry-backoff-ms', '100', specs[kind]], timeout=60)
        took = time.monotonic() - t0
        check(code == 2 and text in se and took < 20,
              'unreachable %s: exit 2 after bounded retries in %.1f s: %s' % (kind, took,
                                                                               se.strip()))
        server.start()
    check(pg_state(pg, 'upg') == before_pg,
          'unreachable pg: the checkpoint is untouched: %s' % pg_state(pg, 'upg'))
    check(rd.command('HGETALL', 'cairn:checkpoint:urd') == before_rd,
          'unreachable redis: the checkpoint is untouched')
    code, so, se = fx.run(['run', '--log', log, '--exit-at-end'] + list(specs.values()))
    check(code == 0, 'unreachable: the run after the servers came back ends (%s)' % se.strip())
    check(fx.read_pg(pg, 'unreach') == fx.fold_pg(hist.events),
          'unreachable: then the postgres table equals the fold')
    check(fx.read_redis(rd, 'unreach:') == fx.fold_redis(hist.events, 'unreach:'),
          'unreachable: then the redis keys equal the fold')

    # PostgreSQL goes away under a running runner and comes back within its retries.
    errpath = os.path.join(tmp, 'outage.err')
    with open(errpath, 'wb') as err:
        runner = fx.start_runner(['--log', log, specs['pg']], err)
        try:
            fx.feed(log, hist.generate(5))
            code, so, se = fx.run(['wait', 'upg', str(read_positions(log)[-1]), '--timeout',
                                   '20', specs['pg']])
            check(code == 0, 'outage: the running projector caught up (%s)' % se.strip())
            time.sleep(0.3)  # the runner's connection is idle in its poll now
            pg.stop()
            fx.feed(log, hist.generate(60))
            time.sleep(0.5)
            pg.start()
            last = read_positions(log)[-1]
            code, so, se = fx.run(['wait', 'upg', str(last), '--timeout', '30', specs['pg']])
            check(code == 0, 'outage: the running projector reconnected and applied the '
                  'last record (%s %s)' % (so.strip(), se.strip()))
            check(runner.poll() is None, 'outage: the runner is still running')
        finally:
            runner.terminate()
            try:
                runner.wait(20)
            except subprocess.TimeoutExpired:
                runner.kill()
                runner.wait()
    check(runner.returncode == 0, 'outage: the runner stops on SIGTERM with exit 0 (%s)' %
          runner.returncode)
    with open(errpath, 'rb') as f:
        errtext = f.read().decode(errors='replace')
    check('reconnecting' in errtext and fx.sanitizer_clean(errtext),
          'outage: the runner said it was reconnecting: %s' % errtext.strip()[-300:])
    check(fx.read_pg(pg, 'unreach') == fx.fold_pg(hist.events),
          'outage: the postgres table equals the fold')


def read_positions(log):
    out = subprocess.run([fx.cairn_bin(), 'events', 'read', '--log', log, '--json'],
                         capture_output=True, timeout=60).stdout.decode().split('\n')
    return [json.loads(l)['position'] for l in out if l]


def poison(tmp, pg, rd):
    hist = fx.History(11)
    log = 'file:' + os.path.join(tmp, 'log_poison')
    spec = fx.write_spec(tmp, fx.pg_spec('ppg', pg.conninfo, 'poison'))
    good = hist.generate(30)
    acc = next(e['stream'] for e in good if e['type'] == 'Opened' and
               hist.state.get(e['stream']) == 'open')
    bad = {'stream': acc, 'type': 'Deposited', 'value': {'id': acc, 'amnt': 5}}
    fx.feed(log, good + [bad])
    fx.feed(log, hist.generate(10))
    pos = read_positions(log)[30]
    for attempt in ('first', 'second'):
        code, so, se = fx.run(['run', '--log', log, '--exit-at-end', spec])
        check(code == 2 and 'poison event at partition 0 position %d' % pos in se and
              "no member '/amount'" in se,
              'poison pg (%s run): stops at position %d naming the field: %s' %
              (attempt, pos, se.strip()))
        st = pg_state(pg, 'ppg')
        check(st and st[0][0] == 'file:%d' % pos and st[0][1] == '30',
              'poison pg (%s run): the checkpoint is right before the event: %s' % (attempt, st))
        check(fx.read_pg(pg, 'poison') == fx.fold_pg(good),
              'poison pg (%s run): the 30 events before it are applied' % attempt)
    code, so, se = fx.run(['status', spec])
    check('poison=' in so and 'position %d' % pos in so, 'poison pg: status shows it: %s' %
          so.strip())

    # Redis: a run-time error inside EXEC (HINCRBY on a field that is not an integer).
    hist = fx.History(12)
    log = 'file:' + os.path.join(tmp, 'log_poison_r')
    rspec = fx.write_spec(tmp, fx.redis_spec('prd', rd.port, 'poison:', batch_size=10))
    first = hist.generate(40)
    fx.feed(log, first)
    code, so, se = fx.run(['run', '--log', log, '--exit-at-end', rspec])
    check(code == 0, 'poison redis: the first run ends (%s)' % se.strip())
    acc = next(a for a, s in sorted(hist.state.items()) if s == 'open')
    rd.command('HSET', 'poison:acc:' + acc, 'balance', 'not-a-number')
    dep = {'stream': acc, 'type': 'Deposited', 'value': {'id': acc, 'amount': 3}}
    hist.events.append(dep)
    fx.feed(log, [dep] + hist.generate(5))
    code, so, se = fx.run(['run', '--log', log, '--exit-at-end', rspec])
    check(code == 2 and 'batch partly applied' in se and 'HINCRBY' in se,
          'poison redis: EXEC error stops the projector, "batch partly applied": %s' %
          se.strip())
    code, so, se = fx.run(['run', '--log', log, '--exit-at-end', rspec])
    check(code == 2 and 'reset' in se, 'poison redis: a re-run refuses until reset: %s' %
          se.strip())
    code, so, se = fx.run(['reset', 'prd', rspec])
    check(code == 0 and rd.keys('poison:*') == [] and
          rd.command('EXISTS', 'cairn:checkpoint:prd') == 0,
          'poison redis: reset drops the keys and the checkpoint (%s)' % se.strip())
    code, so, se = fx.run(['run', '--log', log, '--exit-at-end', rspec])
    got, want = fx.read_redis(rd, 'poison:'), fx.fold_redis(hist.events, 'poison:')
    check(code == 0 and got == want, 'poison redis: after reset the run rebuilds the fold %s %s'
          % (se.strip(), fx.diff(got, want)))

    # Reset of a projector on its root generation whose keys start with a
    # field: its pattern is "<prefix>*", which must not take a rebuild's
    # generation (here g1, being built) along.
    fspec = fx.redis_spec('rfield', rd.port, 'rf:')
    for handler in fspec['on'].values():
        for action in handler:
            for op in action.values():
                if isinstance(op, dict) and 'key' in op and op['key'].startswith('acc:'):
                    op['key'] = op['key'][len('acc:'):]
    fpath = fx.write_spec(tmp, fspec)
    code, so, se = fx.run(['run', '--log', log, '--exit-at-end', fpath])
    check(code == 0, 'field-keyed redis projector ran (%d: %s)' % (code, se.strip()))
    rd.command('SET', 'rf:g1:acc-000', 'shadow')
    before = [k for k in rd.keys('rf:*') if not k.startswith('rf:g1:')]
    code, so, se = fx.run(['reset', 'rfield', fpath])
    check(code == 0 and before and rd.keys('rf:*') == ['rf:g1:acc-000'],
          'reset of the root generation leaves generation g1\'s keys (%d, %d keys before): %s %s'
          % (code, len(before), rd.keys('rf:*')[:5], se.strip()))


def fold_refusals(tmp, pg):
    """Poison events inside a folded catch-up batch."""
    cases = []
    # The server refuses the folded batch: a 20,000-character random key is
    # larger than a btree index entry may be.
    hist = fx.History(21)
    good = hist.generate(60)
    rng = random.Random(5)
    big = ''.join(rng.choice('0123456789abcdef') for _ in range(20000))
    bad = [{'stream': 'acc-big', 'type': 'Opened', 'value': {'id': big, 'owner': 'x'}}]
    cases.append(('refused', good, bad, hist.generate(10), 'a folded replay batch was refused',
                  'index row'))
    # The batch cannot be folded: two deposits to one account sum past 64 bits in it.
    hist = fx.History(22)
    good = hist.generate(40) + [
        {'stream': 'acc-ovf', 'type': 'Opened', 'value': {'id': 'acc-ovf', 'owner': 'o'}},
        {'stream': 'acc-ovf', 'type': 'Deposited',
         'value': {'id': 'acc-ovf', 'amount': 9223372036854775000}}]
    bad = [{'stream': 'acc-ovf', 'type': 'Deposited', 'value': {'id': 'acc-ovf', 'amount': 1000}}]
    cases.append(('unfoldable', good, bad, hist.generate(10),
                  'an event cannot be folded into a replay batch', 'out of range'))
    for label, good, bad, after, warning, reason in cases:
        log = 'file:' + os.path.join(tmp, 'log_fold_' + label)
        name, table = 'fold_' + label, 'fold_' + label
        spec = fx.write_spec(tmp, fx.pg_spec(name, pg.conninfo, table, batch_size=500))
        fx.feed(log, good + bad + after)
        pos = read_positions(log)[len(good)]
        code, so, se = fx.run(['run', '--log', log, '--exit-at-end', spec])
        check(warning in se, 'fold %s: the runner says why it left the folded batch: %s' %
              (label, se.strip()[-600:]))
        check(code == 2 and 'event at partition 0 position %d' % pos in se and reason in se,
              'fold %s: stops at position %d with the server\'s reason: %s' %
              (label, pos, se.strip()[-600:]))
        # The batch the poison event is in commits nothing (the stop default):
        # the checkpoint is that batch's start, and the table its fold.
        for attempt in ('first', 'second'):
            if attempt == 'second':
                code, so, se = fx.run(['run', '--log', log, '--exit-at-end', spec])
                check(code == 2 and 'position %d' % pos in se,
                      'fold %s: a second run stops at the same event: %s' % (label, se.strip()))
            st = pg_state(pg, name)
            n = int(st[0][1]) if st else -1
            cp = st[0][0] if st else None
            check(0 <= n <= len(good) and (cp == '' if n == 0 else cp.startswith('file:') and
                                           int(cp[5:]) <= pos),
                  'fold %s (%s run): the checkpoint is not past the event: %s' %
                  (label, attempt, st))
            check(fx.read_pg(pg, table) == fx.fold_pg(good[:n]),
                  'fold %s (%s run): the table is the fold of the %d events the checkpoint covers'
                  % (label, attempt, n))


def main():
    tmp = check.tmpdir('cairn-pj-bad-')
    spec_errors(tmp)
    with Postgres() as pg, Redis(persist=True) as rd:
        unreachable(tmp, pg, rd)
        poison(tmp, pg, rd)
        fold_refusals(tmp, pg)
    check.exit()


if __name__ == '__main__':
    main()
