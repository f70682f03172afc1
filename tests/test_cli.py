"""The command line: one subcommand per job, each with --help, and clear errors for bad configuration."""
from __future__ import annotations

import subprocess
import sys

import pytest

from casemix.cli import JOBS, build_parser, main


@pytest.mark.parametrize("command", sorted(JOBS))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: casemix {command}" in out and "--conf" in out


def test_a_bad_configuration_file_exits_2_with_the_message(tmp_path, capsys):
    bad = tmp_path / "conf" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text("name: x\nstorage:\n  enigne: delta-rs\n", encoding="utf-8")
    assert main(["tables", "--conf", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "storage.enigne" in err


def test_console_script_and_module_entry_points_are_installed():
    done = subprocess.run([sys.executable, "-m", "casemix", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "pipeline" in done.stdout
    assert set(build_parser()._subparsers._group_actions[0].choices) == set(JOBS)
