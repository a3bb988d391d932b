# SPDX-License-Identifier: MIT
"""test_projections_crash.py - `cairn projections run` killed with SIGKILL at
random points while events keep arriving, then restarted: the read models in
PostgreSQL and Redis still equal a fold of the log computed here (no event
applied twice, none skipped), and each checkpoint's event count equals the
number of events in the log. On both backends (file log, Kafka mock).

Small batches (1 and 3 events) make a kill land between, inside and right
after commits; a third projector (PostgreSQL, batch_size 500) catches up in
folded batches (one per 97-record poll here), killed wherever it is; the test checks that kills did land part-way through the log
(the PostgreSQL checkpoint strictly between the previous one and the end). Seed: CAIRN_PJ_SEED (default random, printed).
    CAIRN_BIN=build/cli/cairn CAIRN_TOOLS_DIR=build/tests \\
        /usr/bin/python3 tests/integration/test_projections_crash.py
"""
import os
import random
import re
import signal
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
import projections_fixture as fx  # noqa: E402
from servers import Postgres, Redis  # noqa: E402

check = fx.Checker()
ROUNDS = 8


def crash_case(tmp, pg, rd, label, log_url, rng):
    table = 'crash_' + label
    prefix = 'crash_' + label + ':'
    hist = fx.History(rng.randrange(1 << 30), accounts=30)
    # The third catches up in folded batches (batch_size 500): a kill can land
    # while a batch spanning many events is being folded or committed.
    specs = [fx.write_spec(tmp, fx.pg_spec('cpg_' + label, pg.conninfo, table, batch_size=1)),
             fx.write_spec(tmp, fx.redis_spec('crd_' + label, rd.port, prefix, batch_size=3)),
             fx.write_spec(tmp, fx.pg_spec('cpgf_' + label, pg.conninfo, table + '_f',
                                           batch_size=500))]
    errpath = os.path.join(tmp, label + '.err')
    kills = mid = 0
    last_done = 0
    with open(errpath, 'wb') as err:
        for _ in range(ROUNDS):
            # A backlog, then more events while the runner works; the kill comes at a
            # random point.
            fx.feed(log_url, hist.generate(rng.randrange(2000, 4000)))
            runner = fx.start_runner(['--log', log_url] + specs, err)
            try:
                started = time.monotonic()
                kill_at = started + rng.uniform(0.02, 0.4)
                if rng.random() < 0.5:
                    fx.feed(log_url, hist.generate(rng.randrange(20, 100)))
                    time.sleep(max(0.0, kill_at - time.monotonic()))
                else:
                    # Kill once the PostgreSQL projector passed a random point of the
                    # backlog (Redis is then wherever it is).
                    target = rng.randrange(last_done + 1, len(hist.events))
                    deadline = time.monotonic() + 30
                    while runner.poll() is None and time.monotonic() < deadline:
                        try:
                            rows = pg.query("SELECT events FROM cairn_checkpoints "
                                            "WHERE projector = 'cpg_%s'" % label)
                        except RuntimeError:  # the runner has not created the table yet
                            rows = []
                        if rows and int(rows[0][0]) >= target:
                            break
                if runner.poll() is None:
                    runner.send_signal(signal.SIGKILL)
                    kills += 1
            finally:
                if runner.poll() is None:
                    runner.kill()
                runner.wait()
            # Where did the kill land? Strictly inside the log means mid-stream.
            code, so, se = fx.run(['status'] + specs[:1])
            m = re.search(r' events=(\d+) ', so)
            done = int(m.group(1)) if m else -1
            if 0 < done < len(hist.events) and done > last_done:
                mid += 1
            print('%s: killed with %d events in the log, %d in the checkpoint' %
                  (label, len(hist.events), done), flush=True)
            last_done = done
    check(kills >= ROUNDS - 1, '%s: the runner was SIGKILLed %d times' % (label, kills))
    check(mid >= 2, '%s: %d kills landed while the projector was part-way through the log '
          'after progressing' % (label, mid))
    code, so, se = fx.run(['run', '--log', log_url, '--exit-at-end'] + specs, timeout=300)
    check(code == 0, '%s: the final run exits 0 (%d: %s)' % (label, code, se.strip()[-300:]))
    with open(errpath, 'rb') as f:
        errtext = f.read().decode(errors='replace')
    check(fx.sanitizer_clean(errtext + se), '%s: no sanitizer report' % label)
    want = fx.fold_pg(hist.events)
    got = fx.read_pg(pg, table)
    check(got == want, '%s: after %d kills the postgres table equals the fold of %d events '
          '(%d rows) %s' % (label, kills, len(hist.events), len(want), fx.diff(got, want)))
    got = fx.read_pg(pg, table + '_f')
    check(got == want, '%s: after %d kills the folding projector\'s table equals the fold %s' %
          (label, kills, fx.diff(got, want)))
    want_r = fx.fold_redis(hist.events, prefix)
    got_r = fx.read_redis(rd, prefix)
    check(got_r == want_r, '%s: after %d kills the redis keys equal the fold (%d keys) %s' %
          (label, kills, len(want_r), fx.diff(got_r, want_r)))
    code, so, se = fx.run(['status', '--log', log_url] + specs)
    n = len(hist.events)
    check(code == 0 and so.count(' events=%d ' % n) == 3 and so.count(' lag=0') == 3,
          '%s: the checkpoints count exactly %d events, lag 0: %s' % (label, n, so.strip()))


def main():
    # The folding projector's batches: one 97-record poll each, sent at once.
    os.environ['CAIRN_PJ_FOLD_POLL'] = '97'
    os.environ['CAIRN_PJ_FOLD_MS'] = '0'
    seed = int(os.environ.get('CAIRN_PJ_SEED', random.randrange(1 << 30)))
    print('seed=%d (CAIRN_PJ_SEED replays it)' % seed, flush=True)
    rng = random.Random(seed)
    tmp = check.tmpdir('cairn-pj-crash-')
    with Postgres() as pg, Redis() as rd, fx.MockKafka(['pj_crash:3']) as kafka:
        crash_case(tmp, pg, rd, 'file', 'file:' + os.path.join(tmp, 'log'), rng)
        crash_case(tmp, pg, rd, 'kafka', kafka.url('pj_crash'), rng)
    check.exit()


if __name__ == '__main__':
    main()
