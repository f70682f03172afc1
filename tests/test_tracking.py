"""The MLflow helper opens the configured store and tags every run with commit, config and input versions."""
from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from casemix.tracking import git_commit, start_run


def test_a_run_is_logged_to_the_configured_store_and_can_be_read_back(settings, tmp_path):
    with start_run(settings, "grouping", job="test-job", run_name="r1",
                   inputs={"claims": 4, "grouped_claims": None}) as run:
        import mlflow

        mlflow.log_param("scheme", "chs-drg-1.1")
        mlflow.log_metric("grouped_share", 0.97)
        (tmp_path / "note.txt").write_text("hello", encoding="utf-8")
        mlflow.log_artifact(str(tmp_path / "note.txt"))
        run_id = run.info.run_id

    client = MlflowClient(tracking_uri=settings.tracking_uri)
    back = client.get_run(run_id)
    assert back.info.status == "FINISHED"
    assert client.get_experiment(back.info.experiment_id).name == "grouping"
    assert back.data.params == {"scheme": "chs-drg-1.1"}
    assert back.data.metrics == {"grouped_share": 0.97}
    tags = back.data.tags
    assert tags["casemix.config"] == "local"
    assert tags["casemix.job"] == "test-job"
    assert tags["casemix.input.claims.version"] == "4"
    assert tags["casemix.input.grouped_claims.version"] == "none"
    assert tags["casemix.git_commit"] == git_commit(settings.root)
    # the store is the sqlite file of the settings and artifacts land under the configured root
    assert Path(settings.tracking_uri[len("sqlite:///"):]).is_file()
    artifacts = [a.path for a in client.list_artifacts(run_id)]
    assert artifacts == ["note.txt"]
    assert str(tmp_path / "artifacts") in back.info.artifact_uri


def test_a_failing_block_marks_the_run_failed(settings):
    import pytest

    with pytest.raises(RuntimeError):
        with start_run(settings, "settlement", job="boom") as run:
            run_id = run.info.run_id
            raise RuntimeError("boom")
    assert MlflowClient(tracking_uri=settings.tracking_uri).get_run(run_id).info.status == "FAILED"


def test_git_commit_can_be_pinned_by_environment(monkeypatch):
    monkeypatch.setenv("CASEMIX_GIT_COMMIT", "abc123")
    assert git_commit() == "abc123"


def test_opening_the_store_leaves_the_environment_overrides_alone(settings, monkeypatch):
    import os

    from casemix.config import load_settings
    from casemix.tracking import configure_tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    configure_tracking(settings)  # mlflow itself would export MLFLOW_TRACKING_URI
    assert "MLFLOW_TRACKING_URI" not in os.environ
    # so a configuration loaded afterwards still gets its own store
    assert load_settings(settings.source_file).tracking_uri != settings.tracking_uri
