# SPDX-License-Identifier: MIT
"""pbench.py - the projections benchmark (issue 5), run by run.sh.

Starts its own PostgreSQL 15 (default settings: fsync on), Redis 7 (no
persistence) and `cairn registry serve` on loopback, data under BENCH_TMPDIR
(default /var/tmp, refused when tmpfs), stops them by PID. Then:

 1. bench_projections_gen writes the log: EVENTS events over ENTITIES
    entities on the file backend, Avro values in the Confluent wire format
    encoded by the SDK's serde against the started registry (bench_gen.c
    states the mix), and the read model the history must leave.
 2. PostgreSQL, ROUNDS interleaved rounds: a rebuild (see REBUILD below) of a
    fresh projector into a fresh table, the rebuild command over it, then
    `\\copy` of EVENTS rows
    (id text primary key, name text, balance bigint) into a fresh table of the
    same shape. Every rebuilt table is compared with the expected model.
 3. Redis, ROUNDS interleaved rounds: a rebuild of a fresh projector (fresh
    key prefix), then redis-benchmark issuing EVENTS HSETs of the same shape
    (key of 100,000 values, fields name and balance) with the sink's own
    connection count (-c 1: one redisContext per projector) and pipeline
    depth (-P BATCH: the sink sends a whole batch as one MULTI ... EXEC).
    Every rebuilt key space is compared with the expected model.
    Each rebuild round also prints the CPU time of the runner and of the
    sink's server (PostgreSQL: its backends, reaped by the postmaster).
 2b. pg_batch_experiment.py applies the same history set-based (folded
    batches COPYed to a staging table, then one merge), batches of BATCH,
    5,000 and 20,000 events: the reference for the proposal in bench/README.md ("bench/projections").
 4. Live lag, per sink, ROUNDS rounds: the caught-up projector runs
    (`cairn projections run`) while bench_projections_gen live appends RATE
    events/s for LIVE_SECONDS and watches the sink's checkpoint.

REBUILD: two measures per PostgreSQL round. (a) The replay: `cairn
projections run --exit-at-end` of a fresh projector (no checkpoint, empty
target) over the whole log, timed from process start to exit; the Redis
rounds use this one. (b) The command: `cairn projections rebuild NAME
--grace-ms 0` over the live table (a) left: a shadow table replayed from the
log's start, indexed, swapped in, the old table dropped, timed from process
start to exit. Both tables are compared with the expected model.

Prints one name=projections.<case> line per case and the targets; exits 1
when a check of correctness fails (not when a target is missed).
Standard library only; run with /usr/bin/python3.
"""

import argparse
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, 'tests', 'support'))
from servers import Redis, free_port, _as_user, _pdeathsig  # noqa: E402

PG_BIN = '/usr/lib/postgresql/15/bin'
TYPES = {'Created': {'fields': ['/id', '/name', '/balance']},
         'Updated': {'fields': ['/id', '/balance']},
         'Deleted': {'fields': ['/id']}}


def say(line):
    print(line, flush=True)


class Failure(Exception):
    pass


# ---- servers -------------------------------------------------------------------

class Postgres:
    """PostgreSQL 15 with its default settings (fsync on), stopped by PID."""

    def __init__(self, base):
        self.dir = tempfile.mkdtemp(prefix='pbench-pg-', dir=base)
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.dir, 'postgres', 'postgres')
        self.data = os.path.join(self.dir, 'data')
        r = subprocess.run([os.path.join(PG_BIN, 'initdb'), '-D', self.data, '-U', 'postgres',
                            '-A', 'trust', '-E', 'UTF8', '--locale=C'],
                           preexec_fn=_as_user('postgres'), capture_output=True, timeout=180)
        if r.returncode != 0:
            raise Failure('initdb failed: ' + r.stderr.decode(errors='replace'))
        self.log = open(os.path.join(self.dir, 'log'), 'ab')
        self.proc = subprocess.Popen(
            [os.path.join(PG_BIN, 'postgres'), '-D', self.data, '-p', str(self.port),
             '-k', self.dir, '-c', 'listen_addresses=127.0.0.1'],
            preexec_fn=_as_user('postgres'), stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure('postgres exited')
            if subprocess.run([os.path.join(PG_BIN, 'pg_isready'), '-h', '127.0.0.1', '-p',
                               str(self.port), '-t', '1'], capture_output=True).returncode == 0:
                return
            time.sleep(0.1)
        raise Failure('postgres did not start')

    @property
    def conninfo(self):
        return 'host=127.0.0.1 port=%d user=postgres dbname=postgres' % self.port

    def psql(self, *args, stdin=None, stdout=subprocess.PIPE):
        r = subprocess.run(['psql', '-h', '127.0.0.1', '-p', str(self.port), '-U', 'postgres',
                            '-d', 'postgres', '-X', '-q', '-v', 'ON_ERROR_STOP=1'] + list(args),
                           stdin=stdin, stdout=stdout, stderr=subprocess.PIPE, timeout=600)
        if r.returncode != 0:
            raise Failure('psql %s: %s' % (args, r.stderr.decode(errors='replace')))
        return r.stdout

    def sql(self, text):
        return self.psql('-A', '-t', '-c', text).decode().strip()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)  # fast shutdown
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class Registry:
    """`cairn registry serve` on a free port, stopped by PID."""

    def __init__(self, cairn, base):
        self.dir = tempfile.mkdtemp(prefix='pbench-reg-', dir=base)
        port = free_port()
        self.url = 'http://127.0.0.1:%d' % port
        self.logf = open(os.path.join(self.dir, 'serve.log'), 'ab')
        self.proc = subprocess.Popen([cairn, 'registry', 'serve', '--listen',
                                      '127.0.0.1:%d' % port, '--data',
                                      os.path.join(self.dir, 'data')],
                                     stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=self.logf, preexec_fn=_pdeathsig)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure('cairn registry serve exited')
            with open(os.path.join(self.dir, 'serve.log'), 'rb') as f:
                if b'registry listening' in f.read():
                    return
            time.sleep(0.05)
        raise Failure('cairn registry serve did not start')

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# ---- Redis helpers ---------------------------------------------------------------

def redis_pipeline(rd, commands):
    """Sends @commands (lists of args) in one write, returns their replies."""
    if not rd.sock:
        rd.command('PING')
    out = []
    for args in commands:
        out.append(b'*%d\r\n' % len(args))
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b'$%d\r\n%s\r\n' % (len(a), a))
    rd.sock.sendall(b''.join(out))
    return [rd._reply() for _ in commands]


def read_expect(path):
    rows = {}
    with open(path) as f:
        for line in f:
            i, name, balance = line.rstrip('\n').split('\t')
            rows[i] = (name, balance)
    return rows


def check_redis(rd, prefix, expect):
    """The keys under @prefix equal the expected model exactly."""
    keys = set(rd.keys(prefix.replace('*', '\\*') + '*'))
    want = {prefix + 'ent:' + i for i in expect}
    if keys != want:
        extra, missing = sorted(keys - want)[:3], sorted(want - keys)[:3]
        raise Failure('redis %s: %d keys, %d expected (extra %s, missing %s)'
                      % (prefix, len(keys), len(want), extra, missing))
    ids = sorted(expect)
    for k in range(0, len(ids), 1000):
        chunk = ids[k:k + 1000]
        replies = redis_pipeline(rd, [['HGETALL', prefix + 'ent:' + i] for i in chunk])
        for i, h in zip(chunk, replies):
            got = dict(zip(h[0::2], h[1::2]))
            if got != {'name': expect[i][0], 'balance': expect[i][1]}:
                raise Failure('redis %sent:%s = %r, expected %r' % (prefix, i, got, expect[i]))


# ---- the cases ---------------------------------------------------------------------

def pg_spec(name, table, conninfo, batch):
    return {'name': name, 'batch_size': batch,
            'sink': {'postgres': {'conninfo': conninfo, 'table': table,
                                  'columns': {'id': 'text', 'name': 'text', 'balance': 'bigint'},
                                  'key': ['id']}},
            'types': TYPES,
            'on': {'Created': [{'upsert': {'id': '/id', 'name': '/name', 'balance': '/balance'}}],
                   'Updated': [{'upsert': {'id': '/id', 'balance': '/balance'}}],
                   'Deleted': [{'delete': {'id': '/id'}}]}}


def redis_spec(name, prefix, port, batch):
    return {'name': name, 'batch_size': batch,
            'sink': {'redis': {'host': '127.0.0.1', 'port': port, 'prefix': prefix}},
            'types': TYPES,
            'on': {'Created': [{'hset': {'key': 'ent:{/id}',
                                         'fields': {'name': '/name', 'balance': '/balance'}}}],
                   'Updated': [{'hset': {'key': 'ent:{/id}', 'fields': {'balance': '/balance'}}}],
                   'Deleted': [{'del': {'key': 'ent:{/id}'}}]}}


def write_json(path, obj):
    with open(path, 'w') as f:
        json.dump(obj, f, indent=1)
    return path


def proc_cpu(pid, children=False):
    """CPU seconds of process @pid (and of its reaped children: PostgreSQL's
    postmaster reaps each connection's backend, so its backends count there)."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf('SC_CLK_TCK')


def rebuild(a, spec_path, tag, server=None, cairn=None):
    """Runs a fresh projector over the whole log; returns seconds. With
    @server (pid, children) also prints the CPU time of the runner and of the
    sink's server during the run: where the wall time goes. @cairn: another
    binary (BENCH_BASE_BIN) than CAIRN_BIN."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    s0 = proc_cpu(*server) if server else 0
    t0 = time.monotonic()
    r = subprocess.run([cairn or a.cairn, 'projections', 'run', '--exit-at-end', '--log', a.log_url,
                        '--registry', a.registry.url, spec_path],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=3600)
    dt = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if server:
        say('# %s: wall %.2f s, runner cpu %.2f s (user %.2f), sink server cpu %.2f s'
            % (tag, dt, ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime,
               ru1.ru_utime - ru0.ru_utime, proc_cpu(*server) - s0))
    out = r.stdout.decode(errors='replace') + r.stderr.decode(errors='replace')
    warnings = [line for line in out.split('level=') if line.startswith('warn')]
    for line in warnings[:3]:
        say('# %s: %s' % (tag, ' '.join(line.split())[:2000]))
    if r.returncode != 0:
        raise Failure('%s: cairn projections run exited %d: %s' % (tag, r.returncode, out[-800:]))
    m = re.search(r'state=stopped events=(\d+)', out)
    if not m or int(m.group(1)) != a.events:
        raise Failure('%s: the projector processed %s events, not %d: %s'
                      % (tag, m.group(1) if m else '?', a.events, out[-400:]))
    return dt


def rebuild_cmd(a, name, spec_path, tag, server=None):
    """`cairn projections rebuild NAME --grace-ms 0` over a live read model
    that is already there: a shadow copy replayed from the log's start,
    indexed, swapped in, the old copy dropped. Returns seconds."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    s0 = proc_cpu(*server) if server else 0
    t0 = time.monotonic()
    r = subprocess.run([a.cairn, 'projections', 'rebuild', name, '--log', a.log_url,
                        '--registry', a.registry.url, '--grace-ms', '0', spec_path],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=3600)
    dt = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = r.stdout.decode(errors='replace') + r.stderr.decode(errors='replace')
    if server:
        say('# %s: wall %.2f s, runner cpu %.2f s, sink server cpu %.2f s'
            % (tag, dt, ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime,
               proc_cpu(*server) - s0))
    m = re.search(r'state=stopped events=(\d+) .* batches=(\d+) folded=(\d+)', out)
    if r.returncode != 0 or 'state=swapped' not in out or not m or int(m.group(1)) != a.events:
        raise Failure('%s: cairn projections rebuild exited %d: %s' % (tag, r.returncode,
                                                                      out[-800:]))
    say('# %s: %s batches, %s of them folded' % (tag, m.group(2), m.group(3)))
    return dt


def base_round(a, k, sink, make_spec, server, check):
    """With BENCH_BASE_BIN, the same rebuild by that binary (the build before a
    change) in the same round: a side-by-side rate on the same machine state."""
    if not a.base:
        return
    name = '%s_b%d' % (sink, k)
    spec = write_json(os.path.join(a.tmp, name + '.json'), make_spec(name))
    dt = rebuild(a, spec, name + ' (base)', server, a.base)
    check(name)
    a.base_rates.setdefault(sink, []).append(a.events / dt)
    say('# %s base rebuild round %d: %.2f s, %.0f events/s, checked' % (sink, k, dt, a.events / dt))


def base_report(a, sink, rb, ref):
    xs = a.base_rates.get(sink)
    if xs:
        say('name=projections.rebuild_base.%s events_per_s=%.0f rounds=%s over_reference=%.2f '
            'this_over_base=%.2f' % (sink, med(xs), fmt_rounds(xs), med(xs) / ref, rb / med(xs)))


def med(xs):
    return statistics.median(xs)


def fmt_rounds(xs):
    return ','.join('%.0f' % x for x in xs)


def case_postgres(a, pg, expect_path):
    rows_path = os.path.join(a.tmp, 'copy_rows.tsv')
    with open(rows_path, 'w') as f:
        for i in range(a.events):
            f.write('c%07d\tname-c%07d\t%d\n' % (i, i, (i * 31) % 100000))
    with open(expect_path, 'rb') as f:
        expect = f.read()
    rebuild_rates, copy_rates, cmd_rates = [], [], []
    for k in range(1, a.rounds + 1):
        table, name = 'bench_pg_r%d' % k, 'pg_r%d' % k
        spec = write_json(os.path.join(a.tmp, name + '.json'),
                          pg_spec(name, table, pg.conninfo, a.batch))
        dt = rebuild(a, spec, name, (pg.proc.pid, True))
        got = pg.psql('-c', 'COPY (SELECT id, name, balance FROM %s ORDER BY id) TO STDOUT'
                      % table)
        if got != expect:
            raise Failure('%s: the table differs from the expected read model' % table)
        rebuild_rates.append(a.events / dt)
        say('# postgres rebuild round %d: %.2f s, %.0f events/s, table checked (%d rows)'
            % (k, dt, a.events / dt, expect.count(b'\n')))
        # The rebuild command over that live table: shadow, replay, index, swap, drop.
        dt = rebuild_cmd(a, name, spec, name + ' rebuild', (pg.proc.pid, True))
        got = pg.psql('-c', 'COPY (SELECT id, name, balance FROM %s ORDER BY id) TO STDOUT'
                      % table)
        if got != expect:
            raise Failure('%s: the table differs from the expected read model after the '
                          'rebuild' % table)
        cmd_rates.append(a.events / dt)
        say('# postgres rebuild command round %d: %.2f s, %.0f events/s, table checked'
            % (k, dt, a.events / dt))

        def pg_check(bname):
            bt = 'bench_' + bname
            got = pg.psql('-c', 'COPY (SELECT id, name, balance FROM %s ORDER BY id) TO STDOUT'
                          % bt)
            if got != expect:
                raise Failure('%s: the table differs from the expected read model' % bt)
            pg.sql('DROP TABLE %s' % bt)
        base_round(a, k, 'postgres',
                   lambda bname: pg_spec(bname, 'bench_' + bname, pg.conninfo, a.batch),
                   (pg.proc.pid, True), pg_check)
        if k < a.rounds:
            pg.sql('DROP TABLE %s' % table)
        else:
            a.live_pg = (name, spec)
        ct = 'copy_r%d' % k
        pg.sql('CREATE TABLE %s (id text PRIMARY KEY, name text, balance bigint)' % ct)
        t0 = time.monotonic()
        with open(rows_path, 'rb') as f:
            pg.psql('-c', '\\copy %s FROM STDIN' % ct, stdin=f)
        dt = time.monotonic() - t0
        n = int(pg.sql('SELECT count(*) FROM %s' % ct))
        if n != a.events:
            raise Failure('%s: %d rows after COPY, not %d' % (ct, n, a.events))
        copy_rates.append(a.events / dt)
        say('# postgres COPY round %d: %.2f s, %.0f rows/s' % (k, dt, a.events / dt))
        pg.sql('DROP TABLE %s' % ct)
    rb, cp, rc = med(rebuild_rates), med(copy_rates), med(cmd_rates)
    say('name=projections.rebuild.postgres events=%d events_per_s=%.0f rounds=%s batch=%d '
        'mode=run-fresh-projector values=avro-wire'
        % (a.events, rb, fmt_rounds(rebuild_rates), a.batch))
    say('name=projections.rebuild_cmd.postgres events=%d events_per_s=%.0f rounds=%s batch=%d '
        'mode=rebuild-command-grace-0 over_copy=%.2f'
        % (a.events, rc, fmt_rounds(cmd_rates), a.batch, rc / cp))
    say('name=projections.copy.postgres rows=%d rows_per_s=%.0f rounds=%s'
        % (a.events, cp, fmt_rounds(copy_rates)))
    base_report(a, 'postgres', rb, cp)
    a.results.append(('postgres rebuild / COPY', rb / cp, 0.5))
    say('name=projections.ratio.postgres rebuild_over_copy=%.2f target=0.5 met=%s'
        % (rb / cp, 'yes' if rb / cp >= 0.5 else 'no'))


def experiment(a, pg, events_tsv, expect_path):
    """pg_batch_experiment.py: the same history applied set-based (bench/README.md, "bench/projections")."""
    for batch in (a.batch, 5000, 20000):
        r = subprocess.run(['/usr/bin/python3', os.path.join(HERE, 'pg_batch_experiment.py'),
                            '--port', str(pg.port), '--events', events_tsv, '--expect',
                            expect_path, '--batch', str(batch)], capture_output=True,
                           timeout=1800)
        if r.returncode != 0:
            raise Failure('pg_batch_experiment.py: %s %s' % (r.stdout.decode()[-300:],
                                                             r.stderr.decode()[-300:]))
        say(r.stdout.decode().strip() + ' (reference, not Cairn: a set-based sink)')
    pg.sql('DROP TABLE exp_set_based')


def case_redis(a, rd, expect_path):
    expect = read_expect(expect_path)
    rebuild_rates, bench_rates = [], []
    for k in range(1, a.rounds + 1):
        name, prefix = 'rd_r%d' % k, 'r%d:' % k
        spec = write_json(os.path.join(a.tmp, name + '.json'),
                          redis_spec(name, prefix, rd.port, a.batch))
        dt = rebuild(a, spec, name, (rd.proc.pid, False))
        check_redis(rd, prefix, expect)
        rebuild_rates.append(a.events / dt)
        say('# redis rebuild round %d: %.2f s, %.0f events/s, keys checked (%d hashes)'
            % (k, dt, a.events / dt, len(expect)))
        rd.command('FLUSHALL')

        def rd_check(bname):
            check_redis(rd, bname + ':', expect)
            rd.command('FLUSHALL')
        base_round(a, k, 'redis', lambda bname: redis_spec(bname, bname + ':', rd.port, a.batch),
                   (rd.proc.pid, False), rd_check)
        # redis-benchmark: -c 1 connection (the sink's one redisContext), -P the batch
        cmd = ['redis-benchmark', '-h', '127.0.0.1', '-p', str(rd.port), '-c', '1',
               '-P', str(a.batch), '-n', str(a.events), '-r', str(a.entities), '--csv',
               'HSET', 'b:ent:__rand_int__', 'name', 'name-e000000', 'balance', '12345']
        r = subprocess.run(cmd, capture_output=True, timeout=600)
        m = re.search(r'"HSET[^"]*","([0-9.]+)"', r.stdout.decode())
        if r.returncode != 0 or not m:
            raise Failure('redis-benchmark: %s %s' % (r.stdout.decode()[-300:],
                                                      r.stderr.decode()[-300:]))
        bench_rates.append(float(m.group(1)))
        say('# redis-benchmark round %d: %.0f HSET/s' % (k, float(m.group(1))))
        rd.command('FLUSHALL')
    # the live case needs a caught-up projector: the last round, again
    name, prefix = 'rd_live', 'live:'
    spec = write_json(os.path.join(a.tmp, name + '.json'),
                      redis_spec(name, prefix, rd.port, a.batch))
    rebuild(a, spec, name)
    a.live_redis = (name, spec)
    rb, hb = med(rebuild_rates), med(bench_rates)
    say('name=projections.rebuild.redis events=%d events_per_s=%.0f rounds=%s batch=%d '
        'mode=run-fresh-projector values=avro-wire'
        % (a.events, rb, fmt_rounds(rebuild_rates), a.batch))
    say('name=projections.redis_benchmark.hset commands=%d per_s=%.0f rounds=%s c=1 P=%d'
        % (a.events, hb, fmt_rounds(bench_rates), a.batch))
    base_report(a, 'redis', rb, hb)
    a.results.append(('redis rebuild / redis-benchmark', rb / hb, 0.5))
    say('name=projections.ratio.redis rebuild_over_redis_benchmark=%.2f target=0.5 met=%s'
        % (rb / hb, 'yes' if rb / hb >= 0.5 else 'no'))


def case_live(a, sink, target, spec_path, name):
    p50s, p99s, maxs = [], [], []
    for k in range(1, a.rounds + 1):
        errf = open(os.path.join(a.tmp, 'live-%s-%d.log' % (sink, k)), 'wb')
        runner = subprocess.Popen([a.cairn, 'projections', 'run', '--log', a.log_url,
                                   '--registry', a.registry.url, spec_path],
                                  stdin=subprocess.DEVNULL, stdout=errf, stderr=errf,
                                  preexec_fn=_pdeathsig)
        try:
            time.sleep(1.0)  # connect, read the checkpoint, reach the end
            if runner.poll() is not None:
                raise Failure('live %s: the runner exited %d' % (sink, runner.returncode))
            r = subprocess.run([a.gen, 'live', '--log', a.log_url, '--registry', a.registry.url,
                                '--projector', name, '--' + sink, target,
                                '--rate', str(a.rate), '--seconds', str(a.live_seconds)],
                               stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=a.live_seconds + 120)
        finally:
            if runner.poll() is None:
                runner.send_signal(signal.SIGTERM)
                try:
                    runner.wait(30)
                except subprocess.TimeoutExpired:
                    runner.kill()
                    runner.wait()
            errf.close()
        out = r.stdout.decode()
        if r.returncode != 0:
            raise Failure('live %s: %s' % (sink, r.stderr.decode()[-500:]))
        if runner.returncode != 0:
            raise Failure('live %s: the runner exited %d' % (sink, runner.returncode))
        kv = dict(x.split('=', 1) for x in out.split() if '=' in x)
        p50s.append(float(kv['p50_ms']))
        p99s.append(float(kv['p99_ms']))
        maxs.append(float(kv['max_ms']))
        say('# ' + out.strip())
    p99 = med(p99s)
    label = 'postgres' if sink == 'pg' else sink
    say('name=projections.live_lag.%s rate=%d seconds=%s p50_ms=%.1f p99_ms=%.1f max_ms=%.1f '
        'rounds_p99=%s target_p99_ms=100 met=%s'
        % (label, a.rate, a.live_seconds, med(p50s), p99, med(maxs),
           ','.join('%.1f' % x for x in p99s), 'yes' if p99 < 100 else 'no'))
    a.results.append(('%s live lag p99 (ms)' % label, p99, 100))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--smoke', action='store_true', help='a small run that checks the pipeline')
    ap.add_argument('--keep', action='store_true', help='leave the temp dir')
    ap.add_argument('--only', choices=['postgres', 'redis'], action='append',
                    help='that sink\'s rebuild case only (no live case)')
    a = ap.parse_args()
    a.cairn = os.environ.get('CAIRN_BIN')
    a.gen = os.environ.get('BENCH_GEN')
    for what, p in (('CAIRN_BIN', a.cairn), ('BENCH_GEN', a.gen)):
        if not p or not os.access(p, os.X_OK):
            sys.exit('%s must name an executable (it is %r)' % (what, p))
    base = os.environ.get('BENCH_TMPDIR', '/var/tmp')
    fs = subprocess.run(['stat', '-f', '-c', '%T', base], capture_output=True).stdout.strip()
    if fs == b'tmpfs':
        sys.exit('BENCH_TMPDIR=%s is tmpfs: fsync would be free there' % base)
    if a.smoke:
        a.events, a.entities, a.rounds, a.rate, a.live_seconds = 20000, 2000, 1, 2000, 2
    else:
        a.events, a.entities, a.rounds, a.rate, a.live_seconds = 1000000, 100000, 3, 10000, 10
    a.batch = int(os.environ.get('BENCH_BATCH', '500'))
    a.base = os.environ.get('BENCH_BASE_BIN')  # a second cairn, rebuilt beside it each round
    a.base_rates = {}
    a.tmp = tempfile.mkdtemp(prefix='pbench-', dir=base)
    os.chmod(a.tmp, 0o755)  # PostgreSQL runs as postgres below it
    a.results = []
    pg = rd = None
    a.registry = None
    code = 0
    try:
        say('# tmp=%s events=%d entities=%d rounds=%d batch=%d'
            % (a.tmp, a.events, a.entities, a.rounds, a.batch))
        a.registry = Registry(a.cairn, a.tmp)
        pg = Postgres(a.tmp)
        rd = Redis()
        a.log_url = 'file:' + os.path.join(a.tmp, 'log')
        expect_path = os.path.join(a.tmp, 'expect.tsv')
        events_tsv = os.path.join(a.tmp, 'events.tsv')
        r = subprocess.run([a.gen, 'log', '--log', a.log_url, '--registry', a.registry.url,
                            '--events', str(a.events), '--entities', str(a.entities),
                            '--expect', expect_path, '--events-tsv', events_tsv],
                           capture_output=True, timeout=1800)
        if r.returncode != 0:
            raise Failure('bench_projections_gen log: ' + r.stderr.decode())
        say('name=projections.log ' + r.stdout.decode().strip())
        only = a.only or ['postgres', 'redis', 'live']  # live needs both rebuilds
        if 'postgres' in only or 'live' in only:
            case_postgres(a, pg, expect_path)
            experiment(a, pg, events_tsv, expect_path)
        if 'redis' in only or 'live' in only:
            case_redis(a, rd, expect_path)
        if 'live' in only:
            case_live(a, 'pg', pg.conninfo, a.live_pg[1], a.live_pg[0])
            case_live(a, 'redis', '127.0.0.1:%d' % rd.port, a.live_redis[1], a.live_redis[0])
        for what, value, target in a.results:
            ok = value < target if 'lag' in what else value >= target
            say('# target %s: %.2f (%s %s) %s' % (what, value, '<' if 'lag' in what else '>=',
                                                   target, 'met' if ok else 'MISSED'))
    except Failure as e:
        say('FAIL %s' % e)
        code = 1
    finally:
        if rd:
            rd.close()
        if pg:
            pg.stop()
        if a.registry:
            a.registry.stop()
        if not a.keep:
            shutil.rmtree(a.tmp, ignore_errors=True)
    return code


if __name__ == '__main__':
    sys.exit(main())
