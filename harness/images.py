"""Container images for the Docker backend, built here without any registry.

- **Base**: a minimal Debian root (python3, python3-venv, iptables, iproute2, procps,
  libfaketime) made with ``mmdebstrap`` from the Debian mirror this machine's apt uses, then
  ``docker import``-ed. ``--base-image`` names any image with Python >= 3.11, iptables and
  iproute2 instead.
- **Node**: the node's dependencies installed from a wheelhouse built on the host (``pip
  wheel``, which downloads wheels or builds them from sources) and the ``walrus`` package's
  sources, so the image build needs no network; numba's kernels are compiled into the image.
- **Binary**: a foreign system's node binary built on the host (``walrus-rs``), copied onto the
  base.
- **Packaged**: a foreign system Debian packages (``rabbitmq``): the base with its packages,
  made the same way as the base (image builds here have no network).

Each image is tagged by a hash of what went into it and rebuilt only when that changes. Every
object the harness makes carries the label ``walrus-harness``; ``clean`` removes them all.
"""

import hashlib
import importlib.metadata
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.tools import require

if TYPE_CHECKING:
    from docker import DockerClient

LABEL = "walrus-harness"
SUITE = "bookworm"
BASE_PACKAGES = (
    "python3",
    "python3-venv",
    "iptables",
    "iproute2",
    "procps",
    "ca-certificates",
    "libfaketime",
)
NODE_REQUIREMENTS = ("trio", "pysyncobj", "numba", "numpy", "cryptography")


class DockerUnavailable(RuntimeError):
    """No Docker engine answers; the message says how to fix it."""


class ImageBuildError(RuntimeError):
    """An image could not be built; the message names the step."""


def engine() -> "DockerClient":
    """A docker-py client for the engine, or DockerUnavailable with the fix."""
    import docker
    from docker.errors import DockerException

    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except DockerException as exc:
        raise DockerUnavailable(
            f"no Docker engine answers ({exc}). Start it (e.g. `systemctl start docker` or "
            "`dockerd &`), or point DOCKER_HOST at one; the local backend needs no Docker."
        ) from None
    return client


def project_root() -> Path:
    """The checkout the harness runs from (the node image is built from its sources)."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "pyproject.toml").exists():
        raise ImageBuildError(f"no pyproject.toml above {__file__}: build images from a checkout")
    return root


def apt_mirror() -> str:
    """The Debian mirror this machine's apt is configured with."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        text = path.read_text()
        for block in text.split("\n\n"):
            if re.search(rf"^Suites:.*\b{SUITE}\b", block, re.M) and "security" not in block:
                match = re.search(r"^URIs:\s*(\S+)", block, re.M)
                if match:
                    return match.group(1)
    listing = Path("/etc/apt/sources.list")
    if listing.exists():
        for line in listing.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    return "http://deb.debian.org/debian"


def _digest(*parts: object) -> str:
    return hashlib.sha256("\0".join(map(str, parts)).encode()).hexdigest()[:16]


def _exists(client, tag: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(tag)
        return True
    except ImageNotFound:
        return False


@dataclass
class Built:
    """An image and how it came about."""

    tag: str
    seconds: float | None
    size_mb: float


def base_tag(packages: tuple[str, ...] = ()) -> str:
    """The tag of the Debian base image these inputs make (with ``packages`` added: an image
    of its own, named for the first)."""
    name = f"walrus-{packages[0]}" if packages else "walrus-base"
    digest = _digest(SUITE, BASE_PACKAGES + packages, apt_mirror(), platform.machine())
    return f"{name}:{digest}"


def preflight(base: str | None = None):
    """An engine client once the node image can be had (DockerUnavailable or ToolMissing, with
    the fix, if not), before anything is made."""
    client = engine()
    if base is None and not _exists(client, base_tag()):
        require("mmdebstrap")
    return client


def base_image(client, log=print, packages: tuple[str, ...] = ()) -> Built:
    """The Debian base image, with ``packages`` added if any, made with mmdebstrap and imported
    (reused if it exists)."""
    mirror = apt_mirror()
    tag = base_tag(packages)
    if _exists(client, tag):
        return Built(tag, None, client.images.get(tag).attrs["Size"] / 1e6)
    mmdebstrap = require("mmdebstrap")
    log(f"building {tag}: mmdebstrap {SUITE} from {mirror}")
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / "root.tar"
        cmd = [
            mmdebstrap,
            "--variant=minbase",
            f"--include={','.join(BASE_PACKAGES + packages)}",
            "--quiet",
            SUITE,
            str(tarball),
            mirror,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise ImageBuildError(f"mmdebstrap failed: {done.stderr.strip()[-800:]}")
        repository, version = tag.split(":")
        with open(tarball, "rb") as f:
            client.api.import_image_from_data(
                f,
                repository=repository,
                tag=version,
                changes=[f"LABEL {LABEL}=base", 'CMD ["bash"]'],
            )
    return Built(tag, time.monotonic() - started, client.images.get(tag).attrs["Size"] / 1e6)


def packaged_image(client, base: str | None, package: str, log=print) -> str:
    """The tag of our Debian base with Debian's ``package`` added, made with mmdebstrap as the
    base is (image builds here have no network); ValueError if ``base`` names another image."""
    if base is not None:
        raise ValueError(
            f"the node image of {package} is our Debian base with its package, made with "
            "mmdebstrap: --base-image does not apply"
        )
    return base_image(client, log, (package,)).tag


LOSEFS_REQUIREMENTS = ("trio", "pyfuse3")
"""What losefs imports (``pyfuse3`` is built against libfuse3 by ``make install``)."""


def wheelhouse(
    directory: Path, log=print, requirements: tuple[str, ...] = NODE_REQUIREMENTS
) -> list[Path]:
    """``requirements`` (the node's dependencies unless told), pinned to what the host runs, as
    wheels."""
    directory.mkdir(parents=True, exist_ok=True)
    pins = [f"{name}=={importlib.metadata.version(name)}" for name in requirements]
    log(f"wheelhouse: {' '.join(pins)}")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "--disable-pip-version-check",
        "-q",
        "wheel",
        "-w",
        str(directory),
        *pins,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise ImageBuildError(f"pip wheel {' '.join(pins)} failed: {done.stderr.strip()[-800:]}")
    return sorted(directory.glob("*.whl"))


def host_bundle(
    log=print, package: str = "walrus", requirements: tuple[str, ...] = NODE_REQUIREMENTS
) -> Path:
    """What a host of the SSH backend installs one of our packages from (the node unless told;
    losefs for power loss): its dependencies as wheels (``wheels/``, pinned to what runs here)
    and its sources (``src.tar``), made once per content in the harness's cache; its directory."""
    import os
    import tarfile

    pins = [f"{name}=={importlib.metadata.version(name)}" for name in requirements]
    root = project_root()
    sources = sorted(
        p
        for p in (root / package).rglob("*")
        if p.is_file() and p.suffix != ".pyc" and "__pycache__" not in p.parts
    )
    content = _digest(*pins, *(f"{p.relative_to(root)}:{_file_digest(p)}" for p in sources))
    cache = Path(os.environ.get("WALRUS_HARNESS_CACHE", Path.home() / ".cache/walrus-harness"))
    out = cache / f"host-bundle-{package}-{content}"
    if (out / "done").exists():
        return out
    wheelhouse(out / "wheels", log, requirements)
    with tarfile.open(out / "src.tar", "w") as tar:
        for path in sources:
            tar.add(path, arcname=str(path.relative_to(root)))
    (out / "done").touch()
    return out


DOCKERFILE = """\
FROM {base}
COPY wheels /wheels
RUN python3 -m venv /opt/walrus \\
 && /opt/walrus/bin/pip install --no-cache-dir --no-index --find-links /wheels {requirements} \\
 && rm -rf /wheels
COPY src /opt/walrus/src
ENV PYTHONPATH=/opt/walrus/src WALRUS_NUMBA_CACHE=/opt/walrus/numba-cache
RUN /opt/walrus/bin/python -c "from walrus import codec; codec.warm_up()"
ENTRYPOINT ["/opt/walrus/bin/python", "-m", "walrus"]
"""


def node_image(client, base: str | None = None, log=print) -> tuple[Built, Built | None]:
    """The node image (and the base it was built on, if this call made or found it)."""
    base_built = None
    if base is None:
        base_built = base_image(client, log)
        base = base_built.tag
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        wheels = wheelhouse(context / "wheels", log)
        shutil.copytree(
            project_root() / "walrus",
            context / "src" / "walrus",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        sources = sorted((context / "src").rglob("*.py"))
        dockerfile = DOCKERFILE.format(base=base, requirements=" ".join(NODE_REQUIREMENTS))
        content = _digest(
            base,
            dockerfile,
            *(f"{w.name}:{_file_digest(w)}" for w in wheels),
            *(f"{p.relative_to(context)}:{_file_digest(p)}" for p in sources),
        )
        (context / "Dockerfile").write_text(dockerfile)
        return _build(client, context, f"walrus-node:{content}", "node", log), base_built


def _build(client, context: Path, tag: str, kind: str, log) -> Built:
    """Build the image in ``context`` (its Dockerfile there) as ``tag`` unless it exists, with
    the network off."""
    if _exists(client, tag):
        return Built(tag, None, client.images.get(tag).attrs["Size"] / 1e6)
    log(f"building {tag}")
    started = time.monotonic()
    from docker.errors import BuildError

    try:
        client.images.build(
            path=str(context),
            tag=tag,
            rm=True,
            network_mode="none",
            labels={LABEL: kind, f"{LABEL}.content": tag.partition(":")[2]},
        )
    except BuildError as exc:
        tail = "".join(str(c.get("stream", "")) for c in exc.build_log)[-1500:]
        raise ImageBuildError(f"the {kind} image did not build: {exc.msg}\n{tail}") from None
    return Built(tag, time.monotonic() - started, client.images.get(tag).attrs["Size"] / 1e6)


BINARY_DOCKERFILE = """\
FROM {base}
COPY node /usr/local/bin/{name}
ENTRYPOINT ["/usr/local/bin/{name}"]
"""


def binary_image(client, base: str | None, binary: Path, inside: str, log=print) -> Built:
    """An image that runs ``binary`` (built on this host, so the base's C library must be at
    least as new as the host's) at ``inside``, on our Debian base unless ``base`` names another."""
    if base is None:
        base = base_image(client, log).tag
    with tempfile.TemporaryDirectory() as tmp:
        context = Path(tmp)
        shutil.copy2(binary, context / "node")
        dockerfile = BINARY_DOCKERFILE.format(base=base, name=Path(inside).name)
        (context / "Dockerfile").write_text(dockerfile)
        content = _digest(base, dockerfile, _file_digest(context / "node"))
        return _build(client, context, f"walrus-{Path(inside).name}:{content}", "binary", log)


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def clean(client, log=print) -> dict[str, int]:
    """Remove every container, network and image labelled by the harness."""
    removed = {"containers": 0, "networks": 0, "images": 0}
    for container in client.containers.list(all=True, filters={"label": LABEL}):
        container.remove(force=True)
        removed["containers"] += 1
    for network in client.networks.list(filters={"label": LABEL}):
        network.remove()
        removed["networks"] += 1
    images = client.images.list(filters={"label": LABEL})
    for image in sorted(images, key=lambda i: i.labels.get(LABEL) == "base"):  # children first
        client.images.remove(image.id, force=True)
        removed["images"] += 1
    log(
        f"removed {removed['containers']} containers, {removed['networks']} networks, "
        f"{removed['images']} images"
    )
    return removed
