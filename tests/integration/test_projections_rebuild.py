# SPDX-License-Identifier: MIT
"""test_projections_rebuild.py - `cairn projections rebuild NAME` without
downtime, on PostgreSQL and Redis, on the file log.

While a live `cairn projections run` keeps following the log, a feeder keeps
appending events and reader threads keep querying the live read models:

- PostgreSQL reader: one statement reads the live checkpoint's event count n
  and the table's row count and balance sum; they must equal the fold of the
  first n events (no half-built model) and the statement must never fail;
- Redis reader: GET the pointer key, then in one MULTI the checkpoint of that
  generation, the `opened` counter and the `deposits` cardinality; they must
  equal the fold of the first n events.

Then: after the swaps both models equal the fold of the whole log, the old
copies are gone after the grace period (and a later Redis rebuild also drops
an older generation left behind); a second rebuild is SIGKILLed part-way
(its shadow checkpoint > 0), `--dry-run` then reports a resume and changes
nothing, and the rerun resumes from the shadow's checkpoint (it does not
start over) and ends equal to the fold.

    CAIRN_BIN=build/cli/cairn CAIRN_TOOLS_DIR=build/tests \\
        /usr/bin/python3 tests/integration/test_projections_rebuild.py
"""
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import projections_fixture as fx  # noqa: E402
from servers import Postgres, Redis, _pdeathsig  # noqa: E402

check = fx.Checker()
PG = 'rb_pg'
RD = 'rb_rd'
TABLE = 'rb_acc'
PREFIX = 'rb:'


def prefix_stats(events):
    """stats[n] = (rows, balance sum, opened, deposits) of the fold of events[:n]."""
    rows = {}
    total = 0
    opened = deposits = 0
    out = [(0, 0, 0, 0)]
    for e in events:
        v = e['value']
        if e['type'] == 'Opened':
            rows[v['id']] = 0
            opened += 1
        elif e['type'] == 'Deposited':
            rows[v['id']] += v['amount']
            total += v['amount']
            deposits += 1
        elif e['type'] == 'Closed':
            total -= rows.pop(v['id'])
        out.append((len(rows), total, opened, deposits))
    return out


class Readers:
    """Threads that query the live models and record what they saw."""

    def __init__(self, pg, rd):
        self.pg = pg
        self.rd_port = rd.port
        self.stop = threading.Event()
        self.pg_seen = []   # (n, rows, sum)
        self.rd_seen = []   # (gen, n, opened, deposits)
        self.pg_errors = []
        self.rd_errors = []
        self.threads = [threading.Thread(target=self.pg_loop, daemon=True),
                        threading.Thread(target=self.rd_loop, daemon=True)]

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def pg_loop(self):
        sql = ("SELECT (SELECT events FROM cairn_checkpoints WHERE projector = '%s'), "
               "(SELECT count(*) FROM %s), (SELECT coalesce(sum(balance), 0) FROM %s)"
               % (PG, TABLE, TABLE))
        while not self.stop.is_set():
            try:
                r = self.pg.query(sql)[0]
                self.pg_seen.append((int(r[0]), int(r[1]), int(r[2])))
            except Exception as e:  # a failed read is what this test looks for
                self.pg_errors.append(str(e)[:300])

    def rd_loop(self):
        c = Redis(start=False)
        c.port = self.rd_port
        while not self.stop.is_set():
            try:
                gen = c.command('GET', PREFIX + 'gen') or ''
                p = PREFIX + (gen + ':' if gen else '')
                ck = 'cairn:checkpoint:' + RD + ('#' + gen if gen else '')
                c.command('MULTI')
                c.command('HGET', ck, 'events')
                c.command('GET', p + 'opened')
                c.command('ZCARD', p + 'deposits')
                r = c.command('EXEC')
                self.rd_seen.append((gen, int(r[0] or 0), int(r[1] or 0), int(r[2] or 0)))
            except Exception as e:
                self.rd_errors.append(str(e)[:300])
                c._drop()
            time.sleep(0.002)
        c._drop()


def wait_caught_up(specs, log_url, n, timeout=60):
    deadline = time.monotonic() + timeout
    so = ''
    while time.monotonic() < deadline:
        code, so, se = fx.run(['status', '--log', log_url] + specs)
        if so.count(' events=%d ' % n) == len(specs):
            return True
        time.sleep(0.1)
    print('not caught up: ' + so)
    return False


def rebuild(name, log_url, specs, extra=(), timeout=180):
    return fx.run(['rebuild', name, '--log', log_url, '--grace-ms', '1000'] + list(extra) + specs,
                  timeout=timeout)


def pg_tables(pg):
    return sorted(r[0] for r in pg.query(
        "SELECT tablename FROM pg_tables WHERE tablename LIKE '%s%%'" % TABLE))


def kill_resume(tmp, pg, rd, specs, log_url, hist, name, shadow_events):
    """SIGKILLs a rebuild once its shadow has progressed, checks the dry run and
    that the rerun resumes."""
    errpath = os.path.join(tmp, name + '-rebuild.err')
    with open(errpath, 'wb') as err:
        proc = subprocess.Popen([fx.cairn_bin(), 'projections', 'rebuild', name, '--log', log_url,
                                 '--grace-ms', '500'] + specs,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                preexec_fn=_pdeathsig)
        total = len(hist.events)
        done = 0
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            done = shadow_events()
            if done >= total // 5:
                break
            time.sleep(0.01)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
    done = shadow_events()
    check(killed and 0 < done < total,
          '%s: rebuild SIGKILLed part-way: shadow at %d of %d events' % (name, done, total))
    return done


def case(tmp, pg, rd, label, log_url, rng, full):
    """The rebuilds under load; with @full also the waited-for swap and kill -9."""
    global PG, RD, TABLE, PREFIX
    PG, RD, TABLE, PREFIX = label + '_pg', label + '_rd', label + '_acc', label + ':'
    print('---- %s: %s' % (label, log_url), flush=True)
    hist = fx.History(rng.randrange(1 << 30), accounts=200)
    if True:
        # batch_size 200 (the Kafka case) catches up, and rebuilds, in folded
        # batches; 20 (the file case, whose rebuild is killed part-way) in
        # batches of 20 events.
        specs = [fx.write_spec(tmp, fx.pg_spec(PG, pg.conninfo, TABLE,
                                               batch_size=20 if full else 200)),
                 fx.write_spec(tmp, fx.redis_spec(RD, rd.port, PREFIX, batch_size=20))]
        fx.feed(log_url, hist.generate(20000 if full else 8000))
        errpath = os.path.join(tmp, label + '-live.err')
        with open(errpath, 'wb') as err:
            live = fx.start_runner(['--log', log_url] + specs, err)
            try:
                check(wait_caught_up(specs, log_url, len(hist.events)),
                      'the live projectors caught up with %d events' % len(hist.events))
                # An index made by hand on the live table: the swapped-in table has it too.
                pg.query('CREATE INDEX %s_owner ON %s (owner)' % (TABLE, TABLE))

                # ---- rebuild under load -------------------------------------
                readers = Readers(pg, rd)
                stop_feed = threading.Event()

                def feeder():
                    while not stop_feed.is_set():
                        fx.feed(log_url, hist.generate(rng.randrange(5, 40)))
                        time.sleep(0.02)
                feed_thread = threading.Thread(target=feeder, daemon=True)
                readers.start()
                feed_thread.start()
                time.sleep(0.5)
                code, so, se = rebuild(PG, log_url, specs)
                check(code == 0 and 'state=swapped' in so and 'state=dropped' in so,
                      'postgres rebuild under load swapped and dropped the old table (%d): %s %s'
                      % (code, so.strip()[-600:], se.strip()[-600:]))
                check('live_connections_ended=1' in so,
                      'the swap ended the live postgres projector\'s connection: %s' % so.strip())
                m = re.search(r'projector=%s state=stopped .* folded=(\d+)' % PG, so)
                check(m and (int(m.group(1)) > 0) == (not full),
                      'the shadow was built in folded batches with batch_size 200, not with 20: '
                      '%s' % (m.group(0) if m else so.strip()[-300:]))
                time.sleep(0.5)
                code, so, se = rebuild(RD, log_url, specs)
                check(code == 0 and 'generation=g1' in so and 'state=dropped' in so,
                      'redis rebuild under load flipped to g1 and dropped the root generation '
                      '(%d): %s %s' % (code, so.strip()[-600:], se.strip()[-600:]))
                check('live_connections_ended=1' in so,
                      'the flip ended the live redis projector\'s connection: %s' % so.strip())
                time.sleep(0.5)
                stop_feed.set()
                feed_thread.join(60)
                check(wait_caught_up(specs, log_url, len(hist.events)),
                      'the live projectors follow the log after the swaps (%d events)'
                      % len(hist.events))
                readers.join()

                stats = prefix_stats(hist.events)
                bad = [s for s in readers.pg_seen
                       if s[0] >= len(stats) or (s[1], s[2]) != stats[s[0]][:2]]
                check(not readers.pg_errors, 'no postgres read failed during the rebuild (%d '
                      'reads): %s' % (len(readers.pg_seen), readers.pg_errors[:3]))
                check(len(readers.pg_seen) > 20 and not bad,
                      'every postgres read (%d) saw the fold of a prefix of the log: %s'
                      % (len(readers.pg_seen), bad[:3]))
                gens = sorted(set(s[0] for s in readers.rd_seen))
                bad = [s for s in readers.rd_seen
                       if s[1] >= len(stats) or (s[2], s[3]) != stats[s[1]][2:]]
                check(not readers.rd_errors, 'no redis read failed during the rebuild: %s'
                      % readers.rd_errors[:3])
                check(len(readers.rd_seen) > 20 and not bad and gens == ['', 'g1'],
                      'every redis read (%d, generations %s) saw the fold of a prefix: %s'
                      % (len(readers.rd_seen), gens, bad[:3]))

                want = fx.fold_pg(hist.events)
                got = fx.read_pg(pg, TABLE)
                check(got == want, 'after the swap the postgres table equals the fold of %d '
                      'events %s' % (len(hist.events), fx.diff(got, want)))
                check(pg_tables(pg) == [TABLE], 'only the live table is left: %s' % pg_tables(pg))
                idx = sorted(r[0] for r in pg.query(
                    "SELECT indexname FROM pg_indexes WHERE tablename = '%s'" % TABLE))
                check(idx == [TABLE + '_owner', TABLE + '_pkey'],
                      'the swapped-in table has the primary key and the hand-made index: %s' % idx)
                want_r = fx.fold_redis(hist.events, PREFIX + 'g1:')
                got_r = fx.read_redis(rd, PREFIX + 'g1:')
                check(got_r == want_r, 'after the flip the redis generation g1 equals the fold %s'
                      % fx.diff(got_r, want_r))
                leftovers = [k for k in rd.keys(PREFIX + '*')
                             if not k.startswith(PREFIX + 'g1:') and k != PREFIX + 'gen']
                check(not leftovers and rd.command('GET', PREFIX + 'gen') == 'g1',
                      'the root generation is gone, the pointer names g1: %s' % leftovers[:5])

                if not full:
                    return
                # ---- a reader mid-transaction: the swap waits for it, retrying ----
                seen = []

                def long_reader():
                    try:
                        seen.append(pg.query('BEGIN; SELECT count(*) FROM %s; SELECT pg_sleep(2.5);'
                                             ' SELECT count(*) FROM %s; COMMIT' % (TABLE, TABLE)))
                    except Exception as e:  # the failure this part looks for
                        seen.append(e)
                t = threading.Thread(target=long_reader)
                t.start()
                time.sleep(0.3)
                code, so, se = rebuild(PG, log_url, specs, ['--lock-timeout-ms', '300'])
                t.join(30)
                m = re.search(r'state=swapped .*attempts=(\d+)', so)
                check(code == 0 and m and int(m.group(1)) >= 2,
                      'the swap timed out on a reader\'s open transaction and was retried until '
                      'it ended (%d): %s %s' % (code, so.strip()[-300:], se.strip()[-300:]))
                check(len(seen) == 1 and isinstance(seen[0], list) and
                      int(seen[0][0][0]) == len(want),
                      'the reader\'s transaction ran to its end on the old table: %s' % seen)
                got = fx.read_pg(pg, TABLE)
                check(got == want, 'after the waited-for swap the table equals the fold %s'
                      % fx.diff(got, want))

                # ---- kill -9, dry run, resume --------------------------------
                def pg_shadow_events():
                    try:
                        r = pg.query("SELECT events FROM cairn_checkpoints WHERE projector = "
                                     "'%s#shadow'" % PG)
                    except RuntimeError:
                        return 0
                    return int(r[0][0]) if r else 0

                def rd_shadow_events():
                    return int(rd.command('HGET', 'cairn:checkpoint:%s#g2' % RD, 'events') or 0)

                for name, shadow_events in ((PG, pg_shadow_events), (RD, rd_shadow_events)):
                    done = kill_resume(tmp, pg, rd, specs, log_url, hist, name, shadow_events)
                    before = (pg_tables(pg), pg.query('SELECT * FROM cairn_checkpoints ORDER BY 1'),
                              sorted(rd.keys('*')), rd.command('GET', PREFIX + 'gen'))
                    code, so, se = rebuild(name, log_url, specs, ['--dry-run'])
                    after = (pg_tables(pg), pg.query('SELECT * FROM cairn_checkpoints ORDER BY 1'),
                             sorted(rd.keys('*')), rd.command('GET', PREFIX + 'gen'))
                    check(code == 0 and 'start=resume' in so and
                          'shadow_events=%d ' % done in so and 'drop_after_grace=' in so,
                          '%s: --dry-run reports a resume from %d events and what it would drop:'
                          ' %s %s' % (name, done, so.strip(), se.strip()[-300:]))
                    check(before == after, '%s: --dry-run changed nothing' % name)
                    code, so, se = rebuild(name, log_url, specs)
                    m = re.search(r'state=rebuilding .*start=(\w+) .*shadow_events=(\d+)', so)
                    check(code == 0 and m and m.group(1) == 'resume' and
                          int(m.group(2)) == done and 'state=swapped' in so,
                          '%s: the rerun resumed from the shadow checkpoint (%d events) and '
                          'swapped (%d): %s %s' % (name, done, code, so.strip()[-500:],
                                                   se.strip()[-300:]))
                check(wait_caught_up(specs, log_url, len(hist.events)),
                      'the live projectors are at the log end after the resumed rebuilds')
                got = fx.read_pg(pg, TABLE)
                check(got == want, 'after the resumed rebuild the postgres table equals the fold'
                      ' %s' % fx.diff(got, want))
                want_r = fx.fold_redis(hist.events, PREFIX + 'g2:')
                got_r = fx.read_redis(rd, PREFIX + 'g2:')
                check(got_r == want_r, 'after the resumed rebuild redis generation g2 equals the '
                      'fold %s' % fx.diff(got_r, want_r))
                check(not rd.keys(PREFIX + 'g1:*'), 'generation g1 was dropped')
                idx = sorted(r[0] for r in pg.query(
                    "SELECT indexname FROM pg_indexes WHERE tablename LIKE '%s%%'" % TABLE))
                check(idx == [TABLE + '_owner', TABLE + '_pkey'] and pg_tables(pg) == [TABLE],
                      'after the second swap: one table, its two indexes: %s' % idx)
                code, so, se = fx.run(['status', '--log', log_url] + specs)
                check(code == 0 and so.count(' events=%d ' % len(hist.events)) == 2,
                      'status reads the swapped-in checkpoints: %s' % so.strip())
                # A code projector: the library builds its shadow, every event replaying.
                import test_projections_code as tc
                state = os.path.join(tmp, 'code-state')
                os.makedirs(state, exist_ok=True)
                cspec = fx.write_spec(tmp, {
                    'name': 'rb_code', 'batch_size': 50,
                    'sink': {'code': {'library': tc.build_plugin(tmp), 'config': {'dir': state}}},
                    'types': fx.DECLARED})
                code, so, se = fx.run(['rebuild', 'rb_code', '--log', log_url, cspec])
                doc, got_c = tc.model(state, 'rb_code#shadow')
                check(code == 0 and 'state=built' in so and got_c == fx.fold_pg(hist.events) and
                      doc.get('replayed') == len(hist.events),
                      'a code projector\'s rebuild built its shadow from %d events, all flagged '
                      'replaying (%s) (%d): %s %s' % (len(hist.events), doc.get('replayed'), code,
                                                     so.strip()[-300:], se.strip()[-300:]))

                # A flip whose kill of the live connection never came (a rebuild
                # killed between the two): the live runner notices the pointer.
                rd.command('SET', PREFIX + 'gen', 'g9')
                check(wait_caught_up(specs, log_url, len(hist.events)),
                      'the live redis projector followed a flip it was not told about')
                got_r = fx.read_redis(rd, PREFIX + 'g9:')
                want_r = fx.fold_redis(hist.events, PREFIX + 'g9:')
                check(got_r == want_r, 'it built generation g9 from its (empty) checkpoint: %s'
                      % fx.diff(got_r, want_r))

                # Generation g2 is a leftover now (the pointer left it without a
                # rebuild's drop, as a rebuild killed during its grace period
                # leaves one): the next rebuild drops it after the one it retires.
                check(rd.keys(PREFIX + 'g2:*') and rd.keys('cairn:checkpoint:%s#g2' % RD),
                      'generation g2 and its checkpoint are there before the rebuild')
                code, so, se = rebuild(RD, log_url, specs)
                check(code == 0 and 'generation=g10' in so and
                      'state=dropped old="generation \'g9\'"' in so and
                      'state=dropped old="generation \'g2\'"' in so,
                      'the rebuild to g10 dropped g9, then the leftover g2 (%d): %s %s'
                      % (code, so.strip()[-600:], se.strip()[-300:]))
                left = [k for k in rd.keys(PREFIX + '*')
                        if not k.startswith(PREFIX + 'g10:') and k != PREFIX + 'gen']
                ck = sorted(rd.keys('cairn:checkpoint:%s*' % RD))
                check(not left and ck == ['cairn:checkpoint:%s#g10' % RD],
                      'only generation g10 and its checkpoint are left: %s %s' % (left[:5], ck))
                check(wait_caught_up(specs, log_url, len(hist.events)),
                      'the live projectors follow g10')
                got_r = fx.read_redis(rd, PREFIX + 'g10:')
                want_r = fx.fold_redis(hist.events, PREFIX + 'g10:')
                check(got_r == want_r, 'generation g10 equals the fold %s' % fx.diff(got_r, want_r))
            finally:
                live.send_signal(signal.SIGTERM)
                try:
                    live.wait(20)
                except subprocess.TimeoutExpired:
                    live.kill()
                    live.wait()
                check(live.returncode == 0, '%s: the live runner ran through the swaps and '
                      'exited 0 (%s)' % (label, live.returncode))
                with open(errpath, 'rb') as f:
                    errtext = f.read().decode(errors='replace')
                check(fx.sanitizer_clean(errtext),
                      '%s: no sanitizer report from the live runner' % label)


def main():
    seed = int(os.environ.get('CAIRN_PJ_SEED', random.randrange(1 << 30)))
    print('seed=%d (CAIRN_PJ_SEED replays it)' % seed, flush=True)
    rng = random.Random(seed)
    tmp = check.tmpdir('cairn-pj-rebuild-')
    with Postgres() as pg, Redis() as rd, fx.MockKafka(['pj_rebuild:1']) as kafka:
        case(tmp, pg, rd, 'rb', 'file:' + os.path.join(tmp, 'log'), rng, True)
        # One partition, so that a checkpoint's event count is a prefix of the feed.
        case(tmp, pg, rd, 'rbk', kafka.url('pj_rebuild'), rng, False)
    check.exit()


if __name__ == '__main__':
    main()
