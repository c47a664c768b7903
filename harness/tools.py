"""Host programs the harness needs beyond Python packages, and the one place that installs them.

``make install`` runs ``python -m harness.tools install``: every tool a test or a command may
need is looked for, and what is missing is installed with apt when the installer runs as root on
a Debian-like host (a fresh machine of the kind CI uses); then the Python packages that build
against one of them (pyfuse3, on libfuse3) are built into the environment. Elsewhere it prints
one line per missing tool and what needs it; the tests that need one skip with that line, and a
command that needs one stops with it (``ToolMissing``, exit status 1). CI installs nothing else,
so a step missing here shows up in CI as it would on a user's machine.

Cargo is not an apt package here (Debian's is far older than the crates need): it is reported,
never installed.
"""

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path


class ToolMissing(RuntimeError):
    """A host program is missing; the message says what needs it and how to get it."""


@dataclass(frozen=True)
class Tool:
    """A host program: how to find it, which Debian package has it, and what it is for."""

    name: str
    package: str | None
    purpose: str
    candidates: tuple[str, ...] = ()

    def find(self) -> str | None:
        """The program's path (or the library's), or None."""
        for candidate in self.candidates or (self.name,):
            if "/" in candidate:
                if Path(candidate).exists():
                    return candidate
            elif found := shutil.which(candidate):
                return found
        return None

    def how(self) -> str:
        """How a user gets it."""
        if self.package is None:
            return "install Rust with rustup (https://rustup.rs), then retry"
        return f"run `make install` as root, or `apt-get install {self.package}`"

    def missing(self) -> str:
        """The one line that says it is missing."""
        return f"{self.name} is not installed (it {self.purpose}): {self.how()}"


def _multiarch() -> str:
    return {"x86_64": "x86_64-linux-gnu", "aarch64": "aarch64-linux-gnu"}.get(
        platform.machine(), f"{platform.machine()}-linux-gnu"
    )


TOOLS = {
    t.name: t
    for t in (
        Tool("mmdebstrap", "mmdebstrap", "builds the Docker backend's base image"),
        Tool(
            "libfaketime",
            "libfaketime",
            "skews the clocks of systems under test that cannot read clock.ctl",
            (f"/usr/lib/{_multiarch()}/faketime/libfaketime.so.1",),
        ),
        Tool(
            "redis-server",
            "redis-server",
            "runs Redis: `--system redis` (server and Sentinel), and beside our node in "
            "`bench compare`",
        ),
        Tool(
            "nats-server",
            "nats-server",
            "runs NATS JetStream: `--system nats`, and beside our node in `bench compare`",
        ),
        Tool(
            "rabbitmq-server",
            "rabbitmq-server",
            "runs RabbitMQ: `--system rabbitmq`",
            ("/usr/lib/rabbitmq/bin/rabbitmq-server",),
        ),
        Tool("erlc", "erlang-base", "compiles the epmd module of `--system rabbitmq`"),
        Tool("epmd", "erlang-base", "maps RabbitMQ nodes' names to ports (`--system rabbitmq`)"),
        Tool("chromium", "chromium", "runs the browser tests of `walrus-harness serve`"),
        Tool(
            "chromedriver",
            "chromium-driver",
            "lets selenium drive chromium in the browser tests of `walrus-harness serve`",
        ),
        Tool(
            "libfuse3-dev",
            "libfuse3-dev",
            "is what pyfuse3 builds against, for the lose-unsynced nemesis",
            ("/usr/include/fuse3/fuse_lowlevel.h",),
        ),
        Tool("pkg-config", "pkg-config", "finds libfuse3 when pyfuse3 builds"),
        Tool("ssh", "openssh-client", "reaches the hosts of `--backend ssh` (harness.remote.ssh)"),
        Tool("ssh-keygen", "openssh-client", "makes the keys of the SSH host test containers"),
        Tool("cc", "gcc", "builds the clock shim preloaded into redis-server (`--system redis`)"),
        Tool("fusermount3", "fuse3", "mounts losefs for the lose-unsynced nemesis"),
        Tool(
            "libnetfilter-queue",
            "libnetfilter-queue1",
            "lets harness.netq delay packets for the delay nemesis on the Docker backend",
            (f"/usr/lib/{_multiarch()}/libnetfilter_queue.so.1",),
        ),
        Tool(
            "cargo",
            None,
            "builds the original Walrus (--system walrus-rs)",
            ("cargo", str(Path.home() / ".cargo" / "bin" / "cargo")),
        ),
    )
}
"""Every host tool, by name."""


PY_BUILT = {"pyfuse3": ("pyfuse3>=3.2", ("libfuse3-dev", "pkg-config"))}
"""Python packages built against a host library: installed into this interpreter's environment
once the tools they build with are here (pip cannot build them before apt has run)."""


def _install_built(log) -> int:
    """pip-install each of ``PY_BUILT`` that is missing and can be built; exit status."""
    import importlib.util

    for module, (requirement, needs) in PY_BUILT.items():
        if importlib.util.find_spec(module) is not None:
            continue
        lacking = [n for n in needs if TOOLS[n].find() is None]
        if lacking:
            log(f"note: {module} is not installed: it needs {', '.join(lacking)} first")
            continue
        log(f"building {requirement} with pip")
        cmd = [sys.executable, "-m", "pip", "install", "--quiet", requirement]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            log(f"pip failed: {(done.stderr or done.stdout).strip()[-400:]}")
            return 1
    return 0


def require(name: str) -> str:
    """The tool's path, or ToolMissing with the line that says how to get it."""
    tool = TOOLS[name]
    found = tool.find()
    if found is None:
        raise ToolMissing(tool.missing())
    return found


def missing_reason(name: str) -> str | None:
    """None if the tool is here, else the line a skipped test gives as its reason."""
    tool = TOOLS[name]
    return None if tool.find() else tool.missing()


def install(log=print) -> int:
    """Install every missing apt tool when root with apt-get; report the rest. Exit status."""
    missing = [t for t in TOOLS.values() if t.find() is None]
    packages = [t.package for t in missing if t.package is not None]
    can_apt = os.geteuid() == 0 and shutil.which("apt-get") is not None
    if packages and can_apt:
        log(f"installing with apt: {' '.join(packages)}")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        ):
            done = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                log(f"apt-get failed: {(done.stderr or done.stdout).strip()[-400:]}")
                return 1
        missing = [t for t in TOOLS.values() if t.find() is None]
    for tool in missing:
        log(f"note: {tool.missing()}; what needs it is skipped or refused until then")
    return _install_built(log)


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.tools [install|check]``."""
    args = sys.argv[1:] if argv is None else argv
    if args == ["install"]:
        return install(lambda m: print(f"tools: {m}", flush=True))
    if args in ([], ["check"]):
        for tool in TOOLS.values():
            found = tool.find()
            print(f"{tool.name:<12} {found or 'MISSING: ' + tool.how()}")
        return 0 if all(t.find() for t in TOOLS.values()) else 1
    print("usage: python -m harness.tools [install|check]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
