"""YASA's pre-trained LightGBM sleep-staging classifiers, evaluated with numpy.

The classifiers ship inside the installed ``yasa`` wheel
(``yasa/classifiers/clf_<channels>[+demo]_lgb_<version>.joblib``) and stay the single source
of truth: this module finds the file *without importing yasa* (``importlib.util.find_spec``),
unpickles it once with joblib/lightgbm, and converts its 2000 depth-≤5 trees into flat arrays
(heap layout) cached as ``.npz`` in the user cache folder (``$NEXUS_CACHE_DIR``, else
``$XDG_CACHE_HOME/bedtime-nexus``, else ``~/.cache/bedtime-nexus``).
Later processes load the arrays in milliseconds, without lightgbm or scikit-learn.

Prediction reproduces LightGBM's: split ``x <= threshold`` goes left, NaN counts as 0
(missing type "None" in every split of these models), inputs are float32 as YASA feeds them,
class scores are summed over trees and turned into probabilities with a softmax. The compiled
walk compares float32 inputs with float32 thresholds rounded down (the same decisions), every
node of a tree for a block of rows at once, then follows the decisions to the leaves.
"""

from __future__ import annotations

import importlib.util
import os
import re
import warnings
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from nexus.core.errors import ConfigError, InvalidInputError
from nexus.core.files import atomic_path
from nexus.core.log import logger
from nexus.dsp._jit import kernel

FloatArray = npt.NDArray[np.float64]

#: our stage order (W N1 N2 N3 R) → LightGBM class labels used in YASA's models
MODEL_CLASSES: tuple[str, ...] = ("W", "N1", "N2", "N3", "R")
_CACHE_VERSION = 1


def classifier_dir() -> Path:
    """Folder of YASA's classifier files in the installed ``yasa`` package (yasa is not imported)."""
    spec = importlib.util.find_spec("yasa")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("The 'yasa' package is not installed; install it with 'pip install yasa>=0.6.5'.")
    folder = Path(next(iter(spec.submodule_search_locations))) / "classifiers"
    if not folder.is_dir():
        raise ConfigError(f"yasa is installed but has no classifiers folder ({folder}); reinstall yasa.")
    return folder


def model_name(kinds: tuple[str, ...] | list[str], demographics: bool = False) -> str:
    """YASA's classifier name for the channel kinds present, e.g. ``"clf_eeg+eog+emg"``."""
    if "eeg" not in kinds:
        raise InvalidInputError("Sleep staging needs an EEG channel; none was given.")
    name = "clf_eeg" + "".join(f"+{k}" for k in ("eog", "emg") if k in kinds)
    return name + ("+demo" if demographics else "")


def classifier_path(kinds: tuple[str, ...] | list[str], demographics: bool = False) -> Path:
    """Path of the newest YASA classifier file for the channel kinds present."""
    name = model_name(kinds, demographics)
    folder = classifier_dir()
    found = []
    for p in folder.glob(f"{name}_lgb_*.joblib"):
        m = re.fullmatch(re.escape(name) + r"_lgb_([\d.]+)\.joblib", p.name)
        if m:
            found.append((tuple(int(v) for v in m.group(1).split(".")), p))
    if not found:
        raise ConfigError(f"No YASA classifier '{name}' in {folder}; reinstall yasa.")
    return max(found)[1]


@dataclass(frozen=True)
class TreeModel:
    """A LightGBM multiclass forest as flat arrays (complete binary trees in heap order).

    Attributes
    ----------
    feature_names : tuple of str
        Input columns, in the order of ``X``.
    feature : ndarray of int32, shape (n_trees, 2**depth - 1)
        Feature index of each internal node.
    threshold : ndarray of float64, shape (n_trees, 2**depth - 1)
        Split thresholds (``x <= t`` goes left).
    leaf : ndarray of float64, shape (n_trees, 2**depth)
        Leaf values.
    class_of_tree : ndarray of int8, shape (n_trees,)
        Output column (W, N1, N2, N3, R order) each tree adds to.
    """

    feature_names: tuple[str, ...]
    feature: npt.NDArray[np.int32]
    threshold: FloatArray
    leaf: FloatArray
    class_of_tree: npt.NDArray[np.int8]

    @cached_property
    def _threshold32(self) -> npt.NDArray[np.float32]:
        """The thresholds as float32 for float32 inputs (same decisions, half the cache footprint)."""
        return _float32_floor(self.threshold)

    @property
    def depth(self) -> int:
        """Depth of the (padded) trees."""
        return int(np.log2(self.leaf.shape[1]))

    def predict_proba(self, x: npt.ArrayLike, engine: str | None = None) -> FloatArray:
        """Stage probabilities (W, N1, N2, N3, R) for each row of ``x``.

        Parameters
        ----------
        x : array-like, shape (n_rows, n_features)
            Features in :attr:`feature_names` order; rounded to float32 as YASA feeds LightGBM.
        engine : str, optional
            Ignored (the compiled walk is the only one); kept so that older calls still work.

        Returns
        -------
        ndarray, shape (n_rows, 5)
        """
        x32 = np.asarray(x, dtype=np.float32)
        if x32.ndim != 2 or x32.shape[1] != len(self.feature_names):
            raise InvalidInputError(
                f"Invalid feature matrix: expected shape (n, {len(self.feature_names)}), got {x32.shape}."
            )
        x32 = np.where(np.isnan(x32), np.float32(0.0), x32)
        scores = walk(x32, self.feature, self._threshold32, self.leaf, self.class_of_tree.astype(np.int64))
        return _softmax(scores)


def _float32_floor(t: FloatArray) -> npt.NDArray[np.float32]:
    """Largest float32 ≤ each threshold: for a float32 ``x``, ``x <= t`` exactly when ``x`` is ≤ that value."""
    t32 = t.astype(np.float32)
    above = t32.astype(np.float64) > t
    t32[above] = np.nextafter(t32[above], np.float32(-np.inf))
    return t32


def _softmax(scores: FloatArray) -> FloatArray:
    scores = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=1, keepdims=True)


#: deepest trees the compiled walk takes (one bit per inner node in an int32)
MAX_DEPTH = 5


@kernel
def walk(x, feature, threshold, leaf, cls):
    """Class scores (rows, 5) of the rows of ``x`` (float32): the sum of the leaves each row reaches.

    For trees of depth ≤ :data:`MAX_DEPTH` (``feature``, ``threshold`` float32, ``leaf`` and
    ``cls`` as :class:`TreeModel`, ``cls`` int64). Rows are taken in blocks whose features are stored feature-major
    (each feature a contiguous run of the block's rows). For each tree, every inner node is
    first compared for all rows of the block at once (a vectorised comparison per node, the
    result one bit per node and row); the walk then follows those bits level by level, again
    for all rows at once, and adds the leaf to the row's class score. The decisions, and the
    order in which the leaves are added, are those of a plain walk, so the scores are the same.
    """
    n_rows, n_feat = x.shape
    n_trees, n_inner = feature.shape
    depth = 0
    while (1 << depth) - 1 < n_inner:
        depth += 1
    out = np.zeros((n_rows, 5))
    block = 128  # rows per block: a feature's values fill a few cache lines, the bits one more
    xt = np.zeros((n_feat, block), np.float32)
    bits = np.zeros(block, np.int32)  # bit i: the row goes right at inner node i
    node = np.zeros(block, np.int32)
    acc = np.zeros((5, block))
    zero = np.int32(0)
    tail = n_inner - n_inner % 4
    for b0 in range(0, n_rows, block):
        nb = min(block, n_rows - b0)
        for r in range(nb):
            for f in range(n_feat):
                xt[f, r] = x[b0 + r, f]
        acc[:, :] = 0.0
        for t in range(n_trees):
            ft = feature[t]
            th = threshold[t]
            bits[:] = 0
            for i in range(0, tail, 4):  # four nodes per pass over the bits
                x0, x1, x2, x3 = xt[ft[i]], xt[ft[i + 1]], xt[ft[i + 2]], xt[ft[i + 3]]
                t0, t1, t2, t3 = th[i], th[i + 1], th[i + 2], th[i + 3]
                m0, m1, m2, m3 = np.int32(1 << i), np.int32(2 << i), np.int32(4 << i), np.int32(8 << i)
                for r in range(block):  # branch-free selects: vectorised
                    bits[r] |= ((m0 if x0[r] > t0 else zero) | (m1 if x1[r] > t1 else zero)) | (
                        (m2 if x2[r] > t2 else zero) | (m3 if x3[r] > t3 else zero)
                    )
            for i in range(tail, n_inner):
                xi = xt[ft[i]]
                ti = th[i]
                mi = np.int32(1 << i)
                for r in range(block):
                    bits[r] |= mi if xi[r] > ti else zero
            node[:] = 0
            for _ in range(depth):
                for r in range(block):
                    nd = node[r]
                    node[r] = np.int32(2 * nd + 1 + ((bits[r] >> nd) & 1))
            lf = leaf[t]
            a = acc[cls[t]]
            for r in range(block):
                a[r] += lf[node[r] - n_inner]
        for r in range(nb):
            for c in range(5):
                out[b0 + r, c] = acc[c, r]
    return out


def _cache_dir() -> Path:
    if os.environ.get("NEXUS_CACHE_DIR"):
        return Path(os.environ["NEXUS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bedtime-nexus"


def _convert(path: Path) -> TreeModel:
    """Unpickle a YASA classifier (slow: lightgbm + scikit-learn) and flatten its trees."""
    import joblib

    with warnings.catch_warnings():
        # the models were pickled with scikit-learn 0.24; loading them warns but works
        warnings.simplefilter("ignore")
        clf = joblib.load(path)
    dump = clf.booster_.dump_model()
    names = tuple(dump["feature_names"])
    classes = [str(c) for c in clf.classes_]
    col_of_class = [MODEL_CLASSES.index(c) for c in classes]
    trees = dump["tree_info"]
    depth = max(1, max(_depth(t["tree_structure"]) for t in trees))
    if depth > MAX_DEPTH:
        raise ConfigError(
            f"Unsupported YASA classifier {path.name}: trees {depth} levels deep, expected at most {MAX_DEPTH}."
        )
    n_inner = 2**depth - 1
    feature = np.zeros((len(trees), n_inner), dtype=np.int32)
    threshold = np.full((len(trees), n_inner), np.inf)
    leaf = np.zeros((len(trees), n_inner + 1))
    for i, t in enumerate(trees):
        _fill(t["tree_structure"], 0, depth, feature[i], threshold[i], leaf[i])
    n_class = int(dump["num_class"])
    cls = np.array([col_of_class[i % n_class] for i in range(len(trees))], dtype=np.int8)
    return TreeModel(names, feature, threshold, leaf, cls)


def _depth(node: dict[str, Any]) -> int:
    if "leaf_value" in node:
        return 0
    return 1 + max(_depth(node["left_child"]), _depth(node["right_child"]))


def _fill(node: dict[str, Any], i: int, depth: int, feat: Any, thr: Any, leaf: Any) -> None:
    """Write ``node`` at heap position ``i``; a leaf above the last level is padded with always-left splits."""
    n_inner = 2**depth - 1
    if i >= n_inner:  # leaf level
        leaf[i - n_inner] = node["leaf_value"]
        return
    if "leaf_value" in node:
        thr[i] = np.inf  # always left; fill both children so the value is reached either way
        _fill(node, 2 * i + 1, depth, feat, thr, leaf)
        _fill(node, 2 * i + 2, depth, feat, thr, leaf)
        return
    if node.get("decision_type", "<=") != "<=" or node.get("missing_type", "None") != "None":
        raise ConfigError("Unsupported split in the YASA classifier (expected '<=' with no missing type).")
    feat[i] = node["split_feature"]
    thr[i] = node["threshold"]
    _fill(node["left_child"], 2 * i + 1, depth, feat, thr, leaf)
    _fill(node["right_child"], 2 * i + 2, depth, feat, thr, leaf)


def _save(model: TreeModel, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        np.savez(
            fh,
            feature_names=np.array(model.feature_names),
            feature=model.feature,
            threshold=model.threshold,
            leaf=model.leaf,
            class_of_tree=model.class_of_tree,
        )


@lru_cache(maxsize=16)
def load_model(kinds: tuple[str, ...], demographics: bool = False) -> TreeModel:
    """Load YASA's classifier for the channel kinds present (from the array cache when possible).

    Parameters
    ----------
    kinds : tuple of str
        Channel kinds present: ``("eeg",)``, ``("eeg", "eog")``, ``("eeg", "emg")`` or ``("eeg", "eog", "emg")``.
    demographics : bool
        Use the classifier that also takes age and sex.
    """
    path = classifier_path(kinds, demographics)
    st = path.stat()
    cached = _cache_dir() / f"{path.stem}-{st.st_size}-{st.st_mtime_ns}-v{_CACHE_VERSION}.npz"
    if cached.is_file():
        try:
            with np.load(cached, allow_pickle=False) as z:
                return TreeModel(
                    tuple(str(s) for s in z["feature_names"]),
                    z["feature"],
                    z["threshold"],
                    z["leaf"],
                    z["class_of_tree"],
                )
        except (OSError, ValueError, KeyError):
            logger.warning("Model cache %s is unreadable; rebuilding it.", cached)
    logger.info("Converting YASA classifier %s (once; cached in %s).", path.name, cached.parent)
    model = _convert(path)
    try:
        _save(model, cached)
    except OSError as exc:  # read-only home: keep the model in memory only
        logger.warning(
            "Cannot cache the staging model in %s (%s); it will be converted again next time.", cached.parent, exc
        )
    return model
