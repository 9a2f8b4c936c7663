"""The serving version ledger: models.config after each push, rollback and promotion (the TF Serving proto, exactly
the labelled versions loaded), the push records, the refusals, and `mtl serving list / rollback / promote`."""

import os
import re

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from components.serving_versions import (
    MODEL_CONFIG,
    ServingVersionError,
    list_rows,
    promote,
    read_labels,
    read_push_record,
    record_push,
    rollback,
    versions,
    write_push_record,
)
from config import UserError
from pipeline.cli.main import main

V1, V2, V3, V4 = 1_700_000_000, 1_700_000_100, 1_700_000_200, 1_700_000_300


@pytest.fixture
def base(tmp_path):
    """An empty serving base directory, <serving_dir>/recs."""
    path = tmp_path / "serving" / "recs"
    path.mkdir(parents=True)
    return str(path)


def _version(base: str, version: int, record: dict | None = None) -> str:
    """A fake pushed version folder (an empty saved_model.pb), with ``record`` as its push record if given."""
    folder = os.path.join(base, str(version))
    os.makedirs(folder)
    open(os.path.join(folder, "saved_model.pb"), "wb").close()
    if record is not None:
        write_push_record(folder, record)
    return folder


def _push(base: str, version: int, *, canary: bool = False) -> dict[str, int]:
    _version(base, version)
    return record_push(base, "recs", version, canary=canary)


def _config_text(base: str) -> str:
    with open(os.path.join(base, MODEL_CONFIG)) as f:
        return f.read()


def _expected(base: str, loaded: list[int], labels: dict[str, int]) -> str:
    """The models.config text for ``loaded`` versions and ``labels`` (text_format writes map keys sorted)."""
    policy = "".join(f"        versions: {v}\n" for v in loaded)
    label_text = "".join(f"    version_labels {{\n      key: \"{key}\"\n      value: {value}\n    }}\n"
                         for key, value in sorted(labels.items()))
    return ("model_config_list {\n  config {\n    name: \"recs\"\n"
            f"    base_path: \"{base}\"\n    model_platform: \"tensorflow\"\n"
            f"    model_version_policy {{\n      specific {{\n{policy}      }}\n    }}\n{label_text}  }}\n}}\n")


def test_first_push_is_stable_even_as_canary(base):
    assert _push(base, V1, canary=True) == {"stable": V1}
    assert _config_text(base) == f"""model_config_list {{
  config {{
    name: "recs"
    base_path: "{base}"
    model_platform: "tensorflow"
    model_version_policy {{
      specific {{
        versions: {V1}
      }}
    }}
    version_labels {{
      key: "stable"
      value: {V1}
    }}
  }}
}}
"""


def test_pushes_canary_rollback_and_promote_rewrite_the_config(base):
    _push(base, V1)
    _push(base, V2)
    assert _config_text(base) == _expected(base, [V2], {"stable": V2})  # only the labelled version is loaded
    _push(base, V3, canary=True)
    assert _config_text(base) == _expected(base, [V2, V3], {"stable": V2, "canary": V3})
    assert rollback(base, "recs") == (V2, V1)  # the newest older version; the canary stays (newer than stable)
    assert _config_text(base) == _expected(base, [V1, V3], {"stable": V1, "canary": V3})
    assert rollback(base, "recs", V3) == (V1, V3)  # explicit; the canary equal to the new stable is dropped
    assert _config_text(base) == _expected(base, [V3], {"stable": V3})
    _push(base, V4, canary=True)
    assert promote(base, "recs") == V4
    assert _config_text(base) == _expected(base, [V4], {"stable": V4})
    assert versions(base) == [V1, V2, V3, V4]  # nothing deleted


def test_the_next_push_after_a_rollback_goes_on_from_there(base):
    _push(base, V1)
    _push(base, V2)
    rollback(base, "recs")
    _push(base, V3)
    assert read_labels(base) == {"stable": V3}
    assert _config_text(base) == _expected(base, [V3], {"stable": V3})
    assert V1 in versions(base)  # the rollback target is still on disk


def test_a_stable_push_ends_an_older_canary(base):
    _push(base, V1)
    _push(base, V2, canary=True)
    assert _push(base, V3) == {"stable": V3}  # else `promote` would serve the older canary as stable


def test_the_config_parses_back_as_the_model_server_proto(base):
    _push(base, V1)
    _push(base, V2, canary=True)
    config = text_format.Parse(_config_text(base), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == ("recs", base, "tensorflow")
    assert list(model.model_version_policy.specific.versions) == [V1, V2]
    assert dict(model.version_labels) == {"stable": V1, "canary": V2}


def test_a_relative_base_directory_is_written_absolute(base, monkeypatch):
    monkeypatch.chdir(os.path.dirname(os.path.dirname(base)))
    _version("serving/recs", V1)
    record_push("serving/recs", "recs", V1)
    assert f'base_path: "{base}"' in _config_text(base)


def test_versions_are_the_complete_numbered_folders(base):
    _version(base, V2)
    _version(base, V1)
    os.makedirs(os.path.join(base, f".staging-{V3}-abcd1234"))
    os.makedirs(os.path.join(base, str(V4)))  # no saved_model.pb: not a complete version
    os.makedirs(os.path.join(base, "notes"))
    assert versions(base) == [V1, V2]
    assert versions(os.path.join(base, "absent")) == []


def test_push_records_round_trip_and_are_optional(base):
    record = {"version": V1, "pushed_at": "2023-11-14T22:13:20Z", "run": "run-7",
              "metrics": {"click": {"metric": "auc", "value": 0.78}}}
    assert read_push_record(_version(base, V1, record)) == record
    assert read_push_record(_version(base, V2)) is None
    broken = _version(base, V3)
    os.makedirs(os.path.join(broken, "assets.extra"))
    with open(os.path.join(broken, "assets.extra", "push.json"), "w") as f:
        f.write("{not json")
    assert read_push_record(broken) is None


def test_list_rows_newest_first_with_labels(base):
    _version(base, V1, {"version": V1, "pushed_at": "2023-11-14T22:13:20Z", "run": "run-1",
                        "metrics": {"click": {"metric": "auc", "value": 0.78}, "bad": 3}})
    record_push(base, "recs", V1)
    _push(base, V2, canary=True)
    assert list_rows(base) == [
        {"version": V2, "pushed_at": None, "run": None, "metrics": {}, "labels": ["canary"]},
        {"version": V1, "pushed_at": "2023-11-14T22:13:20Z", "run": "run-1",
         "metrics": {"click": {"metric": "auc", "value": 0.78}}, "labels": ["stable"]}]


@pytest.mark.parametrize(("setup", "call", "message"), [
    ("none", lambda b: rollback(b, "recs"), "no stable version recorded (no models.config yet); push a model first"),
    ("one", lambda b: rollback(b, "recs"), f"stable version {V1} is the oldest there, nothing older to roll back to"),
    ("one", lambda b: rollback(b, "recs", 123), f"no complete version 123; pick one of: {V1}"),
    ("one", lambda b: promote(b, "recs"), "no canary version to promote; push one as canary first"),
    ("none", lambda b: record_push(b, "recs", V1), f"no complete version {V1}; no version is there"),
])
def test_refusals_are_one_line_user_errors(base, setup, call, message):
    if setup == "one":
        _push(base, V1)
    before = os.listdir(base)
    with pytest.raises(ServingVersionError, match=re.escape(message)) as error:
        call(base)
    assert isinstance(error.value, UserError) and isinstance(error.value, ValueError)
    assert "\n" not in str(error.value)
    assert os.listdir(base) == before  # nothing written


def test_a_config_that_does_not_parse_is_a_user_error(base):
    with open(os.path.join(base, MODEL_CONFIG), "w") as f:
        f.write("model_config_list { config { nme: 'x' } }")
    with pytest.raises(ServingVersionError, match="not a TF Serving model config"):
        read_labels(base)


def test_rewrites_leave_no_temporary_file(base, monkeypatch):
    _push(base, V1)
    _push(base, V2)
    rollback(base, "recs")
    assert sorted(os.listdir(base)) == [str(V1), str(V2), MODEL_CONFIG]
    before = _config_text(base)
    import tensorflow as tf

    def broken_rename(*args, **kwargs):
        raise OSError("rename failed")

    monkeypatch.setattr(tf.io.gfile, "rename", broken_rename)
    with pytest.raises(OSError, match="rename failed"):
        rollback(base, "recs", V2)
    assert sorted(os.listdir(base)) == [str(V1), str(V2), MODEL_CONFIG]
    assert _config_text(base) == before


def _mtl(capsys, base, *args) -> tuple[int, str, str]:
    code = main(["serving", *args, "--serving-dir", os.path.dirname(base), "--model-name", "recs"])
    out, err = capsys.readouterr()
    return code, out, err


def test_mtl_serving_list_prints_plain_text(base, capsys):
    _version(base, V1, {"version": V1, "pushed_at": "2023-11-14T22:13:20Z", "run": "run-1\x1b[31m red\nnext",
                        "metrics": {"click": {"metric": "auc", "value": 0.781234},
                                    "rating": {"metric": "rmse", "value": 0.9}}})
    record_push(base, "recs", V1)
    _push(base, V2, canary=True)
    code, out, err = _mtl(capsys, base, "list")
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "version     pushed at             run                  key metrics                        labels",
        f"{V2}  -                     -                    -                                  canary",
        f"{V1}  2023-11-14T22:13:20Z  run-1?[31m red next  click auc=0.7812, rating rmse=0.9  stable"]


def test_mtl_serving_rollback_and_promote(base, capsys):
    _push(base, V1)
    _push(base, V2)
    config = os.path.join(base, MODEL_CONFIG)
    assert _mtl(capsys, base, "rollback") == (0, f"stable: {V2} -> {V1} ({config})\n", "")
    assert _mtl(capsys, base, "rollback", str(V2)) == (0, f"stable: {V1} -> {V2} ({config})\n", "")
    _push(base, V3, canary=True)
    assert _mtl(capsys, base, "promote") == (0, f"stable: {V2} -> {V3}, canary label removed ({config})\n", "")
    assert read_labels(base) == {"stable": V3}


def test_mtl_serving_errors_are_one_line_and_exit_2(base, capsys):
    _push(base, V1)
    assert _mtl(capsys, base, "rollback", "42") == (
        2, "", f"mtl serving: {base}: no complete version 42; pick one of: {V1}\n")
    code, out, err = _mtl(capsys, os.path.join(os.path.dirname(base), "elsewhere", "recs"), "list")
    assert (code, out, len(err.splitlines())) == (2, "", 1) and "no pushed versions here" in err


def test_mtl_serving_takes_the_model_name_from_the_config(tmp_path, capsys):
    base = tmp_path / "recs-multitask"  # the default config's name
    base.mkdir()
    _version(str(base), V1)
    record_push(str(base), "recs-multitask", V1)
    assert main(["serving", "list", "--serving-dir", str(tmp_path)]) == 0
    assert f"{V1}  -          -    -            stable" in capsys.readouterr().out
