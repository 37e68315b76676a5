"""The read-only conformance suite against files://, fed two ways: Docker-style flat files
(``/run/secrets``) and Kubernetes Secret volumes written by the kubelet's AtomicWriter."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

import secretkit
from secretkit.store import SecretStore
from secretkit.testing.conformance import ReadOnlyStoreConformance, Seed
from secretkit.drivers.files.kubelet import KubeletVolume
from secretkit.testing.readers import ReaderAgreement


def _octets(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def write_flat(root: Path, name: str, value: str | bytes | Mapping[str, str]) -> None:
    """What Docker, Compose or a Vault Agent template does: a file (replaced by a rename), or a
    directory of files for a field secret."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(value, Mapping):
        if path.exists():
            shutil.rmtree(path)
        path.mkdir()
        for field, item in value.items():
            (path / field).write_bytes(_octets(item))
        return
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(_octets(value))
    os.replace(tmp, path)


class KubeletSeeder:
    """Text and octets become keys of a Secret volume mounted at the name's parent directory; a
    field secret is a volume of its own at the name (beside the parent's kubelet entries, as a
    nested mount point is)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.volumes: dict[Path, KubeletVolume] = {}

    def __call__(self, name: str, value: str | bytes | Mapping[str, str]) -> None:
        if isinstance(value, Mapping):
            self._volume(self.root / name).update(dict(value))
            return
        parent, _, leaf = name.rpartition("/")
        volume = self._volume(self.root / parent if parent else self.root)
        volume.update({**volume.payload(), leaf: _octets(value)})

    def _volume(self, path: Path) -> KubeletVolume:
        if path not in self.volumes:
            self.volumes[path] = KubeletVolume(path)
        return self.volumes[path]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "secrets"
    path.mkdir()
    return path


@pytest.fixture
def files_store(root: Path) -> Iterator[SecretStore]:
    with secretkit.open(f"files://{root}?poll_interval=0.05") as store:
        yield store


class TestFilesFlat(ReadOnlyStoreConformance):
    @pytest.fixture
    def store(self, files_store: SecretStore) -> SecretStore:
        return files_store

    @pytest.fixture
    def seed(self, root: Path) -> Seed:
        return lambda name, value: write_flat(root, name, value)


class KubeletVolumes:
    """The files:// store over a volume the kubelet mounts, seeded as the kubelet writes it."""

    @pytest.fixture
    def store(self, files_store: SecretStore) -> SecretStore:
        return files_store

    @pytest.fixture
    def seed(self, root: Path) -> Seed:
        return KubeletSeeder(root)


class TestFilesKubelet(KubeletVolumes, ReadOnlyStoreConformance):
    pass


class TestFilesPollingOnly(ReadOnlyStoreConformance):
    """Without inotify, watch polls (the floor on every platform)."""

    @pytest.fixture
    def store(self, root: Path) -> Iterator[SecretStore]:
        with secretkit.open(f"files://{root}?poll_interval=0.05&inotify=false") as store:
            yield store

    @pytest.fixture
    def seed(self, root: Path) -> Seed:
        return KubeletSeeder(root)


class TestFilesKubeletReaders(KubeletVolumes, ReaderAgreement):
    """Values as the kubelet mounts them: text a file of a volume, a field secret a volume of its own."""

    @pytest.fixture
    def cli_url(self, root: Path) -> str:
        return f"files://{root}"


class TestFilesMountedSecretReaders(ReaderAgreement):
    """Each value as the kubelet mounts the Secret ``k8s://`` writes for it: text is a volume of
    the one key ``value``, a field secret a volume of its keys. Read through ``files://``, every
    reader gives what it gives through ``k8s://`` and every other backend."""

    @pytest.fixture
    def store(self, files_store: SecretStore) -> SecretStore:
        return files_store

    @pytest.fixture
    def seed(self, root: Path) -> Seed:
        def seed(name: str, value: str | bytes | Mapping[str, str]) -> None:
            KubeletVolume(root / name, dict(value) if isinstance(value, Mapping) else {"value": _octets(value)})

        return seed

    @pytest.fixture
    def cli_url(self, root: Path) -> str:
        return f"files://{root}"
