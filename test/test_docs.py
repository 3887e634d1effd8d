"""The README is the front door: one screenful per question, every docs page linked, no dead link,
and its parameter table says what the params file says."""

from pathlib import Path
import re

import yaml

from mono_depth_ros.ros.params import load_defaults

LINK = re.compile(r'\[[^\]]*\]\(([^)\s]+)\)')


def anchor(heading: str) -> str:
    """The anchor GitHub gives a markdown heading."""
    text = re.sub(r'[^\w\- ]', '', heading.strip().lower().replace('`', ''))
    return text.replace(' ', '-')


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings (outside code blocks)."""
    found, fenced = set(), False
    for line in page.read_text().splitlines():
        fenced ^= line.startswith('```')
        if not fenced and line.startswith('#'):
            found.add(anchor(line.lstrip('#')))
    return found


def pages(repo_root: Path) -> list[Path]:
    """The README and every page of docs/."""
    return [repo_root / 'README.md', *sorted((repo_root / 'docs').glob('*.md'))]


def test_the_readme_is_short_and_links_every_docs_page(repo_root):
    readme = (repo_root / 'README.md').read_text()
    assert len(readme.splitlines()) <= 250
    linked = {target.split('#')[0] for target in LINK.findall(readme)}
    for page in sorted((repo_root / 'docs').glob('*.md')):
        assert f'docs/{page.name}' in linked, f'README does not link docs/{page.name}'
    picture = repo_root / 'docs' / 'images' / 'demo.png'
    assert 'docs/images/demo.png' in readme and 0 < picture.stat().st_size <= 300 * 1024


def test_every_relative_link_and_anchor_resolves(repo_root):
    dead = []
    for page in pages(repo_root):
        for target in LINK.findall(page.read_text()):
            if re.match(r'[a-z]+://', target):
                continue
            path, _, fragment = target.partition('#')
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                dead.append(f'{page.name}: {target}')
            elif fragment and resolved.suffix == '.md' and fragment not in anchors(resolved):
                dead.append(f'{page.name}: {target} (no such heading)')
    assert not dead, dead


def test_the_readme_parameter_table_gives_the_params_file_defaults(repo_root):
    readme = (repo_root / 'README.md').read_text()
    section = readme.split('## The parameters people change most', 1)[1].split('\n## ', 1)[0]
    rows = re.findall(r'^\| (`[^|]+`) \| `([^`]*)` \|', section, re.M)
    defaults = load_defaults()
    assert len(rows) >= 8
    for names, shown in rows:
        for name in re.findall(r'`(\w+)`', names):
            assert defaults[name] == yaml.safe_load(shown), f'{name}: README says {shown}'
