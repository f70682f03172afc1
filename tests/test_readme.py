"""The README stays true: its examples run, and its catalogue and configuration tables match the code."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


@pytest.fixture
def isolated_env(monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("CASEMIX_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CASEMIX_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return tmp_path


def test_python_examples_run(spark, isolated_env, capsys):
    code = blocks("python")
    assert len(code) >= 2
    namespace: dict = {}
    for block in code:
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own examples
    out = capsys.readouterr().out
    assert f"delta-rs {isolated_env / 'warehouse' / 'claims'} 0 0" in out
    assert "(0, " in out  # pandas shape of the empty claims table


def test_casemix_console_examples_run(spark, isolated_env, capsys):
    from casemix.cli import main

    commands = [line[2:] for block in blocks("console") for line in block.splitlines()
                if line.startswith("$ casemix ")]
    assert commands
    for command in commands:
        argv = shlex.split(command)[1:]
        if "--help" in argv:
            with pytest.raises(SystemExit) as done:
                main(argv)
            assert done.value.code == 0
        else:
            assert main(argv) == 0
    assert '"engine": "delta-rs"' in capsys.readouterr().out


def test_every_job_runs_under_spark_submit(isolated_env):
    spark_submit = Path(sys.executable).with_name("spark-submit")
    if not spark_submit.exists():
        pytest.skip("spark-submit is not installed next to this interpreter")
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYTHONPATH": str(ROOT / "lib")}
    done = subprocess.run(
        [str(spark_submit), "--master", "local[1]", "jobs/show_tables.py", "--conf", "conf/local.yaml"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert '"name": "claims"' in done.stdout


def test_catalogue_section_lists_every_table_with_its_partitions_and_keys():
    from casemix.tables import CATALOGUE

    for t in CATALOGUE.values():
        line = next((l for l in README.splitlines() if l.startswith(f"| `{t.name}` |")), None)
        assert line, f"README's table catalogue misses {t.name}"
        cells = [c.strip() for c in line.split("|")[1:-1]]
        assert cells[1] == (", ".join(f"`{c}`" for c in t.partition_by) or "–")
        assert cells[2].startswith(", ".join(f"`{c}`" for c in t.merge_keys) or "–")
        assert cells[3] == ("yes" if t.change_feed else "no")


def test_configuration_reference_lists_every_setting():
    from pydantic import BaseModel

    from casemix.config import ENV_OVERRIDES, Settings

    def keys(model, prefix=""):
        for name, field in model.model_fields.items():
            if field.exclude:
                continue
            ann = field.annotation
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                yield from keys(ann, f"{prefix}{name}.")
            else:
                yield prefix + name

    for key in keys(Settings):
        assert f"| `{key}` |" in README, f"README's configuration reference misses {key}"
    for var in ENV_OVERRIDES:
        assert f"`{var}`" in README
