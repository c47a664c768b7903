"""MkDocs hook: the committed benchmark figures become files of the site.

``make bench`` and ``make bench-compare`` write their figures under ``results/reference/``,
beside the JSON they were drawn from; the site's pages show them as ``reference/...``. Adding
them here, rather than copying them into ``docs/``, keeps one copy of each figure, so a page
can never show a figure older than the numbers next to it. A figure that is missing is left
out, and the page's link to it then fails the strict build.
"""

from pathlib import Path

from mkdocs.structure.files import File

REFERENCE = Path(__file__).resolve().parent.parent / "results" / "reference"


def on_files(files, config):
    """Add every PNG under results/reference/ as ``reference/<its path there>``."""
    for png in sorted(REFERENCE.rglob("*.png")):
        uri = "reference/" + png.relative_to(REFERENCE).as_posix()
        files.append(File.generated(config, uri, abs_src_path=str(png)))
    return files
