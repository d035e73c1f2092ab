"""How long each notebook's tests take, logged: `make timings`.

Runs each notebook's tests as a contributor runs one lesson's (`nbdev_test --path nbs/<notebook>`: a fresh Python, the
imports included, cells flagged `slow`, `gpu`, `download`, `flowers` skipped), one notebook after another, and appends one
line per notebook to nbs/results/test_times.jsonl with `log_run` (lesson 80): its wall-clock seconds, the machine and
the commit. Nothing is logged unless every notebook passed. The run times the lessons quote come from this log, and lesson
97 checks them against its latest lines: after a run that moves them, it names the sentences to update.

    python .ci/test_times.py                      # every notebook
    python .ci/test_times.py 05_evaluate.ipynb    # some of them
"""
import os, subprocess, sys, tempfile, time
from pathlib import Path
from deepbloom.runs import log_run, git_commit

ROOT = Path(__file__).resolve().parent.parent
LOG = ROOT/'nbs'/'results'/'test_times.jsonl'

def main():
    if (c := git_commit(ROOT)) is None or c.endswith('+dirty'):
        sys.exit(f"The checkout has uncommitted changes (commit {c}): commit them first, so the times belong to notebooks and code others can check out.")
    test, times = str(Path(sys.executable).with_name('nbdev_test')), {}
    nbs = [ROOT/'nbs'/n for n in sys.argv[1:]] or sorted((ROOT/'nbs').glob('*.ipynb'))
    if missing := [n.name for n in nbs if not n.is_file()]: sys.exit(f'No such notebook in nbs/: {", ".join(missing)}')
    for nb in nbs:
        t0 = time.time()
        with tempfile.TemporaryDirectory() as tmp:   # the notebook's temporary folders, removed after it
            out = subprocess.run([test, '--path', str(nb.relative_to(ROOT))], cwd=ROOT, capture_output=True, text=True, env={**os.environ, 'TMPDIR': tmp})
        secs = time.time() - t0
        if out.returncode: sys.exit(f'{nb.name}: its tests failed: nothing logged.\n{out.stderr[-3000:]}')
        times[nb.name] = round(secs); print(f'{nb.name}: {secs:.0f} s', flush=True)
    for name, secs in times.items():   # only now: lesson 97, run above, reads this log
        log_run(dict(notebook=name, seconds=secs, what='nbdev_test --path nbs/<notebook>: its tests alone, in a fresh Python'), LOG)
    print(f'logged to {LOG.relative_to(ROOT)}')

if __name__ == '__main__': main()
