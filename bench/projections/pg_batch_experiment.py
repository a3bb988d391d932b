# SPDX-License-Identifier: MIT
"""pg_batch_experiment.py - what a set-based PostgreSQL sink could reach on the
benchmark's history: the reference for the proposal in bench/README.md ("bench/projections"), not a
test of Cairn's code.

The sink today sends one prepared INSERT ... ON CONFLICT (or DELETE) per
event. This script applies the same history (bench_projections_gen log
--events-tsv) the set-based way, batch by batch, each batch one transaction:
fold the batch's events per key in the client (last op wins; a Created sets
the name, an Updated only the balance; a Deleted removes the row), COPY the
folded rows into a temporary staging table, then one DELETE ... USING and
one INSERT ... SELECT ... ON CONFLICT DO UPDATE, plus the checkpoint row,
COMMIT. Everything goes through one psql session reading a generated script
(COPY data inline), timed from start to exit; the table is then compared
with the expected read model (--expect).

    /usr/bin/python3 pg_batch_experiment.py --port P --events events.tsv \
        --expect expect.tsv --batch 500
Prints name=projections.pg_set_based batch=B events_per_s=X checked=yes.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time


def psql(port, args, stdin=None):
    r = subprocess.run(['psql', '-h', '127.0.0.1', '-p', str(port), '-U', 'postgres', '-d',
                        'postgres', '-X', '-q', '-v', 'ON_ERROR_STOP=1'] + args, stdin=stdin,
                       capture_output=True, timeout=3600)
    if r.returncode != 0:
        sys.exit('psql: ' + r.stderr.decode(errors='replace'))
    return r.stdout


def fold(batch):
    """key -> (op, name or None, balance) after the batch's events, in first-seen order."""
    rows = {}
    for op, key, name, balance in batch:
        old = rows.get(key)
        if op == 'D':
            rows[key] = ('D', None, None)
        elif op == 'C':
            rows[key] = ('U', name, balance)
        else:
            rows[key] = ('U', old[1] if old else None, balance)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--events', required=True)
    ap.add_argument('--expect', required=True)
    ap.add_argument('--batch', type=int, default=500)
    ap.add_argument('--table', default='exp_set_based')
    a = ap.parse_args()

    events = []
    with open(a.events) as f:
        for line in f:
            _, op, key, name, balance = line.rstrip('\n').split('\t')
            events.append((op, key, None if name == '\\N' else name, balance))
    script = tempfile.NamedTemporaryFile('w', suffix='.sql', delete=False)
    w = script.write
    w('CREATE TEMP TABLE stg (op "char", id text, name text, balance bigint) '
      'ON COMMIT DELETE ROWS;\n')
    for k in range(0, len(events), a.batch):
        rows = fold(events[k:k + a.batch])
        w('BEGIN;\nCOPY stg FROM STDIN;\n')
        for key, (op, name, balance) in rows.items():
            w('%s\t%s\t%s\t%s\n' % (op, key, name if name is not None else '\\N',
                                    balance if balance is not None else '\\N'))
        w('\\.\n')
        w('DELETE FROM %s t USING stg s WHERE s.op = \'D\' AND t.id = s.id;\n' % a.table)
        w('INSERT INTO %s AS t (id, name, balance) SELECT id, name, balance FROM stg '
          'WHERE op <> \'D\' ON CONFLICT (id) DO UPDATE SET '
          'name = COALESCE(EXCLUDED.name, t.name), balance = EXCLUDED.balance;\n' % a.table)
        w('INSERT INTO exp_checkpoints VALUES (\'exp\', \'file:%d\') ON CONFLICT (projector) '
          'DO UPDATE SET checkpoint = EXCLUDED.checkpoint;\nCOMMIT;\n' % (k + a.batch))
    script.close()
    psql(a.port, ['-c', 'DROP TABLE IF EXISTS %s; CREATE TABLE %s (id text PRIMARY KEY, '
                        'name text, balance bigint); CREATE TABLE IF NOT EXISTS exp_checkpoints '
                        '(projector text PRIMARY KEY, checkpoint text)' % (a.table, a.table)])
    t0 = time.monotonic()
    psql(a.port, ['-f', script.name])
    dt = time.monotonic() - t0
    os.unlink(script.name)
    got = psql(a.port, ['-c', 'COPY (SELECT id, name, balance FROM %s ORDER BY id) TO STDOUT'
                              % a.table])
    with open(a.expect, 'rb') as f:
        ok = got == f.read()
    print('name=projections.pg_set_based batch=%d events=%d seconds=%.2f events_per_s=%.0f '
          'checked=%s' % (a.batch, len(events), dt, len(events) / dt, 'yes' if ok else 'NO'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
