"""The measurement subcommands of ``python -m sessrec_bench`` hand their arguments to their module."""

from __future__ import annotations

import pytest
from sessrec_bench.__main__ import MEASUREMENTS, main


@pytest.mark.parametrize("name", sorted(MEASUREMENTS))
def test_a_measurement_subcommand_parses_its_own_arguments(name, capsys):
    with pytest.raises(SystemExit) as done:
        main(["-v", name, "--help"])
    assert done.value.code == 0
    assert f"usage: python -m sessrec_bench {name}" in capsys.readouterr().out


def test_the_etl_module_rejects_an_unknown_backend(capsys):
    with pytest.raises(SystemExit) as done:
        main(["etl", "--backend", "polars"])
    assert done.value.code == 2 and "invalid choice: 'polars'" in capsys.readouterr().err
