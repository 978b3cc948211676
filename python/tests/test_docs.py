"""The examples in the package's docstrings and in the README run."""

from __future__ import annotations

import doctest

import optscrub
import optscrub.polars

from conftest import DEMO, REPO, text_table


def globs(store_path):
    return {
        "optscrub": optscrub,
        "store_path": str(store_path),
        "store": optscrub.Store(store_path),
        "recipients": text_table(DEMO / "campaigns" / "spring-sale.csv"),
        "recipients_csv": str(DEMO / "campaigns" / "spring-sale.csv"),
    }


def test_docstrings(demo_store):
    for module in (optscrub, optscrub.polars):
        r = doctest.testmod(module, extraglobs=globs(demo_store), optionflags=doctest.ELLIPSIS)
        assert r.attempted > 0 and r.failed == 0, module.__name__


def test_readme(demo_store):
    r = doctest.testfile(
        str(REPO / "README.md"), module_relative=False, globs=globs(demo_store),
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert r.attempted > 0 and r.failed == 0
