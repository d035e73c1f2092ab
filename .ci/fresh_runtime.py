"""The fresh-runtime check: every lesson, run the way a learner meets it in a fresh Colab or Jupyter runtime.
Its steps; `.ci/check.py` runs them, in the README's test command and alone:

    make fresh                                   # every lesson (.ci/check.py --fresh)
    make fresh LESSONS="02_scratch_cnn 05"       # some lessons: file names or their number prefixes

1. Builds the deepbloom wheel from this checkout.
2. Makes one clean virtual environment (build/fresh/venv) holding only what a fresh Colab runtime already has before a
   lesson's install cell runs: `COLAB` below. Colab has more (fastai and timm among them); leaving them out makes the
   check stricter, since each lesson's own install cell must then bring everything the lesson imports.
   Installing those packages takes minutes, so they are installed once per machine, into a base environment that nothing
   installs into afterwards (`BASE`, outside the checkout, shared by every clone; remade when `COLAB` changes or its
   packages no longer match what was installed, or with `--new-base`). Each check starts from a copy of the base made of
   hard links, which takes seconds: pip and Python only ever add, replace or remove whole files, so what the lessons
   install changes the copy and leaves the base as it was.
3. Serves a small Flowers102 from 127.0.0.1 as a mirror: lesson 01's `make_synthetic_flowers102` (102 species, 2 training,
   2 validation and 2 test photos each), packed by `make_mirror`, its checksums in the mirror setting.
4. Runs each lesson alone: the notebook copied into an empty folder, an empty HOME, no DEEPBLOOM_DATA and no ../shared,
   every cell executed in a Jupyter kernel of that environment — the install cell first (installing the local wheel where
   it says GitHub), then every cell, `slow`, `gpu` and `download` ones included — with DEEPBLOOM_QUICK=1 (lesson 01's
   `QUICK`: the Flowers102 sections train for an epoch or two on small images) and DEEPBLOOM_FLOWERS_MIRROR set.
   Lesson 04's other backbones find random weights for resnet18 in DEEPBLOOM_WEIGHTS, as an offline learner's would be;
   nothing is downloaded from the internet.
5. Runs each section of `SECTIONS` alone too, as a learner does who switches to a GPU runtime and runs the install cell,
   then the section from its heading: its cells only (on this CPU, in QUICK mode).
6. `.ci/check.py` runs two lessons at a time, each kernel's torch on its share of the cores (one each on the course's
   2-core machines), the install cells one at a time (`LessonClient`). On 2 cores, two kernels whose torch takes both
   cores slow each other far more than twice; two with one thread each finish sooner than one after the other with two.
Executed notebooks are kept in $TMPDIR/deepbloom-fresh/<lesson>/ to look at.
"""
import fcntl, json, os, shutil, subprocess, sys, tempfile, threading, time
from functools import partial
from http.server import ThreadingHTTPServer, SimpleHTTPRequestHandler
from pathlib import Path
import nbformat
from traitlets.config import Config
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT/'build'/'fresh'
BASE = Path(os.environ.get('XDG_CACHE_HOME') or Path.home()/'.cache')/'deepbloom'/f'colab-py{sys.version_info[0]}.{sys.version_info[1]}'   # Colab's packages, installed once per machine
RUN = Path(tempfile.gettempdir())/'deepbloom-fresh'  # where lessons run: outside the checkout, as in Colab (nbdev 3 refuses a settings.ini above it)
COLAB = ['torch==2.14.1', 'torchvision==0.29.1', 'numpy', 'pandas', 'scipy', 'scikit-learn', 'matplotlib', 'pillow', 'requests',
         'pyyaml', 'ipykernel', 'ipywidgets']  # preinstalled in Colab; torch pinned to the release this machine has on disk
GITHUB = 'git+https://github.com/deepbloom/deepbloom'  # what the install cells install from
DROP = ('DEEPBLOOM_', 'VIRTUAL_ENV', 'PYTHON', 'JUPYTER', 'IPYTHON', 'MPL', 'HF_', 'HUGGINGFACE', 'TORCH_HOME', 'XDG_CACHE_HOME',
        'XDG_DATA_HOME', 'XDG_CONFIG_HOME', 'FASTAI', 'MLFLOW', 'CUDA_VISIBLE', 'IN_TEST')  # nothing of this machine's set-up reaches a lesson

SECTIONS = {'04_transfer': '## On a GPU'}  # sections a learner runs alone, from their heading: lesson -> the heading's start

def run(*args, **kw): subprocess.run([str(a) for a in args], check=True, **kw)

def lessons(wanted):
    "The lesson notebooks in course order (not the contributors' page), or those named in `wanted`"
    nbs = sorted(p for p in (ROOT/'nbs').glob('[0-9][0-9]*_*.ipynb') if p.name[:2] < '95')   # 95 and up: contributors' pages, not lessons
    if not wanted: return nbs
    picked = [p for p in nbs if any(p.stem == w or p.stem.startswith(w + '_') or p.name == w for w in wanted)]
    if len(picked) < len(wanted): sys.exit(f"fresh_runtime: no lesson matches some of {wanted}; lessons: {', '.join(p.stem for p in nbs)}")
    return picked

def _freeze(venv): return subprocess.run([venv/'bin'/'python', '-m', 'pip', 'freeze', '--all'], capture_output=True, text=True).stdout

def colab_base(new=False):
    "The base environment with Colab's packages alone, made once per machine: remade if `new`, if `COLAB` changed, or if its packages changed since"
    made = BASE/'.colab'                                     # what was asked for, then what pip installed
    if not new and made.is_file() and made.read_text() == ' '.join(COLAB) + '\n' + _freeze(BASE): return BASE
    shutil.rmtree(BASE, ignore_errors=True)
    run(sys.executable, '-m', 'venv', BASE)
    run(BASE/'bin'/'python', '-m', 'pip', 'install', '-q', *COLAB)
    made.write_text(' '.join(COLAB) + '\n' + _freeze(BASE))
    return BASE

def fresh_copy(base, venv):
    "A copy of `base` at `venv`, made of hard links where both are on one file system, its scripts rewritten to run the copy's Python (a new file each, so the base's stays as it was)"
    shutil.rmtree(venv, ignore_errors=True); venv.parent.mkdir(parents=True, exist_ok=True)
    run('cp', '-al' if base.stat().st_dev == venv.parent.stat().st_dev else '-a', base, venv)   # (hard links only within one file system)
    for f in (venv/'bin').iterdir():
        if f.is_symlink() or not f.is_file() or not (text := f.read_bytes()).startswith(f'#!{base}/'.encode()): continue
        new = f.with_name(f.name + '.new'); new.write_bytes(text.replace(str(base).encode(), str(venv).encode(), 1))
        new.chmod(f.stat().st_mode); new.replace(f)
    return venv

def build(fresh_env, new_base=False):
    "The wheel, and the environment with Colab's packages: a fresh copy of the base, unless `fresh_env` is False and an earlier check's is there"
    dist = WORK/'dist'; shutil.rmtree(dist, ignore_errors=True)
    run(sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', dist, ROOT)
    wheel, venv = next(dist.glob('deepbloom-*.whl')), WORK/'venv'
    if fresh_env or new_base or not (venv/'.colab').is_file(): fresh_copy(colab_base(new_base), venv)
    else: run(venv/'bin'/'python', '-m', 'pip', 'uninstall', '-q', '-y', 'deepbloom')   # an earlier check's wheel: the install cells must install this one
    return wheel, venv

def serve_mirror():
    "A small Flowers102 served from 127.0.0.1: (server, mirror setting)"
    from deepbloom.data import make_synthetic_flowers102, make_mirror
    data, served = WORK/'flowers-102', WORK/'mirror'
    for d in (data, served): shutil.rmtree(d, ignore_errors=True)
    make_synthetic_flowers102(data, per_class=(2, 2, 2), size=128)
    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    server = ThreadingHTTPServer(('127.0.0.1', 0), partial(Quiet, directory=str(served)))
    setting = make_mirror(data, served, f'http://127.0.0.1:{server.server_port}/')
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, setting

def offline_weights():
    "A weights folder for the backbones lesson 04 would download (random weights: the check tests the code, not the numbers)"
    import torch, torchvision
    d = WORK/'weights'; d.mkdir(parents=True, exist_ok=True)
    if not (d/'resnet18.pth').is_file(): torch.save(torchvision.models.resnet18().state_dict(), d/'resnet18.pth')
    return d

def kernel_env(venv, home, mirror, weights, threads):
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROP)}
    path = [p for p in env.get('PATH', '').split(os.pathsep) if not p.startswith(str(ROOT))]
    return {**env, 'HOME': str(home), 'PATH': os.pathsep.join([str(venv/'bin'), *path]), 'DEEPBLOOM_QUICK': '1',
            'DEEPBLOOM_FLOWERS_MIRROR': mirror, 'DEEPBLOOM_WEIGHTS': str(weights),
            'OMP_NUM_THREADS': str(threads)}

def install_cell(nb, wheel, name):
    "The lesson's install cell, installing the local wheel: its index"
    for i, c in enumerate(nb.cells):
        if c.cell_type == 'code' and '%pip install' in c.source:
            if GITHUB not in c.source: sys.exit(f"fresh_runtime: {name}'s install cell does not install {GITHUB}")
            c.source = c.source.replace(GITHUB, wheel.as_uri()); return i
    sys.exit(f"fresh_runtime: {name} has no install cell (%pip install ...)")

def section_alone(nb, install, heading, name):
    "Keep only the install cell (index `install`) and the cells from the markdown cell starting with `heading` to the next `## `"
    start = next((i for i, c in enumerate(nb.cells) if c.cell_type == 'markdown' and c.source.startswith(heading)), None)
    if start is None: sys.exit(f"fresh_runtime: {name} has no section {heading!r}")
    end = next((i for i in range(start + 1, len(nb.cells)) if nb.cells[i].cell_type == 'markdown' and nb.cells[i].source.startswith('## ')), len(nb.cells))
    nb.cells = [nb.cells[install], *nb.cells[start:end]]

class LessonClient(NotebookClient):
    "A notebook client that runs the install cell (index `install`) holding a lock: lessons side by side install one at a time"
    def __init__(self, nb, install, **kw): super().__init__(nb, **kw); self.install = install
    async def async_execute_cell(self, cell, cell_index, *args, **kw):
        if cell_index != self.install: return await super().async_execute_cell(cell, cell_index, *args, **kw)
        with open(WORK/'install.lock', 'w') as lock:          # (closing the file releases the lock)
            fcntl.flock(lock, fcntl.LOCK_EX)
            return await super().async_execute_cell(cell, cell_index, *args, **kw)

def kernel_spec(venv):
    "The fresh environment's kernel spec, where the driver finds it"
    kernels = WORK/'kernels'/'deepbloom-fresh'; kernels.mkdir(parents=True, exist_ok=True)
    (kernels/'kernel.json').write_text(json.dumps(dict(argv=[str(venv/'bin'/'python'), '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
                                                       display_name='fresh runtime', language='python')))
    os.environ['JUPYTER_PATH'] = str(WORK)        # kernels/deepbloom-fresh

def run_lesson(path, wheel, venv, mirror, weights, threads, timeout, heading=None):
    "Run one lesson alone in the fresh environment, or only its section from `heading` on: (passed, seconds, message)"
    name = path.stem + ('-section' if heading else '')
    here = RUN/name
    shutil.rmtree(here, ignore_errors=True)
    (here/'home').mkdir(parents=True); (here/'lesson').mkdir()
    shutil.copy(path, here/'lesson'/path.name)
    nb = nbformat.read(here/'lesson'/path.name, as_version=4)
    install = install_cell(nb, wheel, name)
    if heading: section_alone(nb, install, heading, name)
    ipc = Config(KernelManager=dict(transport='ipc', ip=str(here/'kernel')))   # local sockets (here/kernel-<n>): nothing on a TCP port, and no warning about one
    client = LessonClient(nb, install, kernel_name='deepbloom-fresh', config=ipc, timeout=timeout, allow_errors=False, record_timing=True)
    t0, msg = time.time(), ''
    (here/'tmp').mkdir()                          # the lesson's temporary files, removed when it is done (a runtime's /tmp goes with it)
    try: client.execute(cwd=str(here/'lesson'), env={**kernel_env(venv, here/'home', mirror, weights, threads), 'TMPDIR': str(here/'tmp')})
    except CellExecutionError as e: msg = str(e)
    except Exception as e: msg = f'{type(e).__name__}: {e}'
    finally: shutil.rmtree(here/'tmp', ignore_errors=True)
    nbformat.write(nb, here/f'{name}.executed.ipynb')
    return not msg, time.time() - t0, msg
