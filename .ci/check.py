#!/usr/bin/env python3
"""The long part of the README's test command: every notebook's tests, the docs pages, and every lesson in a fresh runtime, as one queue.

    python .ci/check.py                  # what `make test` runs after its quick checks
    python .ci/check.py --log            # the same, then each job's seconds appended to nbs/results/check_times.jsonl (a clean commit only)
    python .ci/check.py 07_app docs      # only the jobs whose names hold one of these (here: 07's tests and fresh run, and the docs)
    python .ci/check.py --fresh 02 05    # only lessons in a fresh runtime (`make fresh`), named by file name or number prefix

The jobs:
- one notebook's tests, as `nbdev_test` runs them (nbdev's `test_nb`, the cells flagged in `tst_flags` skipped), in this
  environment, the development stack; a worker runs one notebook after another, as `nbdev_test`'s do;
- the docs pages as a reader sees them (`.ci/docs.py`);
- one lesson as a learner meets it, alone in a fresh environment with Colab's packages, or one of its sections alone
  (`.ci/fresh_runtime.py`, which makes that environment and the Flowers102 mirror first).
On a 2-core machine two torch processes with one thread each finish sooner than one after the other, and a third beside
them slows both. So every job takes one of two slots (`--jobs`), torch on one thread in each (`--threads`). The longest
start first, by their latest times in `nbs/results/check_times.jsonl` (a job not in it before all of them): then no slot
waits at the end while the other finishes a long job, as happened when the tests, then the lessons, ran as two queues.
With fewer jobs than slots, each job gets more threads. The exit status is 1 if any job failed.
"""
import argparse, multiprocessing, os, re, shutil, subprocess, sys, tempfile, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
import fresh_runtime as fresh
# The jobs below run in worker processes that find them by this module's name, `check`: a notebook's tests replace the
# worker's `__main__` (IPython's shell runs them there), so a job named by `__main__` would be lost after the first.

ROOT = fresh.ROOT
LOG = ROOT/'nbs'/'results'/'check_times.jsonl'

def notebook_tests(nb, tmp):
    "One notebook's tests, as `nbdev_test` runs them, its temporary files in `tmp`: (passed, seconds, message)"
    from nbdev.config import get_config
    from nbdev.test import test_nb
    cfg, kernels = get_config(), os.environ.pop('JUPYTER_PATH', None)   # (the fresh kernel's spec: not the tests' business)
    os.environ['TMPDIR'] = tempfile.tempdir = str(tmp)
    cwd = os.getcwd(); os.chdir(cfg.nbs_path)
    try: ok, secs = test_nb(nb, skip_flags=cfg.tst_flags.split(), basepath=cfg.config_path)
    finally:
        os.chdir(cwd)
        if kernels: os.environ['JUPYTER_PATH'] = kernels
    return ok, secs, '' if ok else 'its tests failed: the traceback is above'

def docs_check():
    "The docs pages (.ci/docs.py, a process of its own): (passed, seconds, message)"
    t0 = time.time(); r = subprocess.run([sys.executable, ROOT/'.ci'/'docs.py'])
    return r.returncode == 0, time.time() - t0, '' if r.returncode == 0 else f'.ci/docs.py exited with {r.returncode}: see above'

def latest_times():
    "Each job's seconds in its latest line of the log, if there is one"
    import json
    if not LOG.is_file(): return {}
    return {r['job']: r['seconds'] for r in map(json.loads, filter(str.strip, LOG.read_text().split('\n')))}

def log_times(results, slots, threads):
    "Append each job's seconds to the log, from a clean commit only (others could not check out what was timed)"
    from deepbloom.runs import log_run, git_commit
    if (c := git_commit(ROOT)) is None or c.endswith('+dirty'): return print(f'check times: not logged, the checkout has uncommitted changes ({c})')
    for job, ok, secs in results: log_run(dict(job=job, seconds=round(secs, 1), what=f"one job of .ci/check.py, {slots} at a time, torch on {threads} thread{'s' * (threads > 1)} each"), LOG)
    print(f'check times: logged to {LOG.relative_to(ROOT)}')

def queue(words, fresh_only, tmp):
    "The jobs, by name: every one, or those whose names hold one of `words`; with `fresh_only`, the lessons in a fresh runtime that `words` name (all of them if none)"
    from check import notebook_tests, docs_check                  # (by module name: see above)
    jobs = {} if fresh_only else {f'tests {nb.name}': (notebook_tests, nb, tmp) for nb in sorted((ROOT/'nbs').glob('*.ipynb'))}
    if not fresh_only: jobs['docs'] = (docs_check,)
    for path in fresh.lessons(words if fresh_only else []):        # (completed in `main`, once the fresh environment is made)
        jobs[f'fresh {path.stem}'] = (fresh.run_lesson, path)
        if path.stem in fresh.SECTIONS: jobs[f'fresh {path.stem}, its section alone'] = (fresh.run_lesson, path, fresh.SECTIONS[path.stem])
    if words and not fresh_only: jobs = {j: v for j, v in jobs.items() if any(w in j for w in words)}
    return jobs

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('only', nargs='*', help='run only the jobs whose names hold one of these words (with --fresh: the lessons these name)')
    p.add_argument('--fresh', action='store_true', help='only the lessons in a fresh runtime, and their sections alone (`make fresh`)')
    p.add_argument('--reuse-env', action='store_true', help="keep the fresh environment of an earlier check if there is one, with what its lessons installed (faster; not fresh)")
    p.add_argument('--new-base', action='store_true', help="install Colab's packages again into the base environment the fresh runs copy")
    p.add_argument('--jobs', type=int, default=2, help='jobs side by side')
    p.add_argument('--threads', type=int, help="torch's threads in each job (OMP_NUM_THREADS); default: the cores shared among the jobs running")
    p.add_argument('--log', action='store_true', help="append each job's seconds to nbs/results/check_times.jsonl (the order of the next checks): the whole queue only")
    p.add_argument('--timeout', type=int, default=1200, help='seconds one cell of a fresh lesson may run')
    a = p.parse_args()
    if a.log and (a.only or a.fresh): p.error('--log times the whole queue: leave out the words and --fresh')
    t0, tmp = time.time(), Path(tempfile.mkdtemp(prefix='deepbloom-tests-'))   # the tests' temporary files: outside the checkout, removed afterwards
    jobs = queue(a.only, a.fresh, tmp)
    slots = max(1, min(a.jobs, len(jobs)))
    threads = a.threads or max(1, (os.cpu_count() or 1) // slots)
    os.environ['OMP_NUM_THREADS'] = str(threads)                   # the workers' torch (a fresh kernel gets its own setting)
    known = latest_times()
    order = sorted(jobs, key=lambda j: -known.get(j, float('inf')))   # longest first; a job never timed before all
    early = [j for j in order if not j.startswith('fresh')][:slots]    # what the workers start with while the fresh environment is made
    fresh.kernel_spec(fresh.WORK/'venv')                           # (before the workers start: they find the fresh kernel through $JUPYTER_PATH)
    results = []
    with ProcessPoolExecutor(slots, mp_context=multiprocessing.get_context('spawn')) as pool:   # (spawn: a fork would copy the mirror's server thread)
        started = {pool.submit(*jobs[j]): j for j in early}
        if any(j.startswith('fresh') for j in order):
            wheel, venv = fresh.build(not a.reuse_env, a.new_base)
            server, mirror = fresh.serve_mirror()
            weights = fresh.offline_weights()
            made = f"; fresh runtime: {wheel.name}, Colab's packages in {venv.relative_to(ROOT)} ({time.time() - t0:.0f} s)"
        else: server, made = None, ''
        print(f"check: {len(jobs)} job{'s' * (len(jobs) > 1)}, {slots} at a time, torch on {threads} thread{'s' * (threads > 1)} each, the longest first{made}", flush=True)
        for j in (j for j in order if j not in early):
            f, *args = jobs[j]
            if j.startswith('fresh'): args = [args[0], wheel, venv, mirror, weights, threads, a.timeout, *args[1:]]   # the lesson, then where and how it runs, then its section
            started[pool.submit(f, *args)] = j
        for job in as_completed(started):
            name, (ok, secs, msg) = started[job], job.result()
            results.append((name, ok, secs))
            print(f"  {'pass' if ok else 'FAIL'}  {name:44} {secs:6.0f} s", flush=True)
            if not ok: print(re.sub(r'\x1b\[[0-9;]*m', '', msg)[-6000:], flush=True)
    if server: server.shutdown(); server.server_close()
    shutil.rmtree(tmp, ignore_errors=True)
    failed = [n for n, ok, _ in results if not ok]
    kinds = {k: sum(n.startswith(k) for n, *_ in results) for k in ('tests', 'docs', 'fresh')}
    print(f"check: {len(results) - len(failed)} of {len(results)} jobs passed ({kinds['tests']} notebooks' tests, {kinds['docs']} docs check, {kinds['fresh']} lessons or sections "
          f"in a fresh runtime) in {time.time() - t0:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ''), flush=True)
    if a.log and not failed: log_times(results, slots, threads)
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
