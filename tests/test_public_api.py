"""The curated public surface: every public name, the module it resolves to, and the lazy map.

``WHERE`` is the public surface written out: each name users reach as
``tf1norm.<name>`` (``__all__`` plus the submodules ``bounds`` and
``slim_layers``) and the module that defines it. Moving a module or renaming a
name changes this table on purpose, never by accident.
"""

import ast
import importlib
import pathlib
import pkgutil
import types

import pytest

import tf1norm

WHERE = {
    "adamw": "tf1norm.training.weight_decay",
    "add_decoupled_weight_decay": "tf1norm.training.weight_decay",
    "add_gradient_noise": "tf1norm.training.transforms",
    "add_l2_to_gradients": "tf1norm.training.weight_decay",
    "attach_transforms": "tf1norm.tf2.keras_fit",
    "batch_norm": "tf1norm.graph.batch_norm",
    "bounds": "tf1norm.bounds",
    "ChainSummaryHook": "tf1norm.training.summaries",
    "check_train_op": "tf1norm.training.check",
    "clip_by_global_norm": "tf1norm.training.transforms",
    "clip_by_norm": "tf1norm.training.transforms",
    "clip_by_value": "tf1norm.training.transforms",
    "Constraint": "tf1norm.graph.constraints",
    "ConstraintHook": "tf1norm.training.hooks",
    "create_train_op": "tf1norm.training.train",
    "embedding_lookup": "tf1norm.graph.embedding",
    "export_plain_checkpoint": "tf1norm.graph.reparam_tools",
    "Finding": "tf1norm.training.check",
    "keys": "tf1norm.graph.keys",
    "l1_l2_regularizer": "tf1norm.graph.regularizers",
    "l1_regularizer": "tf1norm.graph.regularizers",
    "l2_regularizer": "tf1norm.graph.regularizers",
    "layer_params": "tf1norm.training.cuda_convnet",
    "LayerParams": "tf1norm.training.cuda_convnet",
    "make_train_step": "tf1norm.tf2.step",
    "max_norm": "tf1norm._math.projections",
    "max_norm_regularizer": "tf1norm.graph.regularizers",
    "MaxNorm": "tf1norm.graph.constraints",
    "migration": "tf1norm.tf2.migration",
    "min_max_norm": "tf1norm._math.range_projections",
    "MinMaxNorm": "tf1norm.graph.constraints",
    "multiply_gradients": "tf1norm.training.multipliers",
    "non_neg": "tf1norm._math.range_projections",
    "NonNeg": "tf1norm.graph.constraints",
    "PerVariableMomentumOptimizer": "tf1norm.training.cuda_convnet",
    "project_constraints": "tf1norm.training.transforms",
    "registry": "tf1norm.graph.registry",
    "renorm": "tf1norm._math.projections",
    "require_v1_layers": "tf1norm._src.compat",
    "restore_plain_checkpoint": "tf1norm.graph.reparam_tools",
    "sgd_decay_step": "tf1norm.training.weight_decay",
    "skip_nonfinite": "tf1norm.training.skipping",
    "slim_layers": "tf1norm.graph.slim_layers",
    "slim_scope": "tf1norm.graph.scopes",
    "spectral_norm": "tf1norm._math.reparam",
    "spectral_norm_getter": "tf1norm.graph.getters",
    "spectral_norm_regularizer": "tf1norm.graph.regularizers",
    "SpectralNorm": "tf1norm.graph.constraints",
    "StepContext": "tf1norm.training.transforms",
    "summaries": "tf1norm.training.summaries",
    "summarize_chain": "tf1norm.training.summaries",
    "total_loss": "tf1norm.graph.regularizers",
    "TrainStep": "tf1norm.tf2.step",
    "Transform": "tf1norm.training.transforms",
    "unit_norm": "tf1norm._math.range_projections",
    "UnitNorm": "tf1norm.graph.constraints",
    "weight_norm": "tf1norm._math.reparam",
    "weight_norm_data_init": "tf1norm.graph.data_init",
    "weight_norm_getter": "tf1norm.graph.getters",
}
SUBMODULES_OUTSIDE_ALL = {"bounds", "slim_layers"}  # public as attributes, as before
INIT = pathlib.Path(tf1norm.__file__)


def _where(value):
    return value.__name__ if isinstance(value, types.ModuleType) else value.__module__


def test_the_table_lists_exactly_the_public_names():
    assert set(WHERE) == set(tf1norm.__all__) | SUBMODULES_OUTSIDE_ALL


@pytest.mark.parametrize("name", sorted(WHERE))
def test_every_public_name_resolves_to_its_module(name):
    value = getattr(tf1norm, name)
    assert _where(value) == WHERE[name]
    if not isinstance(value, types.ModuleType):
        assert getattr(importlib.import_module(WHERE[name]), name) is value


def test_all_is_sorted_and_unique():
    assert list(tf1norm.__all__) == sorted(set(tf1norm.__all__))


def test_every_public_function_has_a_docstring():
    undocumented = [
        name
        for name in tf1norm.__all__
        if callable(getattr(tf1norm, name)) and not getattr(tf1norm, name).__doc__
    ]
    assert undocumented == []


def _type_checking_imports():
    """``{public name: module path}`` from the ``if TYPE_CHECKING:`` block of ``__init__``."""
    tree = ast.parse(INIT.read_text())
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    found = {}
    for statement in block.body:
        for alias in statement.names:
            name = alias.asname or alias.name
            found[name] = (
                f"{statement.module}.{alias.name}"
                if name in (tf1norm._PUBLIC_MODULES)
                else statement.module
            )
    return found


def test_static_imports_mirror_the_lazy_maps():
    """What griffe/mkdocstrings and type checkers read is what ``__getattr__`` loads."""
    lazy = {**tf1norm._PUBLIC_NAMES, **tf1norm._PUBLIC_MODULES}
    assert _type_checking_imports() == lazy
    assert set(lazy) == set(WHERE)
    assert {name: _where(getattr(tf1norm, name)) for name in lazy} == WHERE


def test_importing_every_module_shadows_no_public_name():
    """No module of the package is bound over a public name (no custom module class needed)."""
    pytest.importorskip("tf_slim")
    before = {name: getattr(tf1norm, name) for name in WHERE}
    for module in pkgutil.walk_packages(tf1norm.__path__, "tf1norm."):
        if module.name != "tf1norm.__main__":
            importlib.import_module(module.name)
    assert {name: getattr(tf1norm, name) for name in WHERE} == before
    assert type(tf1norm) is types.ModuleType


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'batch_normalization'"):
        tf1norm.batch_normalization  # noqa: B018
    assert "create_train_op" in dir(tf1norm) and "slim_layers" in dir(tf1norm)
