"""Bad input to the training layers and hooks (cuda-convnet layer params, batch norm,
slim_scope, check_train_op, ConstraintHook, summaries) is answered at graph
construction with a message naming the argument, the value and the fix. The train
op's own cases are in ``test_bad_input_train``.

``CASES`` is graded by ``tools/audit_bad_input.py``; every case must be "clear".
"""

import pathlib
import sys

import pytest

import tf1norm
from tf1norm._src.compat import tf
from bad_input_train_helpers import (
    _pvm,
    _layer_params,
    _scratch,
    _nested_slim_scopes,
    _summary_hook,
    GOOD,
)

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tools"))
from audit_bad_input import Case, grade  # noqa: E402

V, E = ValueError, TypeError


CASES = [
    # cuda-convnet
    Case(
        "PerVariableMomentumOptimizer",
        lambda: _pvm(lambda w: {w: (-0.1, 0.9)}),
        V,
        ["PerVariableMomentumOptimizer", "`learning_rate`", "-0.1"],
    ),
    Case(
        "PerVariableMomentumOptimizer",
        lambda: _pvm(lambda w: {w: (0.1, 1.5)}),
        V,
        ["PerVariableMomentumOptimizer", "`momentum`", "[0, 1)", "1.5"],
    ),
    Case(
        "PerVariableMomentumOptimizer",
        lambda: _pvm(lambda w: {"w": (0.1, 0.9)}),
        E,
        ["PerVariableMomentumOptimizer", "`hyperparameters`", "'w'"],
    ),
    Case(
        "PerVariableMomentumOptimizer",
        lambda: _pvm(lambda w: {w: 0.1}),
        E,
        ["PerVariableMomentumOptimizer", "`hyperparameters`", "0.1"],
    ),
    Case(
        "PerVariableMomentumOptimizer",
        lambda: _pvm(lambda w: 3),
        E,
        ["PerVariableMomentumOptimizer", "`hyperparameters`", "3"],
    ),
    Case(
        "layer_params",
        lambda: tf1norm.layer_params("/nonexistent/layers.cfg"),
        V,
        ["layer_params", "`path_or_dict`", "/nonexistent/layers.cfg"],
    ),
    Case(
        "layer_params",
        lambda: tf1norm.layer_params(_scratch()),
        V,
        ["layer_params", "`path_or_dict`", "IsADirectoryError", "tf1norm_bad_input_"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(b"\xff\xfe\x00\x81", "binary.cfg"),
        V,
        ["layer_params", "binary.cfg", "UnicodeDecodeError"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params("epsW=0.1\n", "headless.cfg"),
        V,
        ["layer_params", "headless.cfg", "no section headers"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD + GOOD, "twice.cfg"),
        V,
        ["layer_params", "twice.cfg", "line 7", "'fc' already exists"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("momW=0.9", "momW=1.5")),
        V,
        ["layer_params [fc]", "`momW`", "[0, 1)", "1.5"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("epsW=0.01", "epsW=1e300")),
        V,
        ["layer_params [fc]", "`epsW`", "1e+300"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("wc=0.004", "wc=-1")),
        V,
        ["layer_params [fc]", "`wc`", "-1.0"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("epsB=0.02", "epsB=nan")),
        V,
        ["layer_params [fc]", "`epsB`", "nan"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("momB=0.9\n", "")),
        V,
        ["layer_params", "[fc]", "momB"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("epsW=0.01", "epsW=0.01,0.02")),
        V,
        ["layer_params", "[fc]", "epsW", "'0.01,0.02'"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD.replace("[fc]", "[conv]")),
        V,
        ["layer_params", "fc/weights", "no layer section", "['conv']"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD + GOOD.replace("[fc]", "[fc2]")),
        V,
        ["layer_params", "['fc2']", "match no trained variable"],
    ),
    Case(
        "layer_params",
        lambda: _layer_params(GOOD, variables=["fc/weights"]),
        E,
        ["layer_params", "`variables`", "'fc/weights'"],
    ),
    Case(
        "layer_params",
        lambda: tf1norm.layer_params(3),
        E,
        ["layer_params", "`path_or_dict`", "int"],
    ),
    Case(
        "layer_params",
        lambda: tf1norm.layer_params({"fc": 0.1}),
        E,
        ["layer_params", "`path_or_dict`", "'fc'", "0.1"],
    ),
    Case(
        "LayerParams",
        lambda: tf1norm.LayerParams({"fc": {}}, ["w"]),
        E,
        ["LayerParams", "`variables`", "'w'"],
    ),
    # batch norm
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([2, 3], tf.int32)),
        E,
        ["batch_norm", "`x`", "int32"],
    ),
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([3])),
        V,
        ["batch_norm", "`x`", "rank", "1"],
    ),
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([2, 3]), training="no"),
        E,
        ["batch_norm", "`training`", "'no'"],
    ),
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([2, 3]), momentum=1.5),
        V,
        ["batch_norm", "`momentum`", "1.5"],
    ),
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([2, 3]), epsilon=0.0),
        V,
        ["batch_norm", "`epsilon`", "0.0"],
    ),
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([2, 3, 4]), axis=0),
        V,
        ["batch_norm", "`axis`", "got 0"],
    ),
    Case(
        "batch_norm",
        lambda: tf1norm.batch_norm(tf.ones([0, 3]), training=True),
        V,
        ["batch_norm", "`x`", "empty batch", "(0, 3)", "training=False"],
    ),
    # slim_scope
    Case("slim_scope", _nested_slim_scopes, V, ["slim_scope", "`max_norm`=2.0", "max_norm=1.0"]),
    Case(
        "slim_scope",
        lambda: tf1norm.slim_scope(weight_norm=True, spectral_norm=True).__enter__(),
        V,
        ["slim_scope", "`weight_norm`", "`spectral_norm`"],
    ),
    Case(
        "slim_scope",
        lambda: tf1norm.slim_scope().__enter__(),
        V,
        ["slim_scope", "nothing to apply"],
    ),
    Case(
        "slim_scope",
        lambda: tf1norm.slim_scope(max_norm=-1.0).__enter__(),
        V,
        ["slim_scope", "`max_norm`", "-1.0"],
    ),
    Case(
        "slim_scope",
        lambda: tf1norm.slim_scope(l2=-1.0).__enter__(),
        V,
        ["slim_scope", "`l2`", ">= 0", "-1.0"],
    ),
    Case(
        "slim_scope",
        lambda: tf1norm.slim_scope(l2=0.1, name_filter="([").__enter__(),
        V,
        ["slim_scope", "`name_filter`", "'(['"],
    ),
    Case(
        "slim_scope",
        lambda: tf1norm.slim_scope(spectral_norm={"bogus": 1}).__enter__(),
        E,
        ["slim_scope", "`spectral_norm`", "bogus"],
    ),
    # checks, hooks, summaries
    Case(
        "check_train_op",
        lambda: tf1norm.check_train_op(tf.no_op(), "max_norm"),
        E,
        ["check_train_op", "`collections_to_check`", "'max_norm'"],
    ),
    Case(
        "check_train_op",
        lambda: tf1norm.check_train_op(None),
        E,
        ["check_train_op", "`train_op`", "None"],
    ),
    Case(
        "check_train_op",
        lambda: tf1norm.check_train_op("train_op"),
        E,
        ["check_train_op", "`train_op`", "'train_op'"],
    ),
    Case(
        "check_train_op",
        lambda: tf1norm.check_train_op(tf.no_op(), [3]),
        E,
        ["check_train_op", "`collections_to_check`", "3"],
    ),
    Case(
        "ConstraintHook",
        lambda: tf1norm.ConstraintHook(3),
        E,
        ["ConstraintHook", "`collection`", "3"],
    ),
    Case(
        "ConstraintHook",
        lambda: tf1norm.ConstraintHook("nothing").begin(),
        V,
        ["ConstraintHook", "'nothing'", "empty"],
    ),
    Case(
        "summarize_chain",
        lambda: tf1norm.summarize_chain(histograms="yes"),
        E,
        ["summarize_chain", "`histograms`", "'yes'"],
    ),
    Case(
        "summarize_chain",
        lambda: tf1norm.summarize_chain(collections="summaries"),
        E,
        ["summarize_chain", "`collections`", "'summaries'"],
    ),
    Case(
        "ChainSummaryHook",
        lambda: _summary_hook(every_n_steps=0),
        V,
        ["ChainSummaryHook", "`every_n_steps`", "0"],
    ),
    Case(
        "ChainSummaryHook",
        lambda: _summary_hook(output_dir=3),
        E,
        ["ChainSummaryHook", "`output_dir`", "3"],
    ),
    Case(
        "ChainSummaryHook",
        lambda: _summary_hook(train_op="step"),
        E,
        ["ChainSummaryHook", "`train_op`", "'step'"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[f"{i}-{c.apis[0]}" for i, c in enumerate(CASES)])
def test_bad_input_is_answered_clearly(case):
    verdict, detail = grade(case)
    assert verdict == "clear", detail
