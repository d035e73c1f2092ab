#!/usr/bin/env python3
"""The docs pages as a reader sees them, without Quarto (it cannot be installed on the course's machines; the GitHub
workflow builds the real site).

    python .ci/docs.py            # process, render and check every page (the README's test command runs this)
    python .ci/docs.py --keep     # the same, and leave the pages in _proc/_check/ to look at
    python .ci/docs.py --screenshot nbs/images/docs_page.jpg   # and take the screenshot lesson 95 shows

1. nbdev's own processing, the step its docs workflow runs before Quarto (`nbdev_proc_nbs`, less its attempt to install
   Quarto): every notebook into `_proc/`, executing the cells nbdev executes for the docs (imports, exports, `show_doc`).
   A cell that mixes imports with other code fails first: nbdev would execute all of it while building the docs (a `slow`
   cell's training too).
2. Each processed page rendered to HTML with Jupyter's nbconvert, honouring the cell options nbdev leaves for Quarto as
   Quarto does: `echo: false` hides the code, `output: false` the outputs, `include: false` both; option lines are not
   shown; the front matter becomes the title; pandoc's `{...}` attributes after a link are dropped. A sidebar from
   `nbs/sidebar.yml` heads every page, linking each page by the file Quarto would write (`output-file`).
3. Each page opened in headless Chromium (Debian's chromium and chromium-driver, as lesson 98 uses): no `#|` directive and
   no front-matter marker in the text a reader sees, every image loaded, every local link to a page or file that exists,
   every exported symbol's `show_doc` block (its heading) on the page of the notebook that exports it, and the opening
   words of every markdown cell on the page (nbdev turns a notebook's first cell into front matter: text beside the title
   there would be lost).
The checker is first run on a page made to fail (a directive showing, a missing image, a broken link, a missing
`show_doc`, missing text), and must report exactly those.
"""
import argparse, ast, base64, html, json, re, shutil, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS, PROC = ROOT/'nbs', ROOT/'_proc'
OUT = PROC/'_check'

def src(c): return ''.join(c['source']) if isinstance(c['source'], list) else c['source']

def mixed_cells(nb_path):
    "Code cells that import and do more: nbdev executes every cell with an import to build the docs, training and all"
    res = []
    for i, c in enumerate(json.loads(Path(nb_path).read_text())['cells']):
        s = src(c)
        if c['cell_type'] != 'code' or re.search(r'^#\|\s*(export|eval:\s*false)', s, re.M): continue
        try: tree = ast.parse('\n'.join(l for l in s.split('\n') if not l.lstrip().startswith(('%', '!'))))
        except SyntaxError: continue
        kinds = {type(n) for n in tree.body}
        if kinds & {ast.Import, ast.ImportFrom} and kinds - {ast.Import, ast.ImportFrom}: res.append(f'{Path(nb_path).name} cell {i}: {s.strip().splitlines()[-1][:80]}')
    return res

def process():
    "nbdev_proc_nbs without the Quarto install: every notebook into _proc/ (raises on the first cell that fails)"
    from nbdev.serve import proc_nbs
    import nbdev.doclinks
    nbdev.doclinks._build_modidx()
    proc_nbs(n_workers=1, force=True)

OPTION = re.compile(r'^#\|\s*([\w-]+):\s*(.*)$')

def front_matter(cells):
    "The raw front-matter cell's fields (nbdev writes title, description and output-file into it)"
    import yaml
    for c in cells:
        if c['cell_type'] == 'raw' and src(c).lstrip().startswith('---'): return c, yaml.safe_load(src(c).strip().strip('-')) or {}
    return None, {}

def page_name(nb_path):
    "The HTML file Quarto writes for a processed notebook"
    _, fm = front_matter(json.loads(Path(nb_path).read_text())['cells'])
    return fm.get('output-file') or Path(nb_path).with_suffix('.html').name

def quarto_like(nb):
    "The notebook as Quarto would show it: options honoured and hidden, the front matter as title, pandoc attributes dropped"
    import nbformat
    raw, fm = front_matter(nb['cells'])
    cells = []
    for c in nb['cells']:
        if c is raw: continue
        s = src(c)
        if c['cell_type'] == 'code':
            opts = {m.group(1): m.group(2).strip().lower() for l in s.split('\n') if (m := OPTION.match(l))}
            if opts.get('include') == 'false': continue
            c = {**c, 'source': '\n'.join(l for l in s.split('\n') if not l.startswith('#|')).strip('\n')}
            tags = {'remove_input'} if opts.get('echo') == 'false' or not c['source'] else set()
            if opts.get('output') == 'false': tags.add('remove_output')
            c['metadata'] = {**c.get('metadata', {}), 'tags': sorted(tags)}
            for o in c.get('outputs', []):
                if 'text/markdown' in o.get('data', {}): o['data'] = {'text/markdown': re.sub(r'(\]\([^)]*\))\{[^}]*\}', r'\1', src({'source': o['data']['text/markdown']}))}
        cells.append(c)
    head = f"# {fm.get('title', '')}\n\n" + (f"> {fm['description']}\n" if fm.get('description') else '')
    cells.insert(0, {'cell_type': 'markdown', 'id': 'title', 'metadata': {}, 'source': head})
    return nbformat.reads(json.dumps({**nb, 'cells': cells}), as_version=4)   # (lists of lines joined, as nbconvert expects)

def sidebar_html(pages):
    "The sidebar of nbs/sidebar.yml, each entry linked to the page Quarto would write for it"
    names = re.findall(r'^\s*-\s*(\S+\.ipynb)\s*$', (NBS/'sidebar.yml').read_text(), re.M)
    return '<nav class="sidebar">' + ' · '.join(f'<a href="{pages.get(n, n)}">{html.escape(n)}</a>' for n in names) + '</nav>'

def render(proc_nbs, out):
    "Every processed notebook as an HTML page in `out`: {notebook name: page file name}"
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor
    out.mkdir(parents=True, exist_ok=True)
    if (PROC/'images').is_dir(): shutil.copytree(PROC/'images', out/'images', dirs_exist_ok=True)   # what the pages show
    pages = {p.name: page_name(p) for p in proc_nbs}
    ex = HTMLExporter(template_name='lab')
    ex.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'remove_input'}, remove_all_outputs_tags={'remove_output'}), enabled=True)
    ex.register_filter('clean_html', lambda s: s)   # HTML outputs as they are, as Quarto shows them (nbconvert's sanitizer took a sixth of the check)
    side = sidebar_html(pages)
    for p in proc_nbs:
        body, _ = ex.from_notebook_node(quarto_like(json.loads(p.read_text())))
        body = re.sub(r'href="([^"#:]+\.ipynb)(#[^"]*)?"', lambda m: f'href="{pages.get(m.group(1), m.group(1))}{m.group(2) or ""}"', body)   # Quarto links a notebook beside the page by its page
        (out/pages[p.name]).write_text(re.sub(r'(<body[^>]*>)', lambda m: m.group(1) + side, body, count=1))
    return pages

CHECK = """
const text = document.body.innerText, all = document.body.textContent;   // (textContent: the lab template lets the browser skip rendering cells off screen)
const directives = text.split('\\n').filter(l => /^\\s*#\\|/.test(l) || /^(output-file|skip_showdoc|skip_exec):/.test(l.trim()) || l.trim() === '---').map(l => l.trim()).slice(0, 5);
const images = Array.from(document.images).filter(i => !/^https?:/.test(i.getAttribute('src')) && !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src').slice(0, 80));
const links = Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')).filter(h => !/^(https?:|mailto:|#|data:)/.test(h));
const words = (all.match(/[A-Za-z]+/g) || []).join(' ');
const headings = Array.from(document.querySelectorAll('h2, h3, h4')).map(h => h.textContent.replace(/¶$/, '').trim());
return {directives, images, links, headings, words};
"""

def browser():
    "Headless Chromium through Selenium, as lesson 98 drives it"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    o = webdriver.ChromeOptions()
    for f in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--allow-file-access-from-files'): o.add_argument(f)
    o.binary_location = shutil.which('chromium') or shutil.which('chromium-browser') or ''
    return webdriver.Chrome(service=Service(shutil.which('chromedriver')), options=o)

def openings(nb_path):
    "The first words of each markdown cell of a notebook in nbs/, as a reader should find them on its page"
    res = []
    for c in json.loads(Path(nb_path).read_text())['cells'][1:]:          # (the first is the title: the page's front matter)
        line = next((l for l in src(c).split('\n') if l.strip() and not l.lstrip().startswith(('!', '[!', '|', '<', '$'))), '') if c['cell_type'] == 'markdown' else ''
        w = re.findall(r'[A-Za-z]+', re.sub(r'\]\([^)]*\)', ' ', line))[:6]   # (a link's text stays, its target goes)
        if len(w) >= 4: res.append(' '.join(w))
    return res

def page_problems(d, page, exported=(), texts=(), tries=2):
    "What a reader would see wrong on one rendered page (looked at again once before it counts: a page read before Chromium finished building it once lost its later half)"
    d.get(page.as_uri())
    r = d.execute_script(CHECK)
    res = [f'shows a directive or front-matter line: {l!r}' for l in r['directives']]
    res += [f'image does not load: {s}' for s in r['images']]
    res += [f'link to nothing: {h}' for h in r['links'] if not (page.parent/h.split('#')[0]).exists()]
    res += [f'no show_doc block for {n}' for n in exported if n not in r['headings']]
    res += [f'text missing: {t!r}' for t in texts if t not in r['words']][:3]
    return page_problems(d, page, exported, texts, tries - 1) if res and tries > 1 else res

def check_pages(d, pages):
    "{notebook: what a reader would see wrong on its page}, for the pages with a problem"
    return {nb: ps for nb, page in pages.items() if (ps := page_problems(d, OUT/page, exported_names(PROC/nb), openings(NBS/nb)))}

def screenshot(d, page, fname, size=(1100, 1500)):
    "The top of a rendered page, as a JPEG"
    import io
    from PIL import Image
    d.set_window_size(*size); d.get(page.as_uri())
    Image.open(io.BytesIO(d.get_screenshot_as_png())).convert('RGB').save(fname, quality=55)

def exported_names(proc_nb):
    "The names a processed notebook's module exports (from its `default_exp` and the package's __all__), else none"
    import importlib
    m = next((m for c in json.loads((NBS/proc_nb.name).read_text())['cells'] if (m := re.match(r'#\|\s*default_exp\s+(\S+)', src(c)))), None)
    if not m: return []
    mod = importlib.import_module(f'deepbloom.{m.group(1)}')
    return [n for n in mod.__all__ if callable(getattr(mod, n))]   # constants are shown by a comment and an example, not show_doc

def self_test(d):
    "The checker must fail on a page made to fail"
    t = Path(tempfile.mkdtemp())
    (t/'ok.html').write_text('<html><body><h3>there</h3></body></html>')
    (t/'bad.html').write_text('<html><body><pre>#| export\nx = 1</pre><img src="images/none.png"><a href="ok.html">fine</a>'
                              '<a href="gone.html">gone</a><h3>there</h3><p>A reader finds this text.</p></body></html>')
    got = page_problems(d, t/'bad.html', ['there', 'missing'], ['A reader finds this text', 'an introduction a reader needs'])
    want = ["shows a directive or front-matter line: '#| export'", 'image does not load: images/none.png', 'link to nothing: gone.html', 'no show_doc block for missing',
            "text missing: 'an introduction a reader needs'"]
    assert got == want, f'the page checker is broken: {got}'
    shutil.rmtree(t)

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--keep', action='store_true', help='leave the rendered pages in _proc/_check/')
    p.add_argument('--screenshot', metavar='JPG', help="also save a screenshot of lesson 04's rendered page here (lesson 95 shows one)")
    a = p.parse_args()
    nbs = sorted(NBS.glob('*.ipynb'))
    if mixed := [m for nb in nbs for m in mixed_cells(nb)]:
        sys.exit('docs: cells that import and do more (nbdev executes them to build the docs; put imports in a cell of their own):\n  ' + '\n  '.join(mixed))
    process()
    proc = sorted(PROC.glob('*.ipynb'))
    if missing := [nb.name for nb in nbs if not (PROC/nb.name).is_file()]: sys.exit(f'docs: nbdev did not process {missing}')
    shutil.rmtree(OUT, ignore_errors=True)
    pages = render(proc, OUT)
    d = browser()
    try:
        self_test(d)
        if a.screenshot: screenshot(d, OUT/pages['04_transfer.ipynb'], a.screenshot)
        problems = check_pages(d, pages)
        if problems:   # a page has come out of the build incomplete, now and then, and passed on the next build: build every page again, once, and say so
            print('docs: ' + '; '.join(f'{nb} had {len(ps)} problems ({(OUT/pages[nb]).stat().st_size:,} bytes page, {len(json.loads((PROC/nb).read_text())["cells"])} processed cells)'
                                       for nb, ps in problems.items()) + ': building every page again to look once more', flush=True)
            process(); pages = render(sorted(PROC.glob('*.ipynb')), OUT)
            problems = check_pages(d, pages)
    finally: d.quit()
    if not a.keep: shutil.rmtree(OUT, ignore_errors=True)
    if problems: sys.exit('docs: what a reader would see wrong:\n' + '\n'.join(f'  {nb}: {"; ".join(ps)}' for nb, ps in problems.items()))
    print(f'docs: {len(pages)} pages processed by nbdev, rendered and opened in Chromium: no directive showing, every image and local link resolves, every exported symbol documented on its page')

if __name__ == '__main__': main()
