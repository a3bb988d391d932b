# SPDX-License-Identifier: MIT
"""projections_fixture.py - what the projection tests share: a random but
valid event history (accounts opened, renamed, credited, closed), its fold
computed here in Python independently of Cairn, the projector specs for both
sinks, feeding a log (file or the Kafka mock) through cairn-pj-feed, Avro
encoding of the events in the Confluent wire format (written here from the
Avro spec, not with Cairn's serde), and reading the read models back.

Standard library only (run with /usr/bin/python3).
"""

import copy
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from servers import _pdeathsig  # noqa: E402

TYPES = ('Opened', 'Renamed', 'Deposited', 'Closed')
SANITIZER_REPORTS = []


def cairn_bin():
    p = os.environ.get('CAIRN_BIN')
    if not p or not os.access(p, os.X_OK):
        sys.exit('CAIRN_BIN must name the built cairn binary (it is %r)' % p)
    return p


def tool(name):
    d = os.environ.get('CAIRN_TOOLS_DIR')
    if not d:
        sys.exit('CAIRN_TOOLS_DIR is not set (the build\'s tests/ directory)')
    p = os.path.join(d, name)
    if not os.access(p, os.X_OK):
        sys.exit('no executable %s: build the %s target' % (p, name))
    return p


class Checker:
    def __init__(self):
        self.failures = []
        self.dirs = []  # removed at exit when every check passed (kept to look at otherwise)

    def tmpdir(self, prefix):
        d = tempfile.mkdtemp(prefix=prefix)
        self.dirs.append(d)
        return d

    def __call__(self, cond, what):
        print(('ok    ' if cond else 'FAIL  ') + what, flush=True)
        if not cond:
            self.failures.append(what)
        return cond

    def exit(self):
        self(not SANITIZER_REPORTS, 'no sanitizer report from any `cairn projections` run: %s'
             % '\n'.join(SANITIZER_REPORTS)[:4000])
        if self.failures:
            print('%d check(s) failed:' % len(self.failures))
            for f in self.failures:
                print('  ' + f)
            sys.exit(1)
        for d in self.dirs:
            shutil.rmtree(d, ignore_errors=True)
        print('all checks passed')


# ---- events and their fold ----------------------------------------------------

class History:
    """Generates events stream by stream in a valid order and keeps them."""

    def __init__(self, seed, accounts=40):
        self.rng = random.Random(seed)
        self.accounts = ['acc-%03d' % i for i in range(accounts)]
        self.next_id = accounts
        self.state = {}  # id -> 'open' | 'closed'
        self.events = []

    def generate(self, n):
        out = []
        while len(out) < n:
            acc = self.rng.choice(self.accounts)
            st = self.state.get(acc)
            if st == 'closed':
                # A closed account's id is never reused: a new account takes its place.
                self.accounts[self.accounts.index(acc)] = 'acc-%03d' % self.next_id
                self.next_id += 1
                continue
            if st is None:
                ev = ('Opened', {'id': acc, 'owner': 'owner-%d' % self.rng.randrange(1000)})
                self.state[acc] = 'open'
            else:
                r = self.rng.random()
                if r < 0.6:
                    ev = ('Deposited', {'id': acc, 'amount': self.rng.randrange(-50, 500)})
                elif r < 0.95:
                    ev = ('Renamed', {'id': acc, 'owner': 'owner-%d' % self.rng.randrange(1000)})
                else:
                    ev = ('Closed', {'id': acc})
                    self.state[acc] = 'closed'
            out.append({'stream': acc, 'type': ev[0], 'value': ev[1]})
        self.events.extend(out)
        return out


def fold_pg(events):
    """id -> (owner, balance) for the accounts still open."""
    rows = {}
    for e in events:
        v = e['value']
        if e['type'] == 'Opened':
            rows[v['id']] = [v['owner'], 0]
        elif e['type'] == 'Renamed':
            rows[v['id']][0] = v['owner']
        elif e['type'] == 'Deposited':
            rows[v['id']][1] += v['amount']
        elif e['type'] == 'Closed':
            del rows[v['id']]
    return {k: (o, b) for k, (o, b) in rows.items()}


def fold_redis(events, prefix):
    """The Redis keys the redis spec below must leave: key -> value."""
    model = {}
    versions = {}
    opened = 0
    deposits = {}
    for e in events:
        v = e['value']
        ver = versions[e['stream']] = versions.get(e['stream'], 0) + 1
        key = prefix + 'acc:' + v['id']
        if e['type'] == 'Opened':
            model[key] = {'owner': v['owner'], 'balance': '0'}
            opened += 1
        elif e['type'] == 'Renamed':
            model[key]['owner'] = v['owner']
        elif e['type'] == 'Deposited':
            model[key]['balance'] = str(int(model[key]['balance']) + v['amount'])
            deposits['%s:%d' % (v['id'], ver)] = v['amount']
        elif e['type'] == 'Closed':
            del model[key]
    if opened:
        model[prefix + 'opened'] = str(opened)
    if deposits:
        model[prefix + 'deposits'] = deposits
    return model


# ---- specs ----------------------------------------------------------------------

DECLARED = {
    'Opened': {'fields': ['/id', '/owner']},
    'Renamed': {'fields': ['/id', '/owner']},
    'Deposited': {'fields': ['/id', '/amount']},
    'Closed': {'fields': ['/id']},
}


def with_subjects(spec, subjects):
    """Declares each type's registry subject (type -> subject) in @spec."""
    for t, subj in subjects.items():
        spec['types'][t] = dict(spec['types'][t], subject=subj)
    return spec


def pg_spec(name, conninfo, table, batch_size=50):
    return {
        'name': name, 'batch_size': batch_size,
        'sink': {'postgres': {'conninfo': conninfo, 'table': table,
                              'columns': {'id': 'text', 'owner': 'text', 'balance': 'bigint'},
                              'key': ['id']}},
        'types': copy.deepcopy(DECLARED),
        'on': {
            'Opened': [{'upsert': {'id': '/id', 'owner': '/owner', 'balance': 0}}],
            'Renamed': [{'upsert': {'id': '/id', 'owner': '/owner'}}],
            'Deposited': [{'upsert': {'id': '/id', 'balance': {'add': '/amount'}}}],
            'Closed': [{'delete': {'id': '/id'}}],
        },
    }


def redis_spec(name, port, prefix, batch_size=50):
    return {
        'name': name, 'batch_size': batch_size,
        'sink': {'redis': {'host': '127.0.0.1', 'port': port, 'prefix': prefix}},
        'types': copy.deepcopy(DECLARED),
        'on': {
            'Opened': [{'hset': {'key': 'acc:{/id}', 'fields': {'owner': '/owner', 'balance': 0}}},
                       {'incrby': {'key': 'opened', 'by': 1}}],
            'Renamed': [{'hset': {'key': 'acc:{/id}', 'fields': {'owner': '/owner'}}}],
            'Deposited': [{'hincrby': {'key': 'acc:{/id}', 'field': 'balance', 'by': '/amount'}},
                          {'zadd': {'key': 'deposits', 'member': '{/id}:{$version}',
                                    'score': '/amount'}}],
            'Closed': [{'del': {'key': 'acc:{/id}'}}],
        },
    }


def write_spec(dirname, spec):
    path = os.path.join(dirname, spec['name'] + '.json')
    with open(path, 'w') as f:
        json.dump(spec, f, indent=2)
    return path


# ---- read models ------------------------------------------------------------------

def read_pg(pg, table):
    return {r[0]: (r[1], int(r[2])) for r in pg.query('SELECT id, owner, balance FROM %s' % table)}


def read_redis(rd, prefix):
    model = {}
    for k in rd.keys(prefix.replace('*', '\\*') + '*'):
        t = rd.command('TYPE', k)
        if t == 'hash':
            h = rd.command('HGETALL', k)
            model[k] = dict(zip(h[0::2], h[1::2]))
        elif t == 'string':
            model[k] = rd.command('GET', k)
        elif t == 'zset':
            z = rd.command('ZRANGE', k, 0, -1, 'WITHSCORES')
            model[k] = {m: int(float(s)) for m, s in zip(z[0::2], z[1::2])}
        else:
            model[k] = '<%s>' % t
    return model


def diff(a, b, limit=5):
    """A short description of how dicts a and b differ ('' when equal)."""
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            out.append('%s: %r != %r' % (k, a.get(k), b.get(k)))
            if len(out) >= limit:
                break
    return '; '.join(out)


# ---- the log ------------------------------------------------------------------------

def feed(log_url, events, encode=None):
    """Appends @events with cairn-pj-feed; @encode(event) -> bytes makes wire values."""
    lines = []
    for e in events:
        if encode:
            lines.append(json.dumps({'stream': e['stream'], 'type': e['type'],
                                     'hex': encode(e).hex()}))
        else:
            lines.append(json.dumps(e))
    r = subprocess.run([tool('cairn-pj-feed'), '--log', log_url],
                       input=('\n'.join(lines) + '\n').encode(), capture_output=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError('cairn-pj-feed failed: ' + r.stderr.decode(errors='replace'))
    return r.stdout.decode().strip()


class MockKafka:
    """cairn-mock-kafka with the given topics ("name:partitions"), stopped by PID."""

    def __init__(self, topics):
        args = [tool('cairn-mock-kafka')]
        for t in topics:
            args += ['--topic', t]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, preexec_fn=_pdeathsig)
        fd = self.proc.stdout.fileno()
        buf = b''
        deadline = time.monotonic() + 15
        while not buf.endswith(b'\n'):
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.stop()
                raise RuntimeError('cairn-mock-kafka printed no bootstrap line')
            b = os.read(fd, 1)
            if not b:
                self.stop()
                raise RuntimeError('cairn-mock-kafka exited')
            buf += b
        self.bootstrap = buf.decode().strip()

    def url(self, topic):
        return 'kafka:%s?topic=%s' % (self.bootstrap, topic)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# ---- Avro in the Confluent wire format (written from the spec) --------------------

SCHEMAS = {
    'Opened': {'type': 'record', 'name': 'Opened', 'namespace': 'test.bank',
               'fields': [{'name': 'id', 'type': 'string'}, {'name': 'owner', 'type': 'string'}]},
    'Renamed': {'type': 'record', 'name': 'Renamed', 'namespace': 'test.bank',
                'fields': [{'name': 'id', 'type': 'string'}, {'name': 'owner', 'type': 'string'}]},
    'Deposited': {'type': 'record', 'name': 'Deposited', 'namespace': 'test.bank',
                  'fields': [{'name': 'id', 'type': 'string'}, {'name': 'amount', 'type': 'long'}]},
    'Closed': {'type': 'record', 'name': 'Closed', 'namespace': 'test.bank',
               'fields': [{'name': 'id', 'type': 'string'}]},
}


def avro_long(n):
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        b = z & 0x7f
        z >>= 7
        if z:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def avro_string(s):
    b = s.encode()
    return avro_long(len(b)) + b


def subject_of(t):
    return 'bank-test.bank.%s' % t


def register_schemas(registry_url):
    """Registers SCHEMAS over REST; returns type -> schema id."""
    ids = {}
    for t, schema in SCHEMAS.items():
        body = json.dumps({'schema': json.dumps(schema)}).encode()
        req = urllib.request.Request(
            '%s/subjects/%s/versions' % (registry_url, subject_of(t)), data=body,
            headers={'Content-Type': 'application/vnd.schemaregistry.v1+json'}, method='POST')
        with urllib.request.urlopen(req, timeout=10) as r:
            ids[t] = json.loads(r.read())['id']
    return ids


def wire_encoder(ids):
    def encode(e):
        v = e['value']
        body = b''
        for f in SCHEMAS[e['type']]['fields']:
            x = v[f['name']]
            body += avro_string(x) if f['type'] == 'string' else avro_long(x)
        return b'\x00' + ids[e['type']].to_bytes(4, 'big') + body
    return encode


# ---- the runner -----------------------------------------------------------------------

def run(args, timeout=120):
    """Runs `cairn projections ARGS`; returns (exit code, stdout, stderr)."""
    r = subprocess.run([cairn_bin(), 'projections'] + list(args), capture_output=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    err = r.stderr.decode(errors='replace')
    if not sanitizer_clean(err):
        SANITIZER_REPORTS.append('cairn projections %s: %s' % (' '.join(args), err[-2000:]))
    return r.returncode, r.stdout.decode(errors='replace'), err


def start_runner(args, errfile):
    """Starts `cairn projections run ARGS` in the background (a child, by PID)."""
    return subprocess.Popen([cairn_bin(), 'projections', 'run'] + list(args),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=errfile, preexec_fn=_pdeathsig)


SANITIZER_MARKS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:')


def sanitizer_clean(text):
    return not any(m in text for m in SANITIZER_MARKS)
