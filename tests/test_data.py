"""Data sets, CSV loading and splits: standardization, bad input, partitions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits

from numerics import data
from numerics.errors import InvalidInputError


# ---- data sets ----------------------------------------------------------------------------
def _standardized(ds: data.Dataset) -> None:
    np.testing.assert_allclose(ds.features.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.features.std(axis=0), 1.0, rtol=1e-12)
    assert set(np.unique(ds.labels)) == {-1.0, 1.0}


def test_synthetic_is_seeded_and_standardized():
    a = data.synthetic(300, 4, signal=2.0, seed=5)
    b = data.synthetic(300, 4, signal=2.0, seed=5)
    c = data.synthetic(300, 4, signal=2.0, seed=6)
    _standardized(a)
    assert a.features.shape == (300, 4)
    np.testing.assert_array_equal(a.features, b.features)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert not np.array_equal(a.features, c.features)
    assert a.design().shape == (300, 5) and np.all(a.design()[:, -1] == 1.0)


def test_synthetic_signal_controls_label_dependence():
    # with a strong planted signal a linear score separates the classes far better than chance;
    # with signal 0 the labels are independent of x (the best direction is noise)
    def best_correlation(ds):
        w = np.linalg.lstsq(ds.features, ds.labels, rcond=None)[0]
        return np.corrcoef(ds.features @ w, ds.labels)[0, 1]

    strong = data.synthetic(4000, 3, signal=5.0, seed=1)
    none = data.synthetic(4000, 3, signal=0.0, seed=1)
    assert best_correlation(strong) > 0.6
    # |corr| of the least-squares fit on pure noise is ~ sqrt(p/N) ≈ 0.03; 0.1 is > 5 sd away
    assert best_correlation(none) < 0.1


def test_breast_cancer_matches_sklearn():
    raw = load_breast_cancer()
    ds = data.breast_cancer()
    _standardized(ds)
    assert ds.features.shape == raw.data.shape
    assert ds.class_counts() == {-1: int(np.sum(raw.target == 0)), 1: int(np.sum(raw.target == 1))}
    assert ds.classes == ("malignant", "benign")
    z = (raw.data[:, 0] - raw.data[:, 0].mean()) / raw.data[:, 0].std()
    np.testing.assert_allclose(ds.features[:, 0], z, rtol=1e-12)


def test_digits_even_odd_drops_constant_pixels():
    raw = load_digits()
    ds = data.digits()
    _standardized(ds)
    constant = np.flatnonzero(raw.data.std(axis=0) == 0)
    assert len(ds.dropped) == constant.size > 0
    assert ds.features.shape == (raw.data.shape[0], 64 - constant.size)
    np.testing.assert_array_equal(ds.labels == 1.0, raw.target % 2 == 1)


def test_load_dataset_names_and_errors(tmp_path):
    assert data.load_dataset("synthetic", n_samples=50, dim=2).n_features == 2
    with pytest.raises(InvalidInputError, match="not known; allowed: synthetic"):
        data.load_dataset("iris")
    with pytest.raises(InvalidInputError, match="target=COLUMN"):
        data.load_dataset(str(tmp_path / "x.csv"))


# ---- CSV ----------------------------------------------------------------------------------
def _write(tmp_path, text: str, name: str = "d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


GOOD = "a,b,label\n1,2,yes\n2,1,no\n3,5,yes\n4,3,no\n5,5,yes\n"


def test_csv_good_file(tmp_path):
    ds = data.load_csv(_write(tmp_path, GOOD), "label")
    assert ds.feature_names == ("a", "b")
    assert ds.classes == ("no", "yes")
    np.testing.assert_array_equal(ds.labels, [1, -1, 1, -1, 1])
    _standardized(ds)
    a = np.array([1, 2, 3, 4, 5.0])
    np.testing.assert_allclose(ds.features[:, 0], (a - a.mean()) / a.std())


def test_csv_numeric_target_order(tmp_path):
    ds = data.load_csv(_write(tmp_path, "x,y\n1,10\n2,2\n3,10\n4,2\n"), "y")
    assert ds.classes == ("2", "10")  # numeric, not text, order
    np.testing.assert_array_equal(ds.labels, [1, -1, 1, -1])


@pytest.mark.parametrize(
    ("text", "target", "pattern"),
    [
        ("a,b,label\n1,,yes\n2,1,no\n3,5,yes\n4,3,no\n", "label", r"column 'b'.*missing.*line 2"),
        (
            "a,b,label\n1,2,yes\n2,1,no\n3,x5,yes\n4,3,no\n",
            "label",
            r"'b'.*non-numeric.*'x5'.*line 4",
        ),
        ("a,b,label\n1,2,yes\n2,NA,no\n3,5,yes\n4,3,no\n", "label", r"'b'.*missing.*line 3"),
        (
            "a,b,label\n1,2,yes\n2,1,no\n3,5,yes\n4,3,no\n",
            "class",
            r"'class'.*columns are: a, b, label",
        ),
        (
            "a,b,label\n1,2,yes\n2,1,yes\n3,5,yes\n4,3,yes\n",
            "label",
            r"1 distinct value\(s\) \('yes'\)",
        ),
        ("a,label\n1,x\n2,y\n3,z\n4,x\n", "label", r"3 distinct value\(s\) \('x', 'y', 'z'\)"),
        ("a,label\n1,x\n2,y\n", "label", r"2 data rows; at least 4"),
        ("a,b,label\n1,2,yes\n2,1\n3,5,yes\n4,3,no\n", "label", r"line 3: 2 fields.*header has 3"),
        ("a,b,label\n1,2,yes\n2,1,\n3,5,yes\n4,3,no\n", "label", r"target column 'label'.*line 3"),
        ("", "label", "empty"),
        ("a,a,label\n1,2,x\n", "label", "distinct"),
    ],
)
def test_csv_bad_input(tmp_path, text, target, pattern):
    with pytest.raises(InvalidInputError, match=pattern):
        data.load_csv(_write(tmp_path, text), target)


def test_csv_missing_file(tmp_path):
    with pytest.raises(InvalidInputError, match="does not exist"):
        data.load_csv(tmp_path / "nope.csv", "label")


def test_csv_constant_column_dropped(tmp_path):
    ds = data.load_csv(_write(tmp_path, "a,c,label\n1,7,0\n2,7,1\n3,7,0\n4,7,1\n"), "label")
    assert ds.dropped == ("c",) and ds.feature_names == ("a",)


# ---- splits -------------------------------------------------------------------------------
def _is_partition(sp: data.Split, n: int, complete: bool = True) -> None:
    allidx = np.concatenate(sp.parts)
    assert np.unique(allidx).size == allidx.size  # disjoint
    assert allidx.min() >= 0 and allidx.max() < n
    if complete:
        assert allidx.size == n


def test_iid_split():
    y = np.where(np.arange(103) % 3 == 0, 1.0, -1.0)
    sp = data.split(y, 10, "iid", seed=3)
    _is_partition(sp, 103)
    assert sp.sizes.max() - sp.sizes.min() <= 1
    again = data.split(y, 10, "iid", seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(sp.parts, again.parts, strict=True))
    other = data.split(y, 10, "iid", seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(sp.parts, other.parts, strict=True))


def test_label_skew_pure_and_mixed():
    y = np.array([-1.0] * 200 + [1.0] * 200)
    pure = data.split(y, 4, "label_skew", skew=0.0, seed=0)
    _is_partition(pure, 400)
    owners = [np.unique(y[p]) for p in pure.parts]
    assert all(o.size == 1 for o in owners)
    assert [float(o[0]) for o in owners] == [-1.0, 1.0, -1.0, 1.0]  # class k mod 2 when balanced
    mixed = data.split(y, 4, "label_skew", skew=0.5, seed=0)
    _is_partition(mixed, 400)
    for k, p in enumerate(mixed.parts):
        own = -1.0 if k % 2 == 0 else 1.0
        # half from the pooled mixture (half of it the own class), half own class: 75 %
        assert np.mean(y[p] == own) == pytest.approx(0.75, abs=0.01)
    iid_like = data.split(y, 4, "label_skew", skew=1.0, seed=0)
    assert all(np.mean(y[p] == 1.0) == pytest.approx(0.5, abs=0.01) for p in iid_like.parts)


def test_label_skew_unbalanced_classes_leaves_samples_out():
    y = np.array([-1.0] * 30 + [1.0] * 70)
    sp = data.split(y, 5, "label_skew", skew=0.0, seed=1)
    _is_partition(sp, 100, complete=False)
    assert len(set(sp.sizes)) == 1
    assert sp.unused == 100 - sp.sizes.sum()
    minority = sum(np.all(y[p] == -1.0) for p in sp.parts)
    assert minority == 2  # 30 % of 5 agents, rounded: agents own classes in proportion
    # the largest common size: 2 minority agents with 15 each, 3 majority agents with 15 ≤ 70/3
    assert sp.sizes[0] == 15


def test_dirichlet_split():
    y = np.array([-1.0] * 300 + [1.0] * 300)
    sp = data.split(y, 6, "dirichlet", alpha=100.0, seed=2)
    _is_partition(sp, 600)
    # with α = 100 the class shares of every agent stay near 1/2
    assert all(abs(np.mean(y[p] == 1.0) - 0.5) < 0.2 for p in sp.parts)
    skewed = data.split(y, 6, "dirichlet", alpha=0.3, seed=2)
    _is_partition(skewed, 600)
    assert max(abs(np.mean(y[p] == 1.0) - 0.5) for p in skewed.parts) > 0.3


def test_split_errors_name_agent_and_split():
    y = np.array([-1.0, 1.0] * 5)
    with pytest.raises(
        InvalidInputError, match=r"split iid \(seed=0\) gives agent 4 1 sample\(s\)"
    ):
        data.split(y, 6, "iid", seed=0)
    y = np.array([-1.0] * 50 + [1.0] * 50)
    with pytest.raises(
        InvalidInputError, match=r"dirichlet \(alpha=0.01.*agent \d+ .*larger alpha"
    ):
        data.split(y, 20, "dirichlet", alpha=0.01, seed=0)
    with pytest.raises(InvalidInputError, match="skew"):
        data.split(y, 2, "label_skew", skew=1.5)
    with pytest.raises(InvalidInputError, match="allowed: iid, label_skew, dirichlet"):
        data.split(y, 2, "random")
