"""The lab images: built offline from local material, cached by recipe hash, saved and loaded.

Engine tests skip with a reason where no Docker engine answers, and fail instead when CI=true and an
engine answers (a missing tool is then a broken CI machine, not a reason to skip). The build
itself is one session fixture, so CI builds the images from an empty engine the first time it
needs them.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labkit.runtime import docker_engine_version, images

from support import require


@pytest.fixture(scope="session")
def lab_images() -> Iterator[dict[str, Any]]:
    """Every lab image, built (or found up to date) once per session."""
    require(
        docker_engine_version() is not None,
        "no Docker engine answers: start Docker to run the image tests",
    )
    require(os.geteuid() == 0, "building the base image needs root (debootstrap, chroot)")
    require(
        shutil.which("debootstrap") is not None,
        "debootstrap is not installed: apt-get install -y debootstrap",
    )
    lines: list[str] = []
    start = time.monotonic()
    built = images.build(progress=lines.append)
    seconds = time.monotonic() - start
    print(
        f"\nlabkit images build: {seconds:.1f} s "
        f"({sum(not b.cached for b in built)} built, {sum(b.cached for b in built)} cached)"
    )
    yield {"built": built, "seconds": seconds, "lines": lines}


def _client() -> Any:
    import docker

    return docker.from_env()


# -- without an engine -----------------------------------------------------------------------------


def test_mirror_is_read_from_the_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
        "Types: deb\n# a comment line\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n"
    )
    assert images.apt_mirror(tmp_path) == "http://mirror.example/debian"


def test_mirror_is_read_from_a_one_line_sources_list(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "# deb http://old.example/debian bookworm main\n"
        "deb [signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian bookworm main\n"
    )
    assert images.apt_mirror(tmp_path) == "http://mirror.example/debian"


def test_no_mirror_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(images.ImageError, match="labkit images load"):
        images.apt_mirror(tmp_path)


def test_recipe_hash_follows_the_recipe_and_the_parent() -> None:
    app = next(r for r in images.RECIPES if r.name == "python-app")
    assert images.recipe_hash(app, "sha256:a") == images.recipe_hash(app, "sha256:a")
    assert images.recipe_hash(app, "sha256:a") != images.recipe_hash(app, "sha256:b")
    other = images.Recipe(app.name, app.summary, parent=app.parent, wheels=False)
    assert images.recipe_hash(other, "sha256:a") != images.recipe_hash(app, "sha256:a")


def test_unknown_image_names_are_refused_before_any_work() -> None:
    with pytest.raises(images.ImageError, match="choose from base, python-app"):
        images.build(["nginx"], progress=None)


def test_a_layer_holds_exactly_what_changed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "kept").write_text("same")
    (root / "etc" / "edited").write_text("old")
    (root / "etc" / "gone").write_text("bye")
    (root / "proc").mkdir()
    before = images._manifest(root)
    (root / "etc" / "edited").write_text("new, longer")
    (root / "etc" / "gone").unlink()
    (root / "opt" / "app").mkdir(parents=True)
    (root / "opt" / "app" / "run").write_text("#!/bin/sh\n")
    (root / "proc" / "ignored").write_text("engine-managed")
    added, removed = images._diff(root, before)
    assert sorted(added) == ["etc/edited", "opt", "opt/app", "opt/app/run"]
    assert added.index("opt") < added.index("opt/app") < added.index("opt/app/run")
    assert removed == ["etc/gone"]
    images._write_layer(root, added, tmp_path / "layer.tar")
    with tarfile.open(tmp_path / "layer.tar") as tar:
        assert tar.getnames() == added
        assert all(m.uname == "" for m in tar.getmembers())


# -- against the engine ----------------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_build_makes_every_image_without_pulling(lab_images: dict[str, Any]) -> None:
    client = _client()
    for recipe in images.RECIPES:
        image = client.images.get(recipe.tag)
        labels = image.attrs["Config"]["Labels"] or {}
        assert labels.get(images.HASH_LABEL), recipe.tag
        # A pulled image has a registry digest; these were imported or built here.
        assert image.attrs.get("RepoDigests") == [], recipe.tag
    history = client.api.history(images.RECIPES[0].tag)
    assert any("Imported" in (layer.get("Comment") or "") for layer in history)
    assert [i.name for i in images.list_images() if i.present] == [r.name for r in images.RECIPES]
    assert images.missing() == []


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_a_second_build_is_a_cache_hit(lab_images: dict[str, Any]) -> None:
    first = {b.tag: b.id for b in lab_images["built"]}
    start = time.monotonic()
    again = images.build(progress=None)
    seconds = time.monotonic() - start
    print(f"\nwarm labkit images build: {seconds:.2f} s")
    assert all(b.cached for b in again), [b.tag for b in again if not b.cached]
    assert {b.tag: b.id for b in again} == first


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_images_start_and_run_as_their_users(lab_images: dict[str, Any]) -> None:
    client = _client()

    def run(tag: str, *cmd: str) -> str:
        # Not remove=True: that keeps the anonymous volume of an image's VOLUME behind.
        container = client.containers.run(
            tag, list(cmd), detach=True, network_mode="none", entrypoint=[]
        )
        try:
            container.wait(timeout=60)
            return bytes(container.logs(stdout=True, stderr=False)).decode().strip()
        finally:
            container.remove(force=True, v=True)

    assert (
        run("labkit/base:bookworm", "python3", "-c", "import sys; print(sys.version_info[:2])")
        == "(3, 11)"
    )
    assert (
        run(
            "labkit/python-app:bookworm",
            "python3",
            "-c",
            "import os, fastapi, uvicorn, pymysql; print(os.getuid())",
        )
        == "10001"
    )
    assert run("labkit/mariadb:bookworm", "id", "-un") == "mysql"
    assert run("labkit/mariadb:bookworm", "sh", "-c", "ls -A /var/lib/mysql | wc -l") == "0"
    assert run("labkit/registry:bookworm", "id", "-un") == "docker-registry"
    assert "docker-registry" in run("labkit/registry:bookworm", "docker-registry", "--version")
    assert (
        run("labkit/base:bookworm", "sh", "-c", "test ! -e /etc/apt/sources.list && echo clean")
        == "clean"
    )
    assert run("labkit/prometheus:bookworm", "id", "-un") == "prometheus"
    assert "prometheus, version 2." in run("labkit/prometheus:bookworm", "prometheus", "--version")
    assert run("labkit/alertmanager:bookworm", "id", "-un") == "prometheus"
    assert "alertmanager, version 0." in run(
        "labkit/alertmanager:bookworm", "prometheus-alertmanager", "--version"
    )


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_save_and_load_round_trip(lab_images: dict[str, Any], tmp_path: Path) -> None:
    client = _client()
    base = images.RECIPES[0].tag
    before = client.images.get(base).id
    bundle = images.save(tmp_path / "bundle.tar", ["base"], progress=None)
    with tarfile.open(bundle) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert [entry["RepoTags"] for entry in manifest] == [[base]]
    assert images.load(bundle, progress=None) == [base]
    assert client.images.get(base).id == before


@pytest.mark.docker
def test_loading_a_missing_file_says_what_to_pass(tmp_path: Path) -> None:
    require(docker_engine_version() is not None, "no Docker engine answers")
    with pytest.raises(images.ImageError, match="labkit images save"):
        images.load(tmp_path / "nope.tar", progress=None)
