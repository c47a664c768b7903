"""A bundle of ours (``harness.images.host_bundle``: wheels and a source tarball) made into a
virtual environment on a machine, from those files alone: the machine needs Python and its
``venv`` module, never an index or a network."""

from pathlib import Path

from harness.remote.base import Remote


async def install_bundle(
    remote: Remote, bundle: Path, where: str, requirements: tuple[str, ...]
) -> None:
    """Copy ``bundle`` to ``where`` on the machine, make ``where/venv`` with ``requirements``
    from its wheels and unpack its sources into ``where/src`` (for ``PYTHONPATH``); the copied
    wheels and tarball are removed after."""
    await remote.check(["mkdir", "-p", f"{where}/wheels"])
    for wheel in sorted(bundle.glob("wheels/*.whl")):
        await remote.write(f"{where}/wheels/{wheel.name}", wheel.read_bytes())
    await remote.write(f"{where}/src.tar", (bundle / "src.tar").read_bytes())
    await remote.check(
        [
            "sh",
            "-c",
            f"cd {where} && python3 -m venv venv && venv/bin/pip install -q --no-index "
            f"--find-links wheels {' '.join(requirements)} && mkdir -p src && "
            "tar -xf src.tar -C src && rm -rf wheels src.tar",
        ],
        timeout=600.0,
    )
