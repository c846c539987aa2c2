"""The ``lossd`` command line: ``serve``, ``losses`` and ``eval``.

Most tests call ``main(argv)`` in-process; two run real processes (the installed ``lossd`` script
and ``python -m app.cli serve``). Expected numbers come from the seed example (seed 002, printed by
Keras; see tests/helpers.py) or from the hand derivations written next to them.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import app
from app.cli import SERVE_FLAGS, main
from app.settings import Settings, get_settings
from tests.e2e.conftest import ServerProcess, lossd_serve_argv
from tests.helpers import SEED_MSE, SEED_PRED, SEED_TRUE, SEED_VALUES
from tests.sdk.expected import CANONICAL_NAMES

LOSSD = Path(sys.executable).parent / "lossd"  # the console script pip installed in the venv
# Seed 002's example as a user's files hold it: floats (SEED_MSE is its mean_squared_error).
Y_TRUE = [[float(x) for x in row] for row in SEED_TRUE]
Y_PRED = [[float(x) for x in row] for row in SEED_PRED]


def write(path: Path, data: Any) -> Path:
    """Write ``data`` to ``path`` in the format its suffix names."""
    if path.suffix == ".npy":
        np.save(path, np.asarray(data))
    elif path.suffix == ".json":
        path.write_text(json.dumps(data))
    else:
        rows = data if isinstance(data[0], list) else [[x] for x in data]
        path.write_text("\n".join(",".join(str(x) for x in row) for row in rows) + "\n")
    return path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """Run ``lossd eval ... --json`` in-process and return the parsed result."""
    assert main([*argv, "--json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out)
    return result


def fail(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must fail with status 1 and return its one-line stderr."""
    assert main(list(argv)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a command that must be a usage error (status 2) and return stderr."""
    with pytest.raises(SystemExit) as exc:
        main(list(argv))
    assert exc.value.code == 2
    return capsys.readouterr().err


@pytest.fixture
def seed_files(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    """The seed example's tensors in each supported format."""
    return {
        fmt: (write(tmp_path / f"t.{fmt}", Y_TRUE), write(tmp_path / f"p.{fmt}", Y_PRED))
        for fmt in ("csv", "json", "npy")
    }


# ---------------------------------------------------------------------------------------------
# lossd eval


@pytest.mark.parametrize("fmt", ["csv", "json", "npy"])
def test_eval_seed_example_in_each_format(
    fmt: str, seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    t, p = seed_files[fmt]
    result = run_json(capsys, "eval", "MSE", "--y-true", str(t), "--y-pred", str(p))
    assert result["loss"] == "mean_squared_error"
    assert result["shape"] == [2]
    np.testing.assert_allclose(result["per_sample"], SEED_MSE, rtol=1e-6)
    # mean = (2/3 + 1/3) / 2, sum = 1, over 2 samples
    assert result["mean"] == pytest.approx(0.5)
    assert result["sum"] == pytest.approx(1.0)
    assert result["count"] == 2
    assert result["value"] == pytest.approx(0.5)
    assert result["dtype"] == "float32"
    assert result["non_finite"] == 0


@pytest.mark.parametrize(("name", "expected"), SEED_VALUES.items())
def test_eval_every_seed_loss(
    name: str,
    expected: list[float],
    seed_files: dict[str, tuple[Path, Path]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    t, p = seed_files["csv"]
    result = run_json(capsys, "eval", name, "--y-true", str(t), "--y-pred", str(p))
    np.testing.assert_allclose(result["per_sample"], expected, rtol=1e-6)


def test_eval_prints_a_table_by_default(
    seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    t, p = seed_files["json"]
    assert main(["eval", "mse", "--y-true", str(t), "--y-pred", str(p)]) == 0
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["loss", "mean_squared_error"] in lines
    assert ["0", "0.6666667"] in lines  # seed 002's printed values, float32 digits
    assert ["1", "0.33333334"] in lines
    assert ["mean", "0.5"] in lines
    assert ["sum", "1.0"] in lines
    assert ["count", "2"] in lines


def test_eval_sample_weight_and_reduction(
    tmp_path: Path, seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    t, p = seed_files["npy"]
    w = write(tmp_path / "w.csv", [1.0, 3.0])  # one weight per line
    base = ["eval", "mse", "--y-true", str(t), "--y-pred", str(p), "--sample-weight", str(w)]
    # weighted per-sample: [2/3 * 1, 1/3 * 3] = [2/3, 1]; sum 5/3 over 2 samples
    result = run_json(capsys, *base)
    np.testing.assert_allclose(result["per_sample"], [2 / 3, 1.0], rtol=1e-6)
    assert result["sum"] == pytest.approx(5 / 3, rel=1e-6)
    assert result["count"] == 2
    assert result["mean"] == pytest.approx(5 / 6, rel=1e-6)
    # mean_with_sample_weight divides by the sum of the weights, 4
    result = run_json(capsys, *base, "--reduction", "mean_with_sample_weight")
    assert result["count"] == 4
    assert result["value"] == pytest.approx(5 / 12, rel=1e-6)
    result = run_json(capsys, *base, "--reduction", "none")
    assert result["value"] is None


def test_eval_scalar_json_sample_weight(
    tmp_path: Path, seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    t, p = seed_files["csv"]
    w = write(tmp_path / "w.json", 2)
    result = run_json(
        capsys, "eval", "mse", "--y-true", str(t), "--y-pred", str(p), "--sample-weight", str(w)
    )
    np.testing.assert_allclose(result["per_sample"], [4 / 3, 2 / 3], rtol=1e-6)


def test_eval_options_as_json_values(
    seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    t, p = seed_files["csv"]
    # Huber, delta 0.5: errors x = p - t are [1, 0, -1] and [1, 0, 0]; |x| = 1 > delta gives
    # delta * |x| - delta^2 / 2 = 0.375, so the rows average to 0.75 / 3 and 0.375 / 3.
    result = run_json(
        capsys, "eval", "huber", "--y-true", str(t), "--y-pred", str(p), "--option", "delta=0.5"
    )
    np.testing.assert_allclose(result["per_sample"], [0.25, 0.125], rtol=1e-6)
    # Keras 3 hinge maps {0, 1} labels to {-1, 1}: both rows give 1.0 (see test_seed_example).
    result = run_json(
        capsys,
        "eval",
        "hinge",
        "--y-true",
        str(t),
        "--y-pred",
        str(p),
        "--option",
        "convert_binary_labels=true",
    )
    np.testing.assert_allclose(result["per_sample"], [1.0, 1.0], rtol=1e-6)


def test_eval_float64(
    seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    t, p = seed_files["json"]
    result = run_json(
        capsys, "eval", "mse", "--y-true", str(t), "--y-pred", str(p), "--dtype", "float64"
    )
    assert result["dtype"] == "float64"
    assert result["per_sample"] == [2 / 3, 1 / 3]  # float64 digits, not float32's 0.6666667


def test_eval_integer_labels_from_npy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = write(tmp_path / "labels.npy", np.array([1, 0], dtype=np.int64))
    p = write(tmp_path / "probs.npy", [[0.2, 0.8], [0.6, 0.4]])
    result = run_json(
        capsys, "eval", "sparse_categorical_crossentropy", "--y-true", str(t), "--y-pred", str(p)
    )
    # -log of the probability given to the true class: -log(0.8), -log(0.6)
    np.testing.assert_allclose(result["per_sample"], [-math.log(0.8), -math.log(0.6)], rtol=1e-6)


def test_eval_unknown_loss_suggests_names(
    seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    t, p = seed_files["csv"]
    err = fail(capsys, "eval", "msee", "--y-true", str(t), "--y-pred", str(p))
    assert "unknown loss 'msee'" in err
    assert "'mse'" in err


@pytest.mark.parametrize(
    ("filename", "content", "expected"),
    [
        ("ragged.csv", "0,1,1\n0,1\n", "line 2 has 2 values, the first row has 3"),
        ("words.csv", "0,1,1\n0,x,1\n", "line 2: 'x' is not a number"),
        ("empty.csv", "\n\n", "no rows"),
        ("bad.json", "[[0, 1, 1], [0, 0", "not valid JSON"),
        ("bad.npy", "not numpy", "not a numeric .npy file"),
        ("data.txt", "0,1,1\n0,0,1\n", "unsupported file type '.txt'"),
        ("ragged.json", "[[0, 1, 1], [0, 1]]", "y_true"),
        ("strings.json", '[["a", 1, 1], [0, 0, 1]]', "y_true"),
    ],
)
def test_eval_bad_y_true_file(
    tmp_path: Path,
    seed_files: dict[str, tuple[Path, Path]],
    capsys: pytest.CaptureFixture[str],
    filename: str,
    content: str,
    expected: str,
) -> None:
    bad = tmp_path / filename
    bad.write_text(content)
    _, p = seed_files["csv"]
    err = fail(capsys, "eval", "mse", "--y-true", str(bad), "--y-pred", str(p))
    assert expected in err


def test_eval_missing_file(
    tmp_path: Path, seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    t, _ = seed_files["csv"]
    err = fail(capsys, "eval", "mse", "--y-true", str(t), "--y-pred", str(tmp_path / "no.csv"))
    assert "no.csv" in err
    assert "No such file" in err


def test_eval_shape_mismatch_and_bad_option(
    tmp_path: Path, seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    t, _ = seed_files["csv"]
    p = write(tmp_path / "p2.csv", [[1.0, 1.0], [1.0, 0.0]])
    err = fail(capsys, "eval", "mse", "--y-true", str(t), "--y-pred", str(p))
    assert "shape [2, 2]" in err
    assert "[2, 3]" in err
    _, p = seed_files["csv"]
    err = fail(capsys, "eval", "huber", "--y-true", str(t), "--y-pred", str(p), "--option", "d=1")
    assert "does not take the option 'd'" in err
    assert "delta" in err
    err = fail(
        capsys, "eval", "huber", "--y-true", str(t), "--y-pred", str(p), "--option", "delta=-1"
    )
    assert "delta must be > 0" in err


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], "--y-pred"),  # required
        (["--y-pred", "p.csv", "--option", "delta"], "expected KEY=VALUE"),
        (["--y-pred", "p.csv", "--dtype", "float16"], "invalid choice"),
        (["--y-pred", "p.csv", "--reduction", "avg"], "invalid choice"),
    ],
)
def test_eval_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], extra: list[str], expected: str
) -> None:
    assert expected in usage_error(capsys, "eval", "mse", "--y-true", "t.csv", *extra)


# ---------------------------------------------------------------------------------------------
# lossd losses


def test_losses_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["losses", "--json"]) == 0
    entries = {e["name"]: e for e in json.loads(capsys.readouterr().out)["losses"]}
    assert {n for n, e in entries.items() if e["flavour"] == "keras"} == CANONICAL_NAMES
    assert len(entries) == 34
    assert entries["log_cosh"]["aliases"] == ["logcosh"]
    assert entries["log_cosh"]["class_name"] == "LogCosh"
    assert set(entries["kl_divergence"]["aliases"]) == {
        "kullback_leibler_divergence",
        "kld",
        "KLD",
    }
    # Keras's defaults: Huber(delta=1.0); Tversky(alpha=0.5, beta=0.5)
    assert [(o["name"], o["default"]) for o in entries["huber"]["options"]] == [("delta", 1.0)]
    tversky = {o["name"]: o["default"] for o in entries["tversky"]["options"]}
    assert tversky == {"alpha": 0.5, "beta": 0.5, "axis": None}


def test_losses_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["losses"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line.strip()}
    assert set(rows) >= CANONICAL_NAMES
    assert "mse" in rows["mean_squared_error"]
    assert "delta=1.0" in rows["huber"]
    assert "from_logits=false" in rows["binary_crossentropy"]


# ---------------------------------------------------------------------------------------------
# lossd serve


@pytest.fixture
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """No LOSSD_* variables (restored afterwards), fresh settings, and uvicorn.run and the
    restart recorded."""
    # serve exports its flags (LOSSD_*) and a metrics directory (PROMETHEUS_MULTIPROC_DIR) for
    # its workers; set each variable before deleting it, since delenv alone records nothing to
    # undo for a variable that was not there, and the exports would leak into later tests
    for name in [
        *("LOSSD_" + n.upper() for n in Settings.model_fields),
        "PROMETHEUS_MULTIPROC_DIR",
    ]:
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    calls: dict[str, Any] = {}

    def fake_run(app: str, **kwargs: Any) -> None:
        calls["app"] = app
        calls.update(kwargs)

    monkeypatch.setattr("uvicorn.run", fake_run)
    # The restart with huge pages replaces the process (os.execve): here it is only recorded.
    monkeypatch.setattr("app.cli.restart_with_huge_pages", lambda: calls.update(restarted=True))
    # Several workers go through app.supervisor instead; record them the same way.
    monkeypatch.setattr(
        "app.supervisor.run_workers",
        lambda options, workers: fake_run("app.main:app", **options, workers=workers),
    )
    get_settings.cache_clear()
    yield calls
    get_settings.cache_clear()


def test_serve_defaults(clean_settings: dict[str, Any]) -> None:
    assert main(["serve"]) == 0
    # uvicorn's own lines as JSON like lossd's (LOSSD_LOG_FORMAT=json), its access log off
    log_config = clean_settings.pop("log_config")
    assert clean_settings.pop("restarted") is True  # app.runtime.restart_with_huge_pages
    assert log_config["formatters"]["default"] == {"()": "app.observability.logs.JsonFormatter"}
    # the defaults the README documents
    assert clean_settings == {
        "app": "app.main:app",
        "host": "127.0.0.1",
        "port": 8000,
        "workers": 1,
        "log_level": "info",
        "timeout_graceful_shutdown": 25.0,
        "http": "app.api.header_limits:HeaderLimitedProtocol",  # head size and time limits
        "access_log": False,
    }


def test_serve_flags_override_environment(
    clean_settings: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOSSD_PORT", "9001")
    monkeypatch.setenv("LOSSD_WORKERS", "3")
    argv = ["serve", "--port", "9002", "--host", "0.0.0.0", "--log-level", "warning"]
    assert main([*argv, "--max-body-bytes", "4096"]) == 0
    assert clean_settings["port"] == 9002  # flag beats env
    assert clean_settings["workers"] == 3  # env beats default
    assert clean_settings["host"] == "0.0.0.0"
    assert clean_settings["log_level"] == "warning"
    # Worker processes import app.main afresh: they must find the flags in their environment.
    assert os.environ["LOSSD_PORT"] == "9002"
    assert os.environ["LOSSD_MAX_BODY_BYTES"] == "4096"
    assert get_settings().max_body_bytes == 4096


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve", "--port", "70000"], "LOSSD_PORT / --port"),
        (["serve", "--workers", "0"], "LOSSD_WORKERS / --workers"),
        (["serve", "--port", "http"], "invalid int value"),
        (["serve", "--log-level", "loud"], "invalid choice"),
    ],
)
def test_serve_bad_flags_exit_2(
    clean_settings: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    expected: str,
) -> None:
    assert expected in usage_error(capsys, *argv)
    assert "app" not in clean_settings  # uvicorn never started


def test_serve_bad_environment_exit_2(
    clean_settings: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOSSD_MAX_ELEMENTS", "many")
    assert "LOSSD_MAX_ELEMENTS" in usage_error(capsys, "serve")


def test_serve_refuses_a_key_list_without_keys(
    clean_settings: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOSSD_API_KEYS", " , ")  # "$KEY1,$KEY2" with neither variable set
    message = usage_error(capsys, "serve")
    assert "LOSSD_API_KEYS:" in message and "no key" in message
    assert "--api-keys" not in message  # a setting without a flag is named by its variable
    assert "app" not in clean_settings  # uvicorn never started


def test_help_explains_each_command(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, expected in [
        ([], ["serve", "losses", "eval"]),
        (["serve"], [f"LOSSD_{n.upper()}" for n in SERVE_FLAGS] + ["examples:", "--workers"]),
        (["losses"], ["--json", "examples:"]),
        (["eval"], ["--y-true", "--sample-weight", "KEY=VALUE", ".npy", ".csv", "examples:"]),
    ]:
        with pytest.raises(SystemExit) as exc:
            main([*argv, "--help"])
        assert exc.value.code == 0
        out = capsys.readouterr().out
        for text in expected:
            assert text in out, (argv, text)


# ---------------------------------------------------------------------------------------------
# real processes


def test_installed_script_evaluates_files(seed_files: dict[str, tuple[Path, Path]]) -> None:
    t, p = seed_files["csv"]
    done = subprocess.run(
        [str(LOSSD), "eval", "mse", "--y-true", str(t), "--y-pred", str(p), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    np.testing.assert_allclose(json.loads(done.stdout)["per_sample"], SEED_MSE, rtol=1e-6)
    done = subprocess.run(
        [str(LOSSD), "eval", "nope", "--y-true", str(t), "--y-pred", str(p)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("lossd eval: error: unknown loss 'nope'")


@pytest.mark.e2e
def test_serve_process_applies_its_flags() -> None:
    # tests/e2e/conftest.py's command, plus a small body limit to see that a flag reaches the app.
    server = ServerProcess(argv=lambda port: [*lossd_serve_argv(port), "--max-body-bytes", "2048"])
    try:
        server.wait_ready()
        seed = {"y_true": Y_TRUE, "y_pred": Y_PRED}
        response = httpx.post(server.url + "/v1/losses/mse", json=seed, timeout=10)
        assert response.status_code == 200
        np.testing.assert_allclose(response.json()["per_sample"], SEED_MSE, rtol=1e-6)
        big = {"y_true": [[0.0] * 200] * 2, "y_pred": [[1.0] * 200] * 2}  # about 2.4 KB
        response = httpx.post(server.url + "/v1/losses/mse", json=big, timeout=10)
        assert response.status_code == 413
    finally:
        server.stop()


# ---------------------------------------------------------------------------------------------
# the command-line examples of the README ("Command line" section) and of docs/cli.md

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
CLI_PAGES = {"README.md": 1, "docs/cli.md": 5}  # each page, the fewest examples it must have


def readme_cli_examples(page: str = "README.md") -> list[tuple[str, str, str]]:
    """(script, expected output, its language) for each ```sh block followed by an output block,
    in the README's "Command line" section or in a whole docs page."""
    text = (ROOT / page).read_text()
    if page == "README.md":
        text = text.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```(\w*)\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)
    return [
        (script, output, lang)
        for (kind, script), (lang, output) in itertools.pairwise(blocks)
        if kind == "sh" and lang in ("text", "json")
    ]


@pytest.mark.parametrize("page", sorted(CLI_PAGES))
def test_readme_command_line_examples(page: str, tmp_path: Path) -> None:
    examples = readme_cli_examples(page)
    assert len(examples) >= CLI_PAGES[page]
    env = {**os.environ, "PATH": f"{LOSSD.parent}{os.pathsep}{os.environ['PATH']}"}
    for script, expected, lang in examples:  # in order: later ones read earlier ones' files
        done = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (script, done.stdout)
        if lang == "json":
            assert json.loads(done.stdout) == json.loads(expected), script
        else:
            got = [line.rstrip() for line in done.stdout.strip().splitlines()]
            assert got == [line.rstrip() for line in expected.strip().splitlines()], script


def test_losses_json_is_the_api_catalogue(capsys: pytest.CaptureFixture[str]) -> None:
    """`lossd losses --json` and GET /v1/losses give the same entries, every field included."""
    from app.api.routes.losses import CATALOGUE

    assert main(["losses", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == CATALOGUE.model_dump(mode="json")


# ---------------------------------------------------------------------------------------------
# stdin, CSV headers, --version, lossd alone


@pytest.mark.parametrize("fmt", ["csv", "json", "npy"])
def test_eval_reads_one_tensor_from_stdin(
    fmt: str,
    seed_files: dict[str, tuple[Path, Path]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t, p = seed_files[fmt]
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(p.read_bytes())))
    result = run_json(capsys, "eval", "mse", "--y-true", str(t), "--y-pred", "-")
    np.testing.assert_allclose(result["per_sample"], SEED_MSE, rtol=1e-6)


def test_only_one_tensor_can_come_from_stdin(capsys: pytest.CaptureFixture[str]) -> None:
    err = fail(capsys, "eval", "mse", "--y-true", "-", "--y-pred", "-")
    assert "only one of --y-true, --y-pred and --sample-weight can read stdin" in err


def test_a_csv_header_row_is_skipped(
    tmp_path: Path, seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, p = seed_files["csv"]
    t = tmp_path / "with_header.csv"
    t.write_text("a,b,c\n" + "\n".join(",".join(str(x) for x in row) for row in Y_TRUE) + "\n")
    result = run_json(capsys, "eval", "mse", "--y-true", str(t), "--y-pred", str(p))
    np.testing.assert_allclose(result["per_sample"], SEED_MSE, rtol=1e-6)


def test_a_csv_row_of_names_after_the_first_is_still_an_error(
    tmp_path: Path, seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, p = seed_files["csv"]
    t = tmp_path / "t.csv"
    t.write_text("0,1,1\na,b,c\n")
    assert "line 2: 'a' is not a number" in fail(
        capsys, "eval", "mse", "--y-true", str(t), "--y-pred", str(p)
    )


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"lossd {app.__version__}"


def test_lossd_alone_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: lossd") and "serve" in out and "eval" in out


def test_eval_names_match_ascii_case_only(
    seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    t, p = seed_files["csv"]
    err = fail(capsys, "eval", "\u212ald", "--y-true", str(t), "--y-pred", str(p))
    assert err.startswith("lossd eval: error: unknown loss '\u212ald'")
    assert run_json(capsys, "eval", "KLD", "--y-true", str(t), "--y-pred", str(p))["loss"] == (
        "kl_divergence"
    )


def test_eval_option_errors_name_the_option(
    seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    t, p = seed_files["csv"]
    err = fail(capsys, "eval", "huber", "--y-true", str(t), "--y-pred", str(p), "--option",
               "delta=1" + "0" * 400)  # fmt: skip
    assert err.startswith("lossd eval: error: option 'delta': delta must be a finite number")


# --- eval --gradient / --hessian-diagonal ----------------------------------------------------


def test_eval_gradient_and_hessian_json(
    seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    t, p = seed_files["csv"]
    # MSE: value = (1/2) sum_s (1/3) sum_j (x - t)^2 with x - t = [1, 0, -1, 1, 0, 0]:
    # d/dx = 2 (x - t) / 6, d2/dx2 = 2 / 6.
    argv = ("eval", "mse", "--y-true", str(t), "--y-pred", str(p))
    result = run_json(capsys, *argv, "--gradient", "--hessian-diagonal")
    assert result["y_pred_shape"] == [2, 3]
    np.testing.assert_allclose(result["gradient"], [1 / 3, 0, -1 / 3, 1 / 3, 0, 0], rtol=1e-7)
    np.testing.assert_allclose(result["hessian_diagonal"], [1 / 3] * 6, rtol=1e-7)
    assert result["gradient_non_finite"] == result["hessian_diagonal_non_finite"] == 0
    plain = run_json(capsys, *argv)
    assert not {"gradient", "hessian_diagonal", "y_pred_shape"} & set(plain)


def test_eval_gradient_table(
    tmp_path: Path, seed_files: dict[str, tuple[Path, Path]], capsys: pytest.CaptureFixture[str]
) -> None:
    t, p = seed_files["csv"]
    assert main(["eval", "mse", "--y-true", str(t), "--y-pred", str(p), "--gradient"]) == 0
    out = capsys.readouterr().out
    assert "derivatives of value by y_pred element" in out
    lines = out.splitlines()
    start = lines.index("y_pred  gradient")
    assert [line.split() for line in lines[start + 1 : start + 7]] == [
        ["0,0", "0.33333334"],
        ["0,1", "0.0"],
        ["0,2", "-0.33333334"],
        ["1,0", "0.33333334"],
        ["1,1", "0.0"],
        ["1,2", "0.0"],
    ]
    assert "hessian" not in out
    # A non-finite derivative (categorical cross-entropy of a row of zeros: 0/0) is counted.
    y_pred = write(tmp_path / "zeros.json", [[0, 0]])
    y_true = write(tmp_path / "one_hot.json", [[1, 0]])
    argv = ["eval", "categorical_crossentropy", "--y-true", str(y_true), "--y-pred", str(y_pred)]
    assert main([*argv, "--hessian-diagonal", "--reduction", "none"]) == 0
    out = capsys.readouterr().out
    assert "derivatives of sum (reduction none) by y_pred element" in out
    assert "0,0     nan/inf" in out
    assert "non-finite hessian diagonal values: 2" in out


def test_eval_a_torch_loss_with_a_tensor_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = write(tmp_path / "t.json", [0, 2])
    p = write(tmp_path / "p.json", [[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    base = ["eval", "torch.nn.CrossEntropyLoss", "--y-true", str(t), "--y-pred", str(p)]
    result = run_json(capsys, *base, "--option", "weight=[1, 2, 3]")
    assert result["reduction"] == "mean" and result["count"] == 4  # weights 1 + 3
    result = run_json(capsys, *base, "--option", "ignore_index=2", "--reduction", "sum")
    assert result["count"] == 1 and result["per_sample"][1] == 0.0


def test_losses_filters_by_flavour(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["losses", "--flavour", "torch", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["losses"]
    assert len(listed) == 15 and {e["flavour"] for e in listed} == {"torch"}
    assert main(["losses", "--flavour", "torch"]) == 0
    assert "torch.nn.functional.kl_div" in capsys.readouterr().out
