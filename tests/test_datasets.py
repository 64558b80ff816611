"""Training data sets (hwnas/datasets): loaders, splits, standardisation and the errors bad data gets.

Everything is written into tmp_path by the tests themselves; nothing is downloaded.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import run_app

from hwnas.config import DatasetConfig
from hwnas.datasets import DATASETS, GEOMETRY, load_dataset
from hwnas.datasets.fashion_mnist import CLASSES, DEFAULT_PATH
from hwnas.datasets.npz import to_nchw
from hwnas.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]


def cfg(name: str, **kw) -> DatasetConfig:
    return DatasetConfig(name=name, source="files", **kw)


def one_line_error(exc_type, name, match, **kw):
    with pytest.raises(exc_type, match=match) as info:
        load_dataset(cfg(name, **kw))
    assert "\n" not in str(info.value)
    return str(info.value)


def all_splits(s):
    return [(s.x_train, s.y_train), (s.x_val, s.y_val), (s.x_test, s.y_test)]


# ---------------------------------------------------------------- digits

def test_digits_shapes_classes_and_train_only_standardisation():
    s = load_dataset(cfg("digits"))
    assert s.name == "digits" and s.num_classes == 10 and s.class_names == tuple("0123456789")
    assert (s.input_shape, s.num_classes) == GEOMETRY["digits"]
    assert len(s.y_train) + len(s.y_val) + len(s.y_test) == 1797
    # test_fraction of all, then val_fraction of the rest (stratified rounding per class)
    assert abs(len(s.y_test) - 0.2 * 1797) <= 10 and abs(len(s.y_val) - 0.2 * (1797 - len(s.y_test))) <= 10
    for x, y in all_splits(s):
        assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape[1:] == (1, 8, 8)
        assert set(np.unique(y)) == set(range(10))  # stratified: every class in every split
    assert abs(float(s.x_train.mean())) < 1e-5 and abs(float(s.x_train.std()) - 1) < 1e-4
    # validation and test use the training statistics, so they are not exactly standardised
    assert abs(float(s.x_val.mean())) > 1e-4


def test_splits_follow_split_seed_and_not_the_search_seed():
    loader = DATASETS.get("digits")
    a, b = loader(cfg("digits"), 0), loader(cfg("digits"), 7)
    assert a.digest() == b.digest()
    assert loader(cfg("digits", split_seed=1), 0).digest() != a.digest()


# ---------------------------------------------------------------- npz

def indexed_npz(tmp_path, n_per_class=(10, 10, 10), labels=(3, 7, 10), **extra) -> Path:
    """x[i] is a constant image of value i, so a split's rows can be traced back to their index."""
    y = np.concatenate([np.full(k, c) for k, c in zip(n_per_class, labels)])
    x = np.arange(len(y), dtype=np.float64)[:, None, None] * np.ones((1, 4, 5))
    path = tmp_path / "d.npz"
    np.savez(path, x=x, y=y, **extra)
    return path


def test_npz_splits_are_disjoint_stratified_and_labels_remapped(tmp_path):
    s = load_dataset(cfg("npz", path=str(indexed_npz(tmp_path))))
    assert s.class_names == ("3", "7", "10") and s.num_classes == 3 and s.input_shape == (1, 4, 5)
    # one affine map (the training statistics) for all splits: distinct rows stay distinct
    pooled = np.concatenate([x[:, 0, 0, 0] for x, _ in all_splits(s)])
    assert len(pooled) == 30 and len(np.unique(pooled)) == 30  # disjoint, and together all 30
    assert [len(y) for _, y in all_splits(s)] == [18, 6, 6]  # 2 test and 2 val per class of 10
    for _, y in all_splits(s):
        assert np.bincount(y, minlength=3).tolist() == [len(y) // 3] * 3


def test_standardisation_uses_training_statistics_only(tmp_path):
    path = indexed_npz(tmp_path, x_test=np.full((3, 4, 5), 1000.0), y_test=np.array([3, 7, 10]))
    s = load_dataset(cfg("npz", path=str(path)))
    assert len(s.y_test) == 3 and s.y_test.tolist() == [0, 1, 2]
    assert len(s.y_train) + len(s.y_val) == 30  # x_test given: no test split carved from x
    # test images are far above the training data; computed with test included, they would be ~1.7
    assert float(s.x_test.mean()) > 10 * float(np.abs(s.x_train).max())
    assert abs(float(s.x_train.mean())) < 1e-5 and abs(float(s.x_train.std()) - 1) < 1e-4


@pytest.mark.parametrize("shape, expected", [
    ((6, 5, 7), (1, 5, 7)),        # (N, H, W): one channel
    ((6, 5, 7, 3), (3, 5, 7)),     # channels-last RGB
    ((6, 5, 7, 1), (1, 5, 7)),     # channels-last grey
    ((6, 3, 5, 7), (3, 5, 7)),     # channels-first
    ((6, 1, 5, 7), (1, 5, 7)),
    ((6, 3, 5, 3), (3, 5, 3)),     # both 1-or-3: channels-first by the rule
    ((6, 4, 5, 6), (4, 5, 6)),     # neither: channels-first (any channel count)
])
def test_npz_layout_rule(shape, expected):
    x = np.arange(np.prod(shape)).reshape(shape)
    out = to_nchw(x, "x")
    assert out.shape[1:] == expected
    if len(shape) == 4 and shape[3] in (1, 3) and shape[1] not in (1, 3):
        assert np.array_equal(out[2, :, 1, 4], x[2, 1, 4, :])  # a pixel's channels move, not mix


def test_npz_channels_last_loads_as_nchw(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "rgb.npz"
    np.savez(path, x=rng.integers(0, 255, (20, 6, 9, 3), dtype=np.uint8), y=np.arange(20) % 2)
    s = load_dataset(cfg("npz", path=str(path)))
    assert s.input_shape == (3, 6, 9)
    assert np.allclose(s.x_train.mean(axis=(0, 2, 3)), 0, atol=1e-5)  # per channel


def bad_npz(tmp_path, **arrays) -> str:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return str(path)


X10 = np.zeros((10, 4, 4))
Y10 = np.arange(10) % 2


@pytest.mark.parametrize("arrays, match", [
    (dict(x=X10, y=Y10[:9]), "10 images but 9 labels"),
    (dict(x=np.zeros((10, 16)), y=Y10), r"shape \(10, 16\); images must be \(N, H, W\)"),
    (dict(x=np.zeros((10, 1, 2, 4, 4)), y=Y10), "images must be"),
    (dict(x=X10, y=Y10 + 0.5), "labels must be integer class numbers, found 0.5"),
    (dict(x=X10, y=np.array(list("ababababab"))), "labels must be integer class numbers, got dtype"),
    (dict(x=X10, y=Y10.reshape(5, 2)), "labels must be one-dimensional"),
    (dict(x=np.where(np.arange(10)[:, None, None] == 3, np.nan, X10), y=Y10), "1 image.s. hold NaN or inf"),
    (dict(x=np.where(np.arange(10)[:, None, None] < 2, np.inf, X10), y=Y10), "2 image.s. hold NaN or inf"),
    (dict(x=X10), "has no array 'y'"),
    (dict(x=X10, y=Y10, x_test=X10), "only one of x_test and y_test"),
    (dict(x=X10, y=np.zeros(10, int)), "only one class"),
    (dict(x=X10, y=Y10, x_test=X10[:2], y_test=np.array([0, 5])), "class.es. 5 appear in the test split but not"),
    (dict(x=X10, y=Y10, x_test=np.zeros((2, 4, 5)), y_test=np.array([0, 1])), "test images are"),
])
def test_npz_bad_data_is_one_data_error(tmp_path, arrays, match):
    one_line_error(DataError, "npz", match, path=bad_npz(tmp_path, **arrays))


def test_npz_that_is_not_an_npz_and_a_missing_path(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip at all")
    one_line_error(DataError, "npz", "cannot be read as .npz", path=str(tmp_path / "junk.npz"))
    one_line_error(DataError, "npz", "does not exist", path=str(tmp_path / "nope.npz"))
    one_line_error(ConfigError, "npz", r"dataset=npz needs dataset.path")
    one_line_error(DataError, "npz", "is not a file", path=str(tmp_path))


@pytest.mark.parametrize("options, exc, match", [
    (dict(val_fraction=0.0), ConfigError, r"val_fraction must be in \(0, 1\), got 0.0"),
    (dict(val_fraction=1.0), ConfigError, r"val_fraction must be in \(0, 1\)"),
    (dict(test_fraction=1.5), ConfigError, r"test_fraction must be in \(0, 1\), got 1.5"),
    (dict(test_fraction=float("nan")), ConfigError, r"test_fraction must be in \(0, 1\)"),
    (dict(split_seed=-1), ConfigError, "split_seed must be an integer >= 0"),
    # 10 examples per class: 0.01 rounds to none held out
    (dict(test_fraction=0.01), DataError, "test_fraction=0.01 of 30 examples leaves the test split empty"),
    (dict(val_fraction=0.01), DataError, "leaves the validation split empty"),
])
def test_split_options_out_of_range(tmp_path, options, exc, match):
    one_line_error(exc, "npz", match, path=str(indexed_npz(tmp_path)), **options)


def test_every_class_keeps_a_training_example(tmp_path):
    # a one-example class cannot be held out; a large fraction still leaves one in training
    path = indexed_npz(tmp_path, n_per_class=(1, 2, 10))
    s = load_dataset(cfg("npz", path=str(path), test_fraction=0.5, val_fraction=0.9))
    assert set(s.y_train.tolist()) == {0, 1, 2}


# ---------------------------------------------------------------- fashion_mnist

def write_idx(path: Path, a: np.ndarray, gz: bool, magic_type: int = 0x08) -> Path:
    a = np.ascontiguousarray(a, dtype=np.uint8)
    raw = bytes([0, 0, magic_type, a.ndim]) + np.array(a.shape, ">u4").tobytes() + a.tobytes()
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)
    return path


def fashion_folder(tmp_path, gz: bool, n_train=40, n_test=10) -> Path:
    rng = np.random.default_rng(1)
    folder = tmp_path / "fm"
    folder.mkdir()
    write_idx(folder / "train-images-idx3-ubyte", rng.integers(0, 256, (n_train, 28, 28)), gz)
    write_idx(folder / "train-labels-idx1-ubyte", np.arange(n_train) % 10, gz)
    write_idx(folder / "t10k-images-idx3-ubyte", np.full((n_test, 28, 28), 255), gz)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(n_test) % 10, gz)
    return folder


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
def test_fashion_mnist_reads_idx_files(tmp_path, gz):
    s = load_dataset(cfg("fashion_mnist", path=str(fashion_folder(tmp_path, gz))))
    assert (s.input_shape, s.num_classes) == GEOMETRY["fashion_mnist"] and s.class_names == CLASSES
    assert len(s.y_test) == 10 and s.y_test.tolist() == list(range(10))  # t10k is the test split, as is
    assert len(s.y_train) + len(s.y_val) == 40 and len(s.y_val) == 10  # val carved from train only
    # t10k images are all 255: standardised with the training statistics, one value above 1
    assert np.allclose(s.x_test, s.x_test.flat[0]) and float(s.x_test.flat[0]) > 1


def test_fashion_mnist_bad_files_name_the_file(tmp_path):
    folder = fashion_folder(tmp_path, gz=False)
    images = folder / "train-images-idx3-ubyte"
    full = images.read_bytes()
    images.write_bytes(full[:-100])
    msg = one_line_error(DataError, "fashion_mnist", "is truncated", path=str(folder))
    assert str(images) in msg
    images.write_bytes(full + b"x")
    one_line_error(DataError, "fashion_mnist", "longer than its header says", path=str(folder))
    images.write_bytes(b"\x00\x00\x0d\x03" + full[4:])  # float type code
    one_line_error(DataError, "fashion_mnist", "magic number 00000d03", path=str(folder))
    images.write_bytes(full[:6])
    one_line_error(DataError, "fashion_mnist", r"only 6 bytes", path=str(folder))
    images.unlink()
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(full)[:-20])  # cut-off gzip stream
    msg = one_line_error(DataError, "fashion_mnist", "corrupt or truncated", path=str(folder))
    assert "train-images-idx3-ubyte.gz" in msg


def test_fashion_mnist_missing_and_mismatched_files(tmp_path):
    folder = fashion_folder(tmp_path, gz=True)
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(9) % 10, gz=False)  # plain one wins over .gz
    one_line_error(DataError, "fashion_mnist", "holds 10 images but t10k-labels-idx1-ubyte 9 labels",
                   path=str(folder))
    (folder / "t10k-labels-idx1-ubyte").unlink()
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    msg = one_line_error(DataError, "fashion_mnist", r"has no t10k-labels-idx1-ubyte \(or t10k-labels-idx1-ubyte.gz\)",
                         path=str(folder))
    assert "dataset-fashion-mnist" in msg and "zalandoresearch/fashion-mnist" in msg
    one_line_error(DataError, "fashion_mnist", "does not exist", path=str(tmp_path / "nowhere"))


@pytest.mark.skipif(not Path(DEFAULT_PATH).is_dir(),
                    reason=f"Debian's dataset-fashion-mnist package is not installed ({DEFAULT_PATH})")
def test_fashion_mnist_default_path_is_debians_package():
    s = load_dataset(cfg("fashion_mnist"))
    assert len(s.y_test) == 10000 and len(s.y_train) + len(s.y_val) == 60000
    assert np.bincount(s.y_test).tolist() == [1000] * 10


# ---------------------------------------------------------------- image_folder

def write_png(path: Path, a: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(a, dtype=np.uint8)).save(path)


def image_folder(tmp_path, classes=("cat", "dog", "eel"), per_class=5, size=(6, 7)) -> Path:
    rng = np.random.default_rng(2)
    root = tmp_path / "imgs"
    for c in classes:
        for i in range(per_class):
            write_png(root / c / f"{i}.png", rng.integers(0, 256, size))
    return root


def test_image_folder_grey_classes_from_folder_names(tmp_path):
    root = image_folder(tmp_path)
    (root / "cat" / "notes.txt").write_text("not an image, ignored")
    s = load_dataset(cfg("image_folder", path=str(root)))
    assert s.class_names == ("cat", "dog", "eel") and s.num_classes == 3 and s.input_shape == (1, 6, 7)
    assert len(s.y_train) + len(s.y_val) + len(s.y_test) == 15


def test_image_folder_is_rgb_when_any_image_has_colour(tmp_path):
    root = image_folder(tmp_path)
    grey_rgb = np.repeat(np.full((6, 7, 1), 90), 3, axis=2)
    write_png(root / "dog" / "grey_as_rgb.png", grey_rgb)
    assert load_dataset(cfg("image_folder", path=str(root))).input_shape == (1, 6, 7)  # equal channels: grey
    colour = grey_rgb.copy()
    colour[..., 0] = 200
    write_png(root / "eel" / "red.png", colour)
    assert load_dataset(cfg("image_folder", path=str(root))).input_shape == (3, 6, 7)


def test_image_folder_resizes_odd_sizes_to_the_most_common_with_a_warning(tmp_path):
    root = image_folder(tmp_path)
    write_png(root / "cat" / "big.png", np.zeros((12, 14)))
    with pytest.warns(UserWarning, match=r"1 of 16 images are not 6x7 .*big.png"):
        s = load_dataset(cfg("image_folder", path=str(root)))
    assert s.input_shape == (1, 6, 7)


def test_image_folder_errors(tmp_path):
    one_line_error(ConfigError, "image_folder", "needs dataset.path")
    one_line_error(DataError, "image_folder", "does not exist", path=str(tmp_path / "none"))
    only = image_folder(tmp_path / "one", classes=("cat",))
    one_line_error(DataError, "image_folder", r"only one class \(cat\)", path=str(only))
    root = image_folder(tmp_path)
    (root / "fox").mkdir()
    one_line_error(DataError, "image_folder", r"class folder .*fox holds no images", path=str(root))
    (root / "fox").rmdir()
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    msg = one_line_error(DataError, "image_folder", "cannot read image", path=str(root))
    assert str(root / "dog" / "broken.png") in msg
    flat = tmp_path / "flat"
    write_png(flat / "a.png", np.zeros((4, 4)))
    one_line_error(DataError, "image_folder", r"no class sub-folders \(1 images lie directly in it\)", path=str(flat))


# ---------------------------------------------------------------- sequences (hwnas/datasets/sequences.py)

def test_osuleaf_is_the_shipped_ucr_set_as_height_one_images():
    s = load_dataset(cfg("osuleaf"))
    assert (s.input_shape, s.num_classes) == GEOMETRY["osuleaf"] == ((1, 1, 427), 6)
    assert len(s.y_test) == 242 and len(s.y_train) + len(s.y_val) == 200  # its own TEST file; val from TRAIN
    assert np.bincount(s.y_test).tolist() == [32, 55, 42, 44, 46, 23]  # labels '1'..'6' -> 0..5
    for x, y in all_splits(s):
        assert x.dtype == np.float32 and y.dtype == np.int64 and set(np.unique(y)) == set(range(6))
    assert abs(float(s.x_train.mean())) < 1e-5 and abs(float(s.x_train.std()) - 1) < 1e-4
    again = DATASETS.get("osuleaf")(cfg("osuleaf"), 5)
    assert again.digest() == s.digest()  # the search seed does not move the splits
    assert DATASETS.get("osuleaf")(cfg("osuleaf", split_seed=1), 0).digest() != s.digest()


def test_plaid_pads_unequal_series_with_zeros_to_its_longest():
    from hwnas.datasets.sequences import PLAID_CLASSES, PLAID_LENGTH, read_ucr

    s = load_dataset(cfg("plaid"))
    assert (s.input_shape, s.num_classes) == GEOMETRY["plaid"] == ((1, 1, PLAID_LENGTH), 11)
    assert s.class_names == PLAID_CLASSES and len(s.y_test) == 537
    # label '10' is the 11th class by number (not after '1' by spelling): 13 washing machines in TEST
    assert np.bincount(s.y_test)[10] == 13 and s.class_names[10] == "washing machine"
    raw, _ = read_ucr("plaid", "test")
    lengths = [r.shape[1] for r in raw]
    assert max(lengths) <= PLAID_LENGTH and min(lengths) < PLAID_LENGTH
    i = int(np.argmin(lengths))
    tail = s.x_test[i, 0, 0, lengths[i]:]  # raw zeros, standardised with the training statistics
    assert len(tail) > 0 and np.allclose(tail, tail[0]) and not np.allclose(s.x_test[i, 0, 0, :lengths[i]], tail[0])


def test_fashion_mnist_seq_is_fashion_mnist_row_by_row(tmp_path):
    folder = str(fashion_folder(tmp_path, gz=True))
    img, seq = load_dataset(cfg("fashion_mnist", path=folder)), load_dataset(cfg("fashion_mnist_seq", path=folder))
    assert (seq.input_shape, seq.num_classes) == GEOMETRY["fashion_mnist_seq"] == ((1, 1, 784), 10)
    assert seq.class_names == CLASSES
    for (xi, yi), (xs, ys) in zip(all_splits(img), all_splits(seq)):
        assert np.array_equal(yi, ys) and np.array_equal(xs.reshape(-1, 1, 28, 28), xi)


def test_sequence_sets_without_sktime_say_how_to_install_it(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sktime", None)  # import sktime -> ImportError
    monkeypatch.setitem(sys.modules, "sktime.datasets", None)
    for name in ("osuleaf", "plaid"):
        msg = one_line_error(ConfigError, name, "ship inside the sktime package, which is not installed")
        assert "pip install 'hwnas[sequences]'" in msg


def fake_ucr(monkeypatch, train, test=None):
    """read_ucr replaced by given (series, labels): the checks after reading are what is tested."""
    import hwnas.datasets.sequences as sequences

    monkeypatch.setattr(sequences, "read_ucr", lambda name, split: train if split == "train" else (test or train))


def series(n, length, labels=None, value=None):
    rng = np.random.default_rng(3)
    xs = [rng.normal(size=(1, length)) if value is None else np.full((1, length), value) for _ in range(n)]
    return xs, np.array(labels if labels is not None else [str(1 + i % 6) for i in range(n)])


@pytest.mark.parametrize("name, train, match", [
    ("osuleaf", series(24, 400), "series 0 has length 400, expected 427"),
    ("osuleaf", series(24, 427, value=np.nan), "24 image.s. hold NaN or inf"),
    ("osuleaf", series(24, 427, labels=["3"] * 24), r"only one class \(3\)"),
    ("osuleaf", series(24, 427, labels=["a"] * 24), "label 'a' is not a class number"),
    ("osuleaf", series(24, 427, labels=[str(i % 4) for i in range(24)]), "4 classes in the training file, expected 6"),
    ("plaid", series(22, 2000, labels=[str(i % 11) for i in range(22)]), "series 0 has length 2000, expected 1..1344"),
    ("osuleaf", ([np.zeros((1, 427)), np.zeros((2, 427))], np.array(["1", "2"])), "different channel counts"),
])
def test_bad_sequence_data_is_one_data_error(monkeypatch, name, train, match):
    fake_ucr(monkeypatch, train)
    one_line_error(DataError, name, match)


def test_plaid_padding_of_short_synthetic_series(monkeypatch):
    xs = [np.full((1, 10 + i), 5.0) for i in range(22)]
    fake_ucr(monkeypatch, (xs, np.array([str(i % 11) for i in range(22)])))
    s = load_dataset(cfg("plaid", val_fraction=0.5))
    raw = np.concatenate([s.x_train, s.x_val]) if len(s.y_val) else s.x_train
    assert raw.shape[1:] == (1, 1, 1344)
    # the values 5 then zeros: after standardisation two levels, the padded one below
    assert len(np.unique(np.round(raw, 4))) == 2 and (raw[:, 0, 0, 40:] == raw.min()).all()


# ---------------------------------------------------------------- configs and the tabular evaluator

@pytest.mark.parametrize("name", ["digits", "fashion_mnist", "image_folder", "npz", "osuleaf", "plaid",
                                  "fashion_mnist_seq"])
def test_dataset_yaml_is_a_training_set(name):
    conf = yaml.safe_load((REPO / "hwnas" / "conf" / "dataset" / f"{name}.yaml").read_text())
    assert conf["name"] == name and conf["source"] == "files" and name in DATASETS


def test_tabular_evaluator_refuses_a_training_set_in_one_line(tmp_path):
    r = run_app(f"hydra.run.dir={tmp_path / 'x'}", "dataset=digits", "output.progress=false")
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stderr.strip() == "hwnas: error: dataset digits has no benchmark table: use evaluator=train"
