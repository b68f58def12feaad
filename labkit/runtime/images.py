"""Build the lab's images with no registry: a debootstrap base, a wheelhouse, Debian packages.

``labkit images build`` makes every image the stacks use from local material, in this order:

- ``labkit/base:bookworm``: ``debootstrap --variant=minbase`` plus Python 3, cleaned, then
  ``docker import``;
- ``labkit/python-app:bookworm``: the base plus wheels that the host downloads (``pip download``);
- ``labkit/mariadb``, ``labkit/registry``, ``labkit/prometheus``, ``labkit/alertmanager`` (all
  ``:bookworm``): the base plus Debian packages, installed with ``apt-get`` in a chroot on the
  host and added to the base as one layer.

The apt mirror is read from this machine's apt configuration; the recipes are in
``compose/images/``. Each image carries a label with the hash of its recipe (and of its parent
image), so a second build with nothing changed only compares labels. ``save``/``load`` move the
whole set as one tarball.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from labkit import engine
from labkit.errors import ImageError
from labkit.paths import PACKAGED, lessons_dir, package_parent, setting, stacks_dir
from labkit.progress import Progress, ProgressArg, progress_for
from labkit.runtime.recipes import CLASSROOM_RECIPES, RECIPES, SUITE, Recipe

Say = Callable[[str], None]

PYTHON_VERSION = "3.11"  # Debian bookworm's python3; the wheelhouse is fetched for it
PYTHON_RELEASE = "3.11.2"  # its exact release, for packages that need a later 3.11
# Every manylinux level bookworm's glibc (2.36) runs; pip does not infer the lower ones.
PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 16, -1)),
    "manylinux2014_x86_64",
)
HASH_LABEL = "org.labkit.recipe-hash"
# Bump when a build step below changes in a way that the recipe files do not show.
SCHEME = "1"

# Paths the engine manages in every container, or that only matter while building.
_VOLATILE = frozenset({".dockerenv", "etc/hostname", "etc/hosts", "etc/resolv.conf"})
_MOUNT_POINTS = ("dev", "proc", "sys")


_BY_NAME = {r.name: r for r in (*RECIPES, *CLASSROOM_RECIPES)}


@dataclass(frozen=True)
class Built:
    """The outcome of building one image: ``cached`` when its label already matched the recipe."""

    name: str
    tag: str
    id: str
    cached: bool
    seconds: float


@dataclass(frozen=True)
class ImageInfo:
    """One lab image as the engine has it (``present=False`` when it is not built yet)."""

    name: str
    tag: str
    present: bool
    id: str = ""
    size_mb: float = 0.0
    recipe_hash: str = ""


# -- where things are ------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Downloads kept between builds (debs, wheels): ``$LABKIT_CACHE`` or ``~/.cache/labkit``."""
    explicit = setting("LABKIT_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "labkit"


def apt_mirror(apt_dir: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses for the suite (read at run time, never stored)."""
    for sources in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", sources.read_text()):
            fields = dict(re.findall(r"(?m)^(\w[\w-]*):\s*(.*)$", stanza))
            if (
                "deb" in fields.get("Types", "").split()
                and SUITE in fields.get("Suites", "").split()
                and fields.get("Enabled", "yes").strip().lower() != "no"
                and fields.get("URIs")
            ):
                return str(fields["URIs"].split()[0])
    for listing in [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]:
        if not listing.exists():
            continue
        for line in listing.read_text().splitlines():
            m = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if m and m.group(2) == SUITE:
                return m.group(1)
    raise ImageError(
        f"No Debian {SUITE} mirror found in /etc/apt/sources.list.d/debian.sources or "
        "/etc/apt/sources.list: labkit builds its images on a Debian bookworm machine "
        "with apt configured (or use `labkit images load FILE` with a workshop "
        "bundle)."
    )


# -- the public functions --------------------------------------------------------------------------


def build(
    names: Sequence[str] | None = None, *, progress: ProgressArg = True, force: bool = False
) -> list[Built]:
    """Build the named images (default: all) and those they start from; skip up-to-date ones.

    ``progress`` shows one step per image, and inside a step what debootstrap, apt-get and
    docker build report of their own: a bar (``True``: a widget in a notebook, a bar in a
    terminal, plain lines in a log), a function that takes each line, or ``None`` for silence.
    """
    wanted = _with_parents(names)
    client = _client()
    with progress_for(progress, "lab images", len(wanted)) as bar:
        with _build_lock(bar):
            built = _build_all(client, wanted, bar, force)
        fresh = sum(not b.cached for b in built)
        bar.finish(f"{len(built)} images ready ({fresh} built, {len(built) - fresh} up to date)")
    return built


@contextlib.contextmanager
def _build_lock(bar: Progress) -> Iterator[None]:
    """One build at a time on this machine (a notebook and a terminal may both ask)."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "build.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            bar.status("waiting for another `labkit images build` to finish")
            bar.line("another `labkit images build` is running: waiting for it to finish")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _build_all(client: Any, wanted: list[Recipe], bar: Progress, force: bool) -> list[Built]:
    ids: dict[str, str] = {}
    results: list[Built] = []
    for recipe in wanted:
        start = time.monotonic()
        parent_id = ids[recipe.parent] if recipe.parent else ""
        digest = recipe_hash(recipe, parent_id)
        current = _image(client, recipe.tag)
        if current is not None and not force and _labels(current).get(HASH_LABEL) == digest:
            ids[recipe.name] = current.id
            bar.advance(f"{recipe.tag}: up to date ({_short(current.id)})")
            results.append(
                Built(recipe.name, recipe.tag, current.id, True, time.monotonic() - start)
            )
            continue
        bar.step(f"{recipe.tag}: building {recipe.summary}")
        _check_tools(recipe)
        work = _fresh_dir(cache_dir() / "work" / recipe.name)
        try:
            if recipe.parent is None:
                image_id = _build_base(client, recipe, digest, work, bar)
            else:
                image_id = _build_layered(client, recipe, digest, work, bar)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        ids[recipe.name] = image_id
        if current is not None and current.id != image_id:
            _remove_quietly(client, current.id)
        seconds = time.monotonic() - start
        bar.advance(f"{recipe.tag}: built {_short(image_id)} in {seconds:.0f} s")
        results.append(Built(recipe.name, recipe.tag, image_id, False, seconds))
    return results


def list_images() -> list[ImageInfo]:
    """Every lab image, built or not, with its id, size and recipe hash."""
    client = _client()
    out = []
    for recipe in RECIPES:
        image = _image(client, recipe.tag)
        if image is None:
            out.append(ImageInfo(recipe.name, recipe.tag, False))
            continue
        size = float(image.attrs.get("Size", 0)) / 1e6
        out.append(
            ImageInfo(
                recipe.name,
                recipe.tag,
                True,
                image.id,
                round(size, 1),
                _labels(image).get(HASH_LABEL, ""),
            )
        )
    return out


def missing(tags: Iterable[str] | None = None) -> list[str]:
    """The lab image tags (default: all) that the engine does not have."""
    known = {r.tag for r in (*RECIPES, *CLASSROOM_RECIPES)}
    wanted = [t for t in (tags if tags is not None else [r.tag for r in RECIPES]) if t in known]
    client = _client()
    return [t for t in wanted if _image(client, t) is None]


def save(
    path: str | os.PathLike[str],
    names: Sequence[str] | None = None,
    *,
    progress: Say | None = print,
) -> Path:
    """Write the built lab images (default: all) to one tarball (gzip when it ends in ``.gz``)."""
    say = progress or (lambda line: None)
    client = _client()
    chosen = _with_parents(names) if names else list(RECIPES)
    tags = [r.tag for r in chosen if _image(client, r.tag) is not None]
    if not tags:
        raise ImageError("There are no lab images to save yet: run `labkit images build` first.")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    say(f"saving {', '.join(tags)} to {target}")
    # docker-py has no public call for saving several images at once (shared layers written once),
    # so this uses its low-level request helpers, as ``get_image`` itself does.
    api: Any = client.api
    response = api._get(api._url("/images/get"), params={"names": tags}, stream=True)
    api._raise_for_status(response)
    out = (
        cast(IO[bytes], gzip.open(partial, "wb", compresslevel=1))
        if target.suffix == ".gz"
        else open(partial, "wb")
    )
    with out:
        for chunk in response.iter_content(chunk_size=1 << 20):
            out.write(chunk)
    partial.replace(target)
    say(f"saved {len(tags)} images, {target.stat().st_size / 1e6:.0f} MB")
    return target


def load(path: str | os.PathLike[str], *, progress: Say | None = print) -> list[str]:
    """Load a tarball written by :func:`save` (or ``docker save``); returns the loaded tags."""
    say = progress or (lambda line: None)
    source = Path(path)
    if not source.is_file():
        raise ImageError(
            f"{source} is not a file: pass the tarball that `labkit images save` wrote."
        )
    client = _client()
    loaded: list[str] = []
    with open(source, "rb") as data:
        for line in client.api.load_image(data):
            if "error" in line:
                raise ImageError(f"loading {source} failed: {line['error']}")
            text = str(line.get("stream", "")).strip()
            if text.startswith("Loaded image:"):
                loaded.append(text.split(":", 1)[1].strip())
                say(text)
    return loaded


def recipe_hash(recipe: Recipe, parent_id: str = "") -> str:
    """The content hash of a recipe: its settings, its files, and the exact parent image."""
    h = hashlib.sha256()
    h.update(
        json.dumps(
            {
                "scheme": SCHEME,
                "suite": SUITE,
                "name": recipe.name,
                "packages": recipe.packages,
                "wheels": recipe.wheels,
                "purge": recipe.purge,
                "parent": parent_id,
            },
            sort_keys=True,
        ).encode()
    )
    folders = [recipe.folder]
    if recipe.kit:
        folders += [source for source, _ in _kit_sources()]
    for folder in folders:
        if not folder.is_dir():
            continue
        for f in sorted(p for p in folder.rglob("*") if p.is_file()):
            if "__pycache__" in f.parts or (
                folder != recipe.folder and _kit_ignored(f.relative_to(folder))
            ):
                continue
            h.update(f.relative_to(folder).as_posix().encode() + b"\0")
            h.update(b"x" if os.access(f, os.X_OK) else b"-")
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()[:16]


def _kit_sources() -> list[tuple[Path, str]]:
    """What a ``kit`` image carries: the labkit package, its stacks and its lessons, each with
    where it goes under the image's site-packages (the layout of an installed wheel)."""
    package = package_parent() / "labkit"
    return [
        (package, "labkit"),
        (stacks_dir(), f"labkit/{PACKAGED}/compose"),
        (lessons_dir(), f"labkit/{PACKAGED}/notebooks"),
    ]


def _kit_ignored(path: Path) -> bool:
    """Whether a file of the kit (``path`` relative to its source folder) stays out of the image."""
    parts = set(path.parts)
    return bool(
        parts & {"__pycache__", PACKAGED, "rootfs", ".secrets", ".ipynb_checkpoints"}
        or path.suffix in {".pyc", ".tar"}
        or path.name.startswith(".")
        or (path.suffix == ".ipynb" and not path.name[:2].isdigit())
    )


def _copy_kit(site_packages: Path) -> None:
    """Put labkit into a ``kit`` image's site-packages as a wheel would install it."""
    for source, target in _kit_sources():
        for f in sorted(p for p in source.rglob("*") if p.is_file()):
            rel = f.relative_to(source)
            if _kit_ignored(rel) or (target.endswith("notebooks") and len(rel.parts) > 1):
                continue
            dest = site_packages / target / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dest)


# -- building --------------------------------------------------------------------------------------


def _build_base(client: Any, recipe: Recipe, digest: str, work: Path, bar: Progress) -> str:
    say = bar.line
    root = work / "root"
    debs = cache_dir() / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    mirror = apt_mirror()
    say(f"  debootstrap {SUITE} (minbase, {', '.join(recipe.packages)}); .debs cached in {debs}")
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(recipe.packages)}",
            f"--cache-dir={debs}",
            SUITE,
            str(root),
            mirror,
        ],
        say,
        _DebootstrapPhases(bar),
    )
    _clean_root(root)
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    overlay = recipe.folder / "rootfs"
    if overlay.is_dir():
        shutil.copytree(overlay, root, dirs_exist_ok=True, symlinks=True)
    say(f"  docker import {recipe.tag}")
    bar.status(f"{recipe.tag}: tar and docker import")
    archive = work / "root.tar"
    _run(
        [
            "tar",
            "-C",
            str(root),
            "--numeric-owner",
            *[f"--exclude=./{m}/*" for m in _MOUNT_POINTS],
            "-cf",
            str(archive),
            ".",
        ],
        say,
    )
    repository, tag = recipe.tag.split(":")
    client.api.import_image(
        src=str(archive),
        repository=repository,
        tag=tag,
        changes=["ENV LANG=C.UTF-8", 'CMD ["python3"]', f"LABEL {HASH_LABEL}={digest}"],
    )
    image = _image(client, recipe.tag)
    if image is None or _labels(image).get(HASH_LABEL) != digest:
        raise ImageError(f"docker import did not produce {recipe.tag}: check `docker info`.")
    return str(image.id)


def _build_layered(client: Any, recipe: Recipe, digest: str, work: Path, bar: Progress) -> str:
    assert recipe.parent is not None
    say = bar.line
    parent = _BY_NAME[recipe.parent]
    context = work / "context"
    shutil.copytree(recipe.folder, context)
    if recipe.wheels:
        bar.status(f"{recipe.tag}: wheels (pip download, pip install)")
        _install_wheels(recipe, context / "site-packages", say)
    if recipe.kit:
        say("  labkit, its stacks and its lessons into site-packages")
        _copy_kit(context / "site-packages")
        # Data and configuration files of the wheels (JupyterLab's assets, server extensions)
        # go where Jupyter looks for them, under /usr/local.
        for data in ("share", "etc"):
            if (context / "site-packages" / data).is_dir():
                (context / "site-packages" / data).rename(context / data)
            else:
                (context / data).mkdir()
    if recipe.packages:
        root = work / "root"
        say(f"  unpacking {parent.tag} into a work folder")
        bar.status(f"{recipe.tag}: unpacking {parent.tag}")
        _export(client, parent.tag, root)
        before = _manifest(root)
        say(f"  apt-get install {' '.join(recipe.packages)} (chroot, host network)")
        _apt_install(root, recipe.packages, bar)
        _clean_root(root)
        for pattern in recipe.purge:
            for target in root.glob(pattern):
                _empty_dir(
                    target
                ) if target.is_dir() and not target.is_symlink() else target.unlink()
        added, removed = _diff(root, before)
        if removed:
            raise ImageError(
                f"installing {', '.join(recipe.packages)} removed files of "
                f"{parent.tag} ({', '.join(removed[:20])}): a layer cannot express "
                "that; add the package to the base recipe instead."
            )
        say(f"  layer: {len(added)} new or changed paths")
        bar.status(f"{recipe.tag}: writing a layer of {len(added)} paths")
        _write_layer(root, added, context / "rootfs.tar")
        shutil.rmtree(root)
    return _docker_build(client, context, recipe.tag, digest, bar)


def _install_wheels(recipe: Recipe, target: Path, say: Say) -> None:
    requirements = recipe.folder / "requirements.txt"
    lock = hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]
    wheelhouse = cache_dir() / "wheels" / f"cp{PYTHON_VERSION.replace('.', '')}-{lock}"
    platform_args = [arg for p in PLATFORMS for arg in ("--platform", p)]
    wheel_args = [
        "--only-binary=:all:",
        *platform_args,
        "--python-version",
        PYTHON_RELEASE,
        "--implementation",
        "cp",
        "--abi",
        f"cp{PYTHON_VERSION.replace('.', '')}",
        "--abi",
        "abi3",
        "--abi",
        "none",
    ]
    if not (wheelhouse / ".complete").exists():
        say(f"  pip download the wheelhouse into {wheelhouse}")
        partial = _fresh_dir(wheelhouse.with_name(wheelhouse.name + ".partial"))
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "-d",
                str(partial),
                *wheel_args,
                "-r",
                str(requirements),
            ],
            say,
            hint="pip could not download the wheels: is PyPI reachable? On an offline machine, "
            "use `labkit images load FILE` with a bundle made by `labkit images save`.",
        )
        (partial / ".complete").touch()
        shutil.rmtree(wheelhouse, ignore_errors=True)
        partial.rename(wheelhouse)
    else:
        say(f"  wheelhouse cached in {wheelhouse}")
    say("  pip install --target (from the wheelhouse, no index)")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-index",
            "--find-links",
            str(wheelhouse),
            "--target",
            str(target),
            "--no-compile",
            *wheel_args,
            "-r",
            str(requirements),
        ],
        say,
    )
    # Console scripts point at the host's Python; the images run ``python3 -m uvicorn`` instead.
    shutil.rmtree(target / "bin", ignore_errors=True)


def _apt_install(root: Path, packages: Sequence[str], bar: Progress) -> None:
    say = bar.line
    archives = root / "var/cache/apt/archives"
    archives.mkdir(parents=True, exist_ok=True)
    debs = cache_dir() / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    cached = {p.name for p in debs.glob("*.deb")}
    for name in cached:
        _link_or_copy(debs / name, archives / name)
    temporary = [
        root / "usr/sbin/policy-rc.d",
        root / "etc/apt/sources.list",
        root / "tmp/labkit-host-ca.crt",
    ]
    # Never start daemons inside the chroot; they belong in containers.
    temporary[0].write_text("#!/bin/sh\nexit 101\n")
    temporary[0].chmod(0o755)
    temporary[1].write_text(f"deb {apt_mirror()} {SUITE} main\n")
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    options: list[str] = ["-o", "APT::Sandbox::User=root"]
    host_ca = Path("/etc/ssl/certs/ca-certificates.crt")
    if host_ca.exists():
        # An https mirror may sit behind an intercepting proxy only the host trusts.
        shutil.copyfile(host_ca, temporary[2])
        options += ["-o", "Acquire::https::CAInfo=/tmp/labkit-host-ca.crt"]
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
        "HOME": "/root",
    }
    try:
        bar.status("apt-get update")
        _run(["chroot", str(root), "apt-get", *options, "-q", "update"], say, _apt_line, env=env)
        bar.status(f"apt-get install {' '.join(packages)}")
        _run(
            [
                "chroot",
                str(root),
                "apt-get",
                *options,
                "-q",
                "-y",
                "--no-install-recommends",
                "install",
                *packages,
            ],
            say,
            _AptCounts(bar),
            env=env,
        )
    finally:
        for deb in archives.glob("*.deb"):
            if deb.name not in cached:
                _link_or_copy(deb, debs / deb.name)
        for path in temporary:
            path.unlink(missing_ok=True)
        (root / "etc/resolv.conf").write_text("")


def _docker_build(client: Any, context: Path, tag: str, digest: str, bar: Progress) -> str:
    say = bar.line
    say(f"  docker build {tag}")
    bar.status(f"docker build {tag}")
    image_id = ""
    try:
        for chunk in client.api.build(
            path=str(context),
            tag=tag,
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
            labels={HASH_LABEL: digest},
        ):
            if "error" in chunk:
                raise ImageError(f"building {tag} failed: {str(chunk['error']).strip()}")
            line = str(chunk.get("stream", "")).strip()
            if line.startswith("Step "):
                say(f"    {line}")
                step = re.match(r"Step (\d+)/(\d+)", line)
                if step:
                    bar.status(f"docker build {tag}: step {step[1]} of {step[2]}")
            aux = chunk.get("aux")
            if isinstance(aux, dict) and "ID" in aux:
                image_id = str(aux["ID"])
    except ImageError:
        raise
    except Exception as exc:
        raise ImageError(f"building {tag} failed: {exc}") from exc
    image = _image(client, tag)
    if image is None:
        raise ImageError(f"docker build did not produce {tag}.")
    return str(image.id or image_id)


# -- root file systems -----------------------------------------------------------------------------


def _clean_root(root: Path) -> None:
    """Drop what an image does not need: .debs, apt lists, docs (not copyright), log contents."""
    for pattern in (
        "var/cache/apt/archives/*.deb",
        "var/cache/apt/*.bin",
        "var/cache/debconf/*-old",
        "var/lib/dpkg/*-old",
    ):
        for path in root.glob(pattern):
            path.unlink()
    _empty_dir(root / "var/lib/apt/lists", keep={"partial", "lock"})
    for folder in ("usr/share/man", "usr/share/info", "usr/share/lintian"):
        _empty_dir(root / folder)
    _empty_dir(root / "usr/share/locale", keep={"locale.alias"})
    doc = root / "usr/share/doc"
    if doc.is_dir():
        for package in doc.iterdir():
            if package.is_dir() and not package.is_symlink():
                _empty_dir(package, keep={"copyright"})
    for log in (root / "var/log").rglob("*"):
        if log.is_file() and not log.is_symlink():
            log.write_bytes(b"")
    # Alternatives for removed manuals dangle; update-alternatives drops them on its next run.
    alternatives = root / "etc/alternatives"
    if alternatives.is_dir():
        for link in alternatives.iterdir():
            if link.is_symlink() and not _inside(root, link).exists():
                link.unlink()
    for name in ("etc/hostname", "etc/resolv.conf"):
        path = root / name
        if path.exists():
            path.write_text("")


def _inside(root: Path, link: Path) -> Path:
    """Where a symlink in the root points, read as if root were ``/`` (not the host's ``/``)."""
    target = os.readlink(link)
    if target.startswith("/"):
        return root / target.lstrip("/")
    return link.parent / target


def _empty_dir(folder: Path, keep: set[str] | frozenset[str] = frozenset()) -> None:
    if not folder.is_dir():
        return
    for entry in folder.iterdir():
        if entry.name in keep:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


Stat = tuple[int, int, int, int, int, str]


def _manifest(root: Path) -> dict[str, Stat]:
    out: dict[str, Stat] = {}
    for rel, path in _walk(root):
        st = path.lstat()
        link = os.readlink(path) if path.is_symlink() else ""
        size = 0 if path.is_dir() else st.st_size
        mtime = 0 if path.is_dir() else st.st_mtime_ns
        out[rel] = (st.st_mode, st.st_uid, st.st_gid, size, mtime, link)
    return out


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    """Every path under root, parents first, leaving out engine-managed and mount-point content."""
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        rel_base = base.relative_to(root).as_posix()
        if rel_base in _MOUNT_POINTS:
            dirnames[:] = []
            continue
        dirnames.sort()
        for name in sorted(dirnames) + sorted(filenames):
            rel = name if rel_base == "." else f"{rel_base}/{name}"
            if rel not in _VOLATILE:
                yield rel, base / name


def _diff(root: Path, before: dict[str, Stat]) -> tuple[list[str], list[str]]:
    after = _manifest(root)
    added = [rel for rel, stat in after.items() if before.get(rel) != stat]
    removed = sorted(rel for rel in before if rel not in after)
    return added, removed


def _write_layer(root: Path, paths: Sequence[str], target: Path) -> None:
    def numeric(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uname = info.gname = ""
        return info

    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for rel in paths:
            path = root / rel
            if path.is_socket():
                continue
            tar.add(path, arcname=rel, recursive=False, filter=numeric)


def _export(client: Any, tag: str, root: Path) -> None:
    root.mkdir(parents=True)
    container = client.containers.create(tag, command=["true"])
    try:
        untar = subprocess.Popen(
            ["tar", "-x", "-C", str(root), "--numeric-owner"], stdin=subprocess.PIPE
        )
        assert untar.stdin is not None
        try:
            for chunk in container.export():
                untar.stdin.write(chunk)
        finally:
            untar.stdin.close()
            if untar.wait() != 0:
                raise ImageError(f"unpacking {tag} failed (tar exit {untar.returncode}).")
    finally:
        container.remove(force=True, v=True)  # and an image's anonymous VOLUME with it


# -- small helpers ---------------------------------------------------------------------------------


def _client() -> Any:
    try:
        return engine.client(600)
    except Exception as exc:
        raise ImageError(
            "No Docker engine answers, so no image can be built or listed: start "
            "Docker (`sudo systemctl start docker`) and try again."
        ) from exc


def _image(client: Any, tag: str) -> Any | None:
    import docker.errors

    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def _remove_quietly(client: Any, image_id: str) -> None:
    """Drop the image a rebuild replaced; keep it while a container or another image uses it."""
    import docker.errors

    try:
        client.images.remove(image_id)
    except docker.errors.APIError:
        pass


def _labels(image: Any) -> dict[str, str]:
    return dict((image.attrs.get("Config") or {}).get("Labels") or {})


def _short(image_id: str) -> str:
    return image_id.split(":", 1)[-1][:12]


def _with_parents(names: Sequence[str] | None) -> list[Recipe]:
    if not names:
        return list(RECIPES)
    unknown = [n for n in names if n not in _BY_NAME]
    if unknown:
        raise ImageError(
            f"No lab image called {', '.join(unknown)}: choose from {', '.join(_BY_NAME)}."
        )
    wanted: set[str] = set()
    for name in names:
        current: str | None = name
        while current is not None:
            wanted.add(current)
            current = _BY_NAME[current].parent
    return [r for r in (*RECIPES, *CLASSROOM_RECIPES) if r.name in wanted]


def _check_tools(recipe: Recipe) -> None:
    needs_root = recipe.parent is None or bool(recipe.packages)
    if needs_root and os.geteuid() != 0:
        raise ImageError(
            f"Building {recipe.tag} needs root (debootstrap and chroot): run "
            "`sudo labkit images build`, or `labkit images load FILE` with a bundle "
            "made by `labkit images save`."
        )
    if recipe.parent is None and shutil.which("debootstrap") is None:
        raise ImageError(
            "debootstrap is not installed: `apt-get install -y debootstrap`, then "
            "run `labkit images build` again."
        )
    if shutil.which("tar") is None:
        raise ImageError("tar is not installed: `apt-get install -y tar`.")


def _fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists():
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


_DEBOOTSTRAP_PHASES = (
    "Retrieving InRelease",
    "Resolving dependencies",
    "Installing core",
    "Unpacking required",
    "Configuring required",
    "Unpacking the base",
    "Configuring the base",
    "Base system installed",
)


def _debootstrap_line(line: str) -> str | None:
    if line.startswith("I: ") and line[3:].startswith(_DEBOOTSTRAP_PHASES):
        return f"    {line[3:]}"
    return None


class _DebootstrapPhases:
    """debootstrap's own phase lines, kept, and shown on the bar as phase n of the known ones."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar

    def __call__(self, line: str) -> str | None:
        shown = _debootstrap_line(line)
        if shown is not None:
            phase = next(i for i, p in enumerate(_DEBOOTSTRAP_PHASES, 1) if line[3:].startswith(p))
            self.bar.status(
                f"debootstrap: {line[3:].rstrip('.')} (phase {phase} of {len(_DEBOOTSTRAP_PHASES)})"
            )
        return shown


def _apt_line(line: str) -> str | None:
    if line.startswith("Fetched") or " newly installed" in line:
        return f"    {line}"
    return None


class _AptCounts:
    """apt-get's own counts on the bar: it says how many packages it installs, then dpkg says
    ``Unpacking`` and ``Setting up`` once for each of them."""

    def __init__(self, bar: Progress) -> None:
        self.bar = bar
        self.total = self.unpacked = self.set_up = 0

    def __call__(self, line: str) -> str | None:
        summary = re.match(r"(\d+) upgraded, (\d+) newly installed", line)
        if summary:
            self.total = int(summary[1]) + int(summary[2])
        elif self.total and line.startswith("Unpacking "):
            self.unpacked += 1
            self.bar.status(f"apt-get: unpacked {self.unpacked} of {self.total} packages")
        elif self.total and line.startswith("Setting up "):
            self.set_up += 1
            self.bar.status(f"apt-get: set up {self.set_up} of {self.total} packages")
        return _apt_line(line)


def _run(
    cmd: Sequence[str],
    say: Say,
    show: Callable[[str], str | None] | None = None,
    *,
    env: dict[str, str] | None = None,
    hint: str = "",
) -> None:
    """Run a build step; show the lines ``show`` picks, and the tail of the output on failure."""
    tail: list[str] = []
    try:
        proc = subprocess.Popen(
            list(cmd),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=env,
        )
    except FileNotFoundError as exc:
        raise ImageError(
            f"{cmd[0]} is not installed: {hint or 'install it and try again.'}"
        ) from exc
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip()
        tail = [*tail[-19:], line]
        shown = show(line) if show else None
        if shown:
            say(shown)
    if proc.wait() != 0:
        detail = "\n".join(tail)
        raise ImageError(
            f"`{' '.join(cmd[:3])} ...` failed (exit {proc.returncode}).\n{detail}\n"
            f"{hint or 'Fix the cause above and run `labkit images build` again.'}"
        )
