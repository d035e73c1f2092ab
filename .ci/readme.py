"""README.md from nbs/index.ipynb, as plain markdown GitHub shows cleanly.

Markdown cells as they are (links to a notebook or image beside index.ipynb pointed into nbs/); code cells as ```python blocks followed by their outputs (text in ``` blocks, markdown
outputs such as `md_table`'s as they are). A cell marked `#| echo: false` shows only its output; warnings on stderr
are left out; nothing is rendered as HTML.

    python .ci/readme.py            # print the README
    python .ci/readme.py --check    # fail if README.md is not what this prints, or holds HTML or a machine path
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HTML = re.compile(r'</?(table|thead|tbody|tr|td|th|style|div|span|p|br|img)\b', re.I)
MACHINE = re.compile(r'(/work/|/home/|/tmp/|/Users/|site-packages|\.\./shared/|\\\\Users\\\\)')

def text(x): return ''.join(x) if isinstance(x, list) else x

def outputs(cell):
    for o in cell.get('outputs', []):
        if o['output_type'] == 'stream':
            if o.get('name') == 'stdout' and text(o['text']).strip(): yield '```\n' + text(o['text']).rstrip('\n') + '\n```'
        elif o['output_type'] in ('execute_result', 'display_data'):
            d = o.get('data', {})
            if 'text/markdown' in d: yield text(d['text/markdown']).strip('\n')
            elif 'text/plain' in d: yield '```\n' + text(d['text/plain']).rstrip('\n') + '\n```'
        elif o['output_type'] == 'error': raise SystemExit(f"index.ipynb holds an error output ({o.get('ename')}): run it again before building the README.")

def readme(nb=ROOT/'nbs'/'index.ipynb') -> str:
    parts = []
    for c in json.loads(Path(nb).read_text())['cells']:
        src = text(c['source'])
        if c['cell_type'] == 'markdown': parts.append(re.sub(r'\]\((\w+\.ipynb)\)', r'](nbs/\1)', src.strip('\n')).replace('](images/', '](nbs/images/')); continue   # images and notebooks live in nbs/
        if c['cell_type'] != 'code': continue
        code = '\n'.join(l for l in src.split('\n') if not l.startswith('#|')).strip('\n')
        if code and not re.search(r'^#\|\s*echo:\s*false', src, re.M): parts.append('```python\n' + code + '\n```')
        parts.extend(outputs(c))
    return '\n\n'.join(p for p in parts if p) + '\n'

def check(text_, path=ROOT/'README.md'):
    "The problems with README.md: not rebuilt from the notebook, HTML in it, a path of the machine it was built on"
    have = path.read_text() if path.is_file() else ''
    problems = [] if have == text_ else ['README.md is not what `make readme` builds from nbs/index.ipynb: run `make readme`']
    problems += [f'README.md line {i}: HTML ({m.group(0)}...)' for i, l in enumerate(have.splitlines(), 1) if (m := HTML.search(l))][:5]
    problems += [f'README.md line {i}: a machine path ({m.group(0)})' for i, l in enumerate(have.splitlines(), 1) if (m := MACHINE.search(l))][:5]
    problems += [f'README.md shows {m.group(1)}, which is not in the repository' for m in re.finditer(r'!\[[^\]]*\]\(([^)\s:]+)\)', have) if not (ROOT/m.group(1)).is_file()]   # (not web addresses)
    return problems

if __name__ == '__main__':
    out = readme()
    if '--check' not in sys.argv: sys.stdout.write(out); sys.exit(0)
    if problems := check(out): print('\n'.join(problems), file=sys.stderr); sys.exit(1)
    print('README.md: rebuilt from nbs/index.ipynb, plain markdown, no machine paths')
