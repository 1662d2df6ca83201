"""Installation for tf1norm; see README.md for the two fresh-machine commands."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "tf1norm" / "__init__.py").read_text())[1]

setup(
    name="tf1norm",
    version=VERSION,
    description=("Weight constraints, normalization and regularization for graph-mode "
                 "TensorFlow (tf.compat.v1, tf.Session, tf-slim)"),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["tf1norm", "tf1norm.*"]),
    # The tested range: CI runs Python 3.10 with TensorFlow 2.16 and Python 3.13
    # with TensorFlow 2.21 (.ci/cell), and the full suite on Python 3.11, TF 2.21.
    python_requires=">=3.10,<3.14",
    install_requires=[
        "tensorflow>=2.16,<2.22",
        "tf-keras>=2.16,<2.22",
        "tf-slim>=1.1",
        "numpy>=1.23",
        "scipy>=1.9",  # HiGHS milp for exact output bounds
        "tqdm>=4.60",  # the command line's progress bars
    ],
    extras_require={
        "examples": ["scikit-learn>=1.0"],
        "onnx": ["onnx>=1.14"],  # tf1norm.bounds.from_onnx
        "plots": ["matplotlib>=3.5"],  # tf1norm plot norms, tf1norm bounds --plot
        "test": ["pytest>=7", "scikit-learn>=1.0", "matplotlib>=3.5", "onnx>=1.14"],
    },
    entry_points={"console_scripts": ["tf1norm=tf1norm.cli:main"]},
    license="Apache-2.0",
    classifiers=[
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
    ],
)
