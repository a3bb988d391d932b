# SPDX-License-Identifier: MIT
"""test_projections_code.py - code projectors (include/cairn/projector.h):
tests/integration/projections/plugin_accounts.c is built here as a shared
library and run by `cairn projections run` for a spec with a "code" sink.

Checked: the library's model equals the fold computed here; its checkpoint
counts every event once, also after SIGKILLs of the runner at random points;
events of a run from the log's start are flagged `replaying` and later ones
are not; `reset` goes through the library and the next run rebuilds the
fold; a library that cannot be loaded is a clear error.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'support'))
import projections_fixture as fx  # noqa: E402

check = fx.Checker()
HERE = os.path.dirname(os.path.abspath(__file__))


def build_plugin(tmp):
    src = os.path.join(HERE, 'projections', 'plugin_accounts.c')
    out = os.path.join(tmp, 'plugin_accounts.so')
    inc = os.path.join(HERE, '..', '..', 'include')
    flags = subprocess.run(['pkg-config', '--cflags', '--libs', 'jansson'], capture_output=True,
                           text=True, check=True).stdout.split()
    cc = shutil.which('cc') or shutil.which('gcc') or shutil.which('clang')
    r = subprocess.run([cc, '-shared', '-fPIC', '-std=c11', '-D_POSIX_C_SOURCE=200809L',
                        '-Wall', '-Wextra', '-Werror', '-I', inc, '-o', out, src] + flags,
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit('cannot build the test plugin: ' + r.stderr)
    return out


def model(state_dir, name):
    with open(os.path.join(state_dir, name + '.json')) as f:
        doc = json.load(f)
    return doc, {k: (v[0], v[1]) for k, v in doc['accounts'].items()}


def main():
    seed = int(os.environ.get('CAIRN_PJ_SEED', random.randrange(1 << 30)))
    print('seed=%d (CAIRN_PJ_SEED replays it)' % seed, flush=True)
    rng = random.Random(seed)
    tmp = check.tmpdir('cairn-pj-code-')
    lib = build_plugin(tmp)
    state = os.path.join(tmp, 'state')
    os.mkdir(state)
    spec = {'name': 'code_acc', 'batch_size': 5,
            'sink': {'code': {'library': lib, 'config': {'dir': state}}},
            'types': fx.DECLARED}
    path = fx.write_spec(tmp, spec)
    log = 'file:' + os.path.join(tmp, 'log')
    hist = fx.History(seed)

    fx.feed(log, hist.generate(400))
    code, so, se = fx.run(['run', '--log', log, '--exit-at-end', path])
    check(code == 0, 'first run ends (%s)' % se.strip())
    doc, got = model(state, 'code_acc')
    check(got == fx.fold_pg(hist.events), 'the library\'s model equals the fold %s' %
          fx.diff(got, fx.fold_pg(hist.events)))
    check(doc['events'] == 400 and doc['replayed'] == 400,
          'a run from the start flags its 400 events replaying (events=%d replayed=%d)' %
          (doc['events'], doc['replayed']))

    kills = 0
    with open(os.path.join(tmp, 'runner.err'), 'wb') as err:
        for _ in range(4):
            fx.feed(log, hist.generate(rng.randrange(300, 800)))
            runner = fx.start_runner(['--log', log, path], err)
            time.sleep(rng.uniform(0.01, 0.3))
            if runner.poll() is None:
                runner.send_signal(signal.SIGKILL)
                kills += 1
            runner.wait()
    code, so, se = fx.run(['run', '--log', log, '--exit-at-end', path])
    check(code == 0, 'the run after %d kills ends (%s)' % (kills, se.strip()))
    doc, got = model(state, 'code_acc')
    check(got == fx.fold_pg(hist.events) and doc['events'] == len(hist.events),
          'after %d kills the model equals the fold and counts %d events once (%d) %s' %
          (kills, len(hist.events), doc['events'], fx.diff(got, fx.fold_pg(hist.events))))
    check(doc['replayed'] == 400, 'events after a checkpoint are not flagged replaying (%d)' %
          doc['replayed'])
    code, so, se = fx.run(['status', '--log', log, path])
    check(code == 0 and ' lag=0' in so and 'sink=code' in so, 'status: %s' % so.strip())

    code, so, se = fx.run(['reset', 'code_acc', path])
    check(code == 0 and not os.path.exists(os.path.join(state, 'code_acc.json')),
          'reset goes through the library (%s)' % se.strip())
    code, so, se = fx.run(['run', '--log', log, '--exit-at-end', path])
    doc, got = model(state, 'code_acc')
    check(code == 0 and got == fx.fold_pg(hist.events) and
          doc['replayed'] == len(hist.events),
          'after reset the run rebuilds the fold, all %d events replaying (%d)' %
          (len(hist.events), doc['replayed']))

    bad = dict(spec, sink={'code': {'library': os.path.join(tmp, 'nope.so')}})
    bad['name'] = 'code_bad'
    code, so, se = fx.run(['run', '--log', log, '--exit-at-end', fx.write_spec(tmp, bad)])
    check(code == 2 and 'cannot load' in se and 'nope.so' in se,
          'a missing library is a clear error: %s' % se.strip())
    check.exit()


if __name__ == '__main__':
    main()
