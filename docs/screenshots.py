"""Regenerate the screenshots of ``walrus-harness serve`` that the documentation shows.

    .venv/bin/python docs/screenshots.py            # or: make screenshots

The pictures are of real runs, made here rather than drawn: a short ``--compat walrus``
campaign (partitions, then kills, two seeds each; Walrus 0.3's unfenced rollover, so its runs
come out INVALID with anomalies to show) and one run of the default node under partitions
(VALID), in a fresh store under /tmp. Then ``serve`` over that store and Debian's headless
chromium (the one the browser tests use, from ``make install``) photograph the index, the first
invalid run's page and the campaign's heat map into docs/images/. The runs' timing is real, so
the pictures differ in detail from one regeneration to the next; what they show does not.
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"

CAMPAIGN = [
    "campaign",
    "--compat",
    "walrus",
    "--nemesis-matrix",
    "partition;kill",
    "--seeds",
    "2",
    "--time-limit",
    "8",
    "--nemesis-interval",
    "3",
    "--max-segment-entries",
    "5",
]
VALID_RUN = [
    "test",
    "--nodes",
    "3",
    "--time-limit",
    "10",
    "--nemesis",
    "partition",
    "--nemesis-interval",
    "3",
    "--seed",
    "1",
    "--name",
    "partition-default",
]


def harness(*args: str) -> None:
    """Run ``walrus-harness`` on this checkout; a verdict (exit 0, 1 or 2) is not a failure."""
    proc = subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=ROOT)
    if proc.returncode not in (0, 1, 2):
        raise SystemExit(f"walrus-harness {args[0]} failed with exit status {proc.returncode}")


def make_store(store: Path) -> None:
    """The campaign and the valid run the pictures show."""
    harness(*CAMPAIGN, "--store", str(store))
    harness(*VALID_RUN, "--store", str(store))


def photograph(store: Path, out: Path) -> list[Path]:
    """Serve ``store`` and save the index, an invalid run and the campaign as PNGs in ``out``."""
    from harness.serve.browser import chromium
    from harness.serve.pages import url
    from harness.serve.store import Store

    runs, campaigns = Store(store).scan()
    invalid = next((r for r in runs if r.verdict == "INVALID"), None)
    if invalid is None or not campaigns:
        raise SystemExit(f"{store}: no invalid run or no campaign to photograph")
    serve = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "serve", "--store", str(store), "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    browser = None
    try:
        line = serve.stdout.readline()
        if "serving" not in line:
            raise SystemExit(f"serve did not start: {line!r}")
        base = line.split(" at ", 1)[1].split("/ ", 1)[0]
        browser = chromium(width=1280, height=860)
        shots = {
            "serve-index.png": "/",
            "serve-run.png": url("run", invalid.rel) + "/",
            "serve-campaign.png": url("campaign", campaigns[0].rel) + "/",
        }
        written = []
        for name, path in shots.items():
            browser.get(base + path)
            time.sleep(0.5)  # past the load event: let the page's own script settle
            target = out / name
            browser.save_screenshot(str(target))
            written.append(target)
        return written
    finally:
        if browser is not None:
            browser.quit()
        serve.terminate()
        serve.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--store", type=Path, help="photograph this store instead of making a fresh one"
    )
    parser.add_argument("--out", type=Path, default=IMAGES, help="where the PNGs go")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.store is None:
        args.store = Path(tempfile.mkdtemp(prefix="walrus-screenshots-"))
        make_store(args.store)
    args.out.mkdir(parents=True, exist_ok=True)
    for path in photograph(args.store, args.out):
        print(
            f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
            f"{path.stat().st_size // 1024} KiB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
