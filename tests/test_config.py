"""Settings: names, validation, layers, sources, per-folder files, generated schema/package.json."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import jsonschema
import pytest

from spark_ls import config, settings_schema
from spark_ls.config import (
    UNTRUSTED_WORKSPACE_KEYS,
    ConfigError,
    Layer,
    Secret,
    Settings,
    load_settings,
    resolve,
    resolve_settings,
)

REPO = Path(__file__).resolve().parent.parent


def test_every_field_is_accepted_in_snake_kebab_and_camel_case() -> None:
    for name in config.FIELDS:
        if name == "api_key":
            continue
        value = getattr(Settings(), name)
        for key in {name, name.replace("_", "-"), config.camel(name)}:
            assert config.canonical(key) == name
            assert resolve([Layer("editor", "e", {key: value})]).problems == ()


def test_the_six_camel_case_names_that_used_to_be_dropped_now_apply() -> None:
    options = {
        "diagnosticsDebounce": 0.05,
        "idleTimeout": 60,
        "maxConnectionAge": 600,
        "maxRetries": 0,
        "localCtx": 2048,
        "localRequestTimeout": 30,
    }
    settings = Settings().merged(options)
    assert (settings.diagnostics_debounce, settings.idle_timeout, settings.max_connection_age) == (0.05, 60.0, 600.0)
    assert (settings.max_retries, settings.local_ctx, settings.local_request_timeout) == (0, 2048, 30.0)


def test_unknown_key_is_named_with_a_suggestion_and_the_others_apply() -> None:
    result = resolve_settings(None, editor={"diagnosticsDebunce": 1, "model": "m"}, environ={})
    assert result.settings.model == "m"
    assert result.settings.diagnostics_debounce == Settings().diagnostics_debounce
    assert result.problems == (
        "editor settings: unknown setting 'diagnosticsDebunce' (did you mean 'diagnosticsDebounce'?); ignored",
    )


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("pool_size", 0, "must be at least 1, not 0"),
        ("pool_size", 1000, "must be at most 64, not 1000"),
        ("max_retries", -1, "must be at least 0, not -1"),
        ("context_budget", 3.5, "expected a whole number, got 3.5"),
        ("diagnostics_debounce", "soon", "expected a number, got 'soon'"),
        ("prefetch", "maybe", "expected true or false, got 'maybe'"),
        ("prefetch", 1, "expected true or false, got 1"),
        ("transport", "carrier-pigeon", "must be one of auto, ws, responses, chat, local, not 'carrier-pigeon'"),
        ("edit_format", "patch", "must be one of auto, diff, scope, not 'patch'"),
        ("model", 5, "expected a string, got 5"),
        ("fallback_models", [1, 2], "expected a list of strings, got [1, 2]"),
        ("request_timeout", 0, "must be at least 0.1, not 0"),
        ("request_timeout", float("nan"), "expected a number, got nan"),
        ("idle_timeout", "inf", "expected a number, got 'inf'"),
        ("model", "  ", "must not be empty"),
        ("pin", "", "expected true or false, got ''"),
    ],
)
def test_bad_value_keeps_the_lower_layer_and_says_why(key: str, value: object, reason: str) -> None:
    result = resolve_settings(
        None, editor={key: value, "model": "still-applied"} if key != "model" else {key: value}, environ={}
    )
    default = getattr(Settings(), key)
    assert getattr(result.settings, key) == default
    assert result.problems == (
        f"editor settings: setting {key!r}: {reason}; using {config._described(key, default)} (the default)",
    )
    if key != "model":
        assert result.settings.model == "still-applied"
    with pytest.raises(ConfigError, match=reason.split(",")[0].replace("(", r"\(").replace("[", r"\[")):
        Settings().merged({key: value})


def test_a_bad_editor_value_falls_back_to_the_environment_value_not_the_default() -> None:
    result = resolve_settings(None, editor={"poolSize": 0}, environ={"SPARK_LS_POOL_SIZE": "5"})
    assert result.settings.pool_size == 5
    assert result.problems == ("editor settings: setting 'poolSize': must be at least 1, not 0; using 5 (from environment (SPARK_LS_POOL_SIZE))",)


def test_environment_strings_are_parsed_strictly() -> None:
    env = {
        "SPARK_LS_PREFETCH": "off",
        "SPARK_LS_POOL_SIZE": "3",
        "SPARK_LS_FALLBACK_MODELS": "a, b",
        "SPARK_LS_DIAGNOSTICS": "sometimes",
        "OPENAI_API_KEY": "sk-test-abcdefgh",
    }
    result = resolve_settings(None, environ=env)
    assert result.settings.prefetch is False and result.settings.pool_size == 3
    assert result.settings.fallback_models == ("a", "b")
    assert result.settings.diagnostics is True
    assert result.problems == (
        "environment: setting SPARK_LS_DIAGNOSTICS: expected true or false, got 'sometimes'; using True (the default)",
    )
    assert result.sources["pool_size"] == "environment (SPARK_LS_POOL_SIZE)" and result.sources["model"] == "default"
    assert result.settings.api_key == Secret("sk-test-abcdefgh")


def test_secrets_never_appear_in_problems_or_reprs() -> None:
    key = "sk-test-should-not-leak-123456"
    result = resolve_settings(None, editor={"api_key": 12345}, environ={"OPENAI_API_KEY": key})
    assert result.settings.api_key == Secret(key)
    text = repr(result) + " ".join(result.problems)
    assert key not in text and "***" in " ".join(result.problems)


def test_one_bad_user_action_is_dropped_alone() -> None:
    good = {"id": "ok", "title": "OK", "instruction": "do it"}
    bad = {"id": "broken", "title": "Broken", "instruction": "x", "applies_to": "everything"}
    result = resolve_settings(None, editor={"actions": [good, bad]}, environ={})
    assert [a["id"] for a in result.settings.actions] == ["ok"]
    assert len(result.problems) == 1 and "action 'broken': applies_to must be one of" in result.problems[0]
    # The table-of-tables form works too.
    by_id = resolve_settings(None, editor={"actions": {"ok": {"title": "OK", "instruction": "do"}}}, environ={})
    assert by_id.settings.actions == ({"id": "ok", "title": "OK", "instruction": "do"},) and by_id.problems == ()


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_workspace_file_is_untrusted_and_bad_keys_do_not_block_the_rest(tmp_path: Path) -> None:
    _write(tmp_path / "pyproject.toml", """
[tool.spark-ls]
model = "from-pyproject"
base-url = "https://evil.example/v1"
pool_size = -3
contextBudget = 4000
bogus = 1
""")
    result = resolve_settings(tmp_path, environ={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    where = f"{tmp_path / 'pyproject.toml'} [tool.spark-ls]"
    assert result.settings.model == "from-pyproject" and result.settings.context_budget == 4000
    assert result.settings.base_url == "http://127.0.0.1:9/v1" and result.sources["base_url"] == "environment (OPENAI_BASE_URL)"
    assert result.settings.pool_size == 2
    assert result.sources["model"] == where
    assert set(result.problems) == {
        f"{where}: setting 'pool_size': must be at least 1, not -3; using 2 (the default)",
        f"{where}: unknown setting 'bogus'; ignored",
        (f"{where}: ignoring base-url: a repository's own config may not set these; use the environment "
         "(OPENAI_BASE_URL, SPARK_LS_*) or your editor's settings"),
    }


# Settings that run commands, move the key, weaken TLS or touch files outside the workspace.
MUST_BE_UNTRUSTED = ("base_url", "api_key", "tls_verify", "record", "replay", "local_model_path", "verify_command")


def test_every_untrusted_key_is_refused_from_the_workspace_in_any_spelling(tmp_path: Path) -> None:
    assert {n for n in MUST_BE_UNTRUSTED if n in config.FIELDS} <= UNTRUSTED_WORKSPACE_KEYS
    assert {"base_url", "api_key", "tls_verify", "record", "replay", "local_model_path"} <= UNTRUSTED_WORKSPACE_KEYS
    for name in sorted(UNTRUSTED_WORKSPACE_KEYS):
        for key in (name, config.kebab(name), config.camel(name)):
            _write(tmp_path / "spark-ls.toml", f'{key} = "x"\n' if name != "tls_verify" else f"{key} = false\n")
            result = resolve_settings(tmp_path, environ={})
            assert result.settings == Settings(), key
            assert any("may not set these" in p and key in p for p in result.problems), key


def test_spark_ls_toml_wins_over_pyproject_and_a_broken_file_is_reported(tmp_path: Path) -> None:
    _write(tmp_path / "pyproject.toml", '[tool.spark-ls]\nmodel = "p"\n')
    _write(tmp_path / "spark-ls.toml", 'model = "s"\n')
    assert resolve_settings(tmp_path, environ={}).settings.model == "s"
    _write(tmp_path / "spark-ls.toml", "model = \n")
    result = resolve_settings(tmp_path, editor={"prefetch": False}, environ={})
    assert result.settings.prefetch is False and result.settings.model == Settings().model
    assert len(result.problems) == 1 and "spark-ls.toml" in result.problems[0] and "ignored" in result.problems[0]


def test_layers_priority_and_sources(tmp_path: Path) -> None:
    _write(tmp_path / "pyproject.toml", '[tool.spark-ls]\nmodel = "p"\ncontext_budget = 3000\nprefetch = false\n')
    result = resolve_settings(
        tmp_path,
        editor={"model": "e", "contextBudget": 5000},
        cli={"model": "c"},
        environ={"SPARK_LS_MODEL": "env", "SPARK_LS_LOCAL_THREADS": "4"},
    )
    s = result.settings
    assert (s.model, s.context_budget, s.prefetch, s.local_threads) == ("c", 5000, False, 4)
    assert result.sources["model"] == "command line"
    assert result.sources["context_budget"] == "editor settings"
    assert result.sources["prefetch"].endswith("pyproject.toml [tool.spark-ls]")
    assert result.sources["local_threads"] == "environment (SPARK_LS_LOCAL_THREADS)"
    assert result.sources["pin"] == "default"


def test_load_settings_logs_each_problem(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="spark_ls.config"):
        settings = load_settings(None, {"poolSize": 0, "typo": 1}, environ={})
    assert settings.pool_size == 2
    assert [r.getMessage() for r in caplog.records] == [
        "editor settings: setting 'poolSize': must be at least 1, not 0; using 2 (the default)",
        "editor settings: unknown setting 'typo'; ignored",
    ]


def test_session_changed_only_for_session_settings() -> None:
    base = Settings()
    assert not config.session_changed(base, dataclasses.replace(base, prefetch=False, context_budget=900))
    assert config.session_changed(base, dataclasses.replace(base, model="other"))
    assert config.session_changed(base, dataclasses.replace(base, pool_size=3))


def test_every_setting_is_documented() -> None:
    missing = [name for name in config.FIELDS if not config.info(name).description]
    assert missing == [], "declare these with config.setting(default, description, ...)"


# ----------------------------------------------------------------------------- generated files


def test_committed_json_schema_is_up_to_date() -> None:
    assert (REPO / "docs" / "settings.schema.json").read_text("utf-8") == settings_schema.render_schema(), (
        "run: python -m spark_ls.settings_schema --write"
    )


def test_json_schema_accepts_the_documented_example_and_rejects_mistakes() -> None:
    schema = settings_schema.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    good = {
        "model": "gpt-4.1", "fallback_models": ["gpt-5-mini"], "pin": True, "context-budget": 3000,
        "actions": [{"id": "log-calls", "title": "Log calls to {name}", "instruction": "Add logging",
                     "applies_to": "scope", "languages": ["python"], "allow_imports": True}],
    }
    assert list(validator.iter_errors(good)) == []
    for bad in ({"pool_size": 0}, {"transport": "pigeon"}, {"base_url": "https://x"}, {"modle": "x"},
                {"actions": [{"title": "no instruction"}]}):
        assert list(validator.iter_errors(bad)), bad
    # Every key the schema allows is one the server accepts from a workspace file.
    for key in schema["properties"]:
        assert config.canonical(key) not in UNTRUSTED_WORKSPACE_KEYS


def test_vscode_package_json_configuration_is_in_sync() -> None:
    text = (REPO / "editors" / "vscode" / "package.json").read_text("utf-8")
    assert settings_schema.render_package_json(text) == text, "run: python -m spark_ls.settings_schema --write"
    properties = json.loads(text)["contributes"]["configuration"]["properties"]
    server_keys = {k.removeprefix("spark.") for k in properties} - set(settings_schema.VSCODE_CLIENT_ONLY)
    assert server_keys == {config.camel(n) for n in config.FIELDS if config.info(n).editor}
    assert "api_key" in config.FIELDS and "spark.apiKey" not in properties  # the key lives in SecretStorage
    assert "session" not in properties["spark.prefetch"]["markdownDescription"].lower()
    for key in ("spark.baseUrl", "spark.tlsVerify", "spark.record", "spark.replay", "spark.localModelPath"):
        assert properties[key]["scope"] == "machine", key  # not settable from .vscode/settings.json
    # Every value VS Code would send is one the server accepts.
    options = {config.camel(n): getattr(Settings(), n) for n in config.FIELDS if config.info(n).editor}
    assert resolve([Layer("editor", "vscode", options)]).problems == ()


def test_render_package_json_only_touches_the_configuration_section() -> None:
    text = (REPO / "editors" / "vscode" / "package.json").read_text("utf-8")
    old = json.loads(text)["contributes"]["configuration"]["properties"]["spark.model"]["markdownDescription"]
    stale = text.replace(json.dumps(old), '"stale"', 1).replace('"title": "spark-ls"', '"title": "x"', 1)
    assert stale != text
    assert settings_schema.render_package_json(stale) == text


def test_readme_settings_table_is_up_to_date() -> None:
    text = (REPO / "README.md").read_text("utf-8")
    assert settings_schema.render_readme(text) == text, "run: python -m spark_ls.settings_schema --write"
    table = text.split(settings_schema.README_START)[1].split(settings_schema.README_END)[0]
    for name in config.FIELDS:
        assert f"| `{name}`" in table


def test_a_document_belongs_to_the_innermost_folder_containing_it(tmp_path: Path) -> None:
    outer, inner, sibling = str(tmp_path / "ws"), str(tmp_path / "ws" / "pkg"), str(tmp_path / "ws2")
    folders = [outer, inner, sibling]
    assert config.folder_for(tmp_path / "ws" / "pkg" / "a.py", folders) == inner
    assert config.folder_for(tmp_path / "ws" / "b.py", folders) == outer
    assert config.folder_for(tmp_path / "ws2" / "c.py", folders) == sibling
    assert config.folder_for(tmp_path / "ws-other" / "d.py", folders) is None  # a prefix is not a parent
    assert config.folder_for(tmp_path / "elsewhere.py", folders) is None


def test_editor_payload_sections() -> None:
    from spark_ls.server.configuration import editor_section

    assert editor_section({"spark-ls": {"model": "a"}, "other-tool": {"x": 1}}) == {"model": "a"}
    assert editor_section({"spark": {"contextBudget": 9}}) == {"contextBudget": 9}
    assert editor_section({"model": "flat"}) == {"model": "flat"}
    assert editor_section(None) == {} and editor_section([1, 2]) == {}


def test_workspace_configuration_resolves_each_folder(tmp_path: Path) -> None:
    from spark_ls.server.configuration import WorkspaceConfiguration

    one, two = tmp_path / "one", tmp_path / "two"
    _write(one / "spark-ls.toml", "context_budget = 900\n")
    _write(two / "pyproject.toml", "[tool.spark-ls]\ncontext_budget = 1200\npool_size = 3\n")
    ws = WorkspaceConfiguration(cli={"model": "cli-model"})
    ws.folders = [str(one), str(two)]
    ws.init_options = {"prefetch": False}
    assert ws.resolve() == []
    assert ws.settings_for((one / "a.py").as_uri()).context_budget == 900
    assert ws.settings_for((two / "b.py").as_uri()).context_budget == 1200
    assert ws.settings_for((tmp_path / "loose.py").as_uri()).context_budget == 2000  # in no folder
    assert ws.settings_for("untitled:Untitled-1").context_budget == 2000
    assert ws.primary.pool_size == 2 and ws.primary.model == "cli-model"  # the first folder's
    assert all(r.settings.prefetch is False for r in ws.resolved.values())
    ws.pushed = {"prefetch": True, "contextBudget": 50}
    problems = ws.resolve()
    assert ws.settings_for((one / "a.py").as_uri()).prefetch is True
    bad = "editor settings: setting 'contextBudget': must be at least 200, not 50; using"
    assert problems == [
        f"{bad} 900 (from {one / 'spark-ls.toml'})",
        f"{bad} 1200 (from {two / 'pyproject.toml'} [tool.spark-ls])",
        f"{bad} 2000 (the default)",
    ]


def test_an_empty_optional_string_leaves_the_layer_below() -> None:
    result = resolve_settings(None, editor={"baseUrl": " ", "record": ""},
                              environ={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert result.settings.base_url == "http://127.0.0.1:9/v1" and result.sources["base_url"].startswith("environment")
    assert result.settings.record is None and result.sources["record"] == "default" and result.problems == ()
