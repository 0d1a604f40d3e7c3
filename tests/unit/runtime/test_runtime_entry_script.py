"""The entry-script contract on the worker side: loading, run() arity, EntryScript."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from shared.errors import EntryScriptError
from shared.runtime.worker import COMPAT_DIR, MiniBatchContext, load_entry_script, wants_context


def test_run_arity_decides_whether_the_context_is_passed() -> None:
    def one(mini_batch): ...  # type: ignore[no-untyped-def]
    def two(mini_batch, mini_batch_context): ...  # type: ignore[no-untyped-def]
    def star(*args): ...  # type: ignore[no-untyped-def]
    def keyword(mini_batch, *, context=None): ...  # type: ignore[no-untyped-def]

    assert not wants_context(one)
    assert wants_context(two)
    assert wants_context(star)
    assert not wants_context(keyword)


def test_entry_scripts_that_break_the_contract_are_named(tmp_path: Path) -> None:
    (tmp_path / "norun.py").write_text("def init():\n    pass\n")
    with pytest.raises(EntryScriptError, match=r"norun\.py does not define run"):
        load_entry_script(tmp_path, "norun.py")
    with pytest.raises(EntryScriptError, match=r"entry script missing\.py not found"):
        load_entry_script(tmp_path, "missing.py")
    (tmp_path / "good.py").write_text("def run(mini_batch):\n    return mini_batch\n")
    assert load_entry_script(tmp_path, "good.py").run([1]) == [1]


def test_the_context_exposes_azure_mls_fields() -> None:
    context = MiniBatchContext(4, {"Store": "1001"}, dataset=None)
    assert context.minibatch_index == 4
    assert context.partition_key_value == {"Store": "1001"}
    assert MiniBatchContext(0, None, None).partition_key_value == {}


def test_entry_script_helper_is_a_singleton_with_azure_mls_properties(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(COMPAT_DIR))
    monkeypatch.setenv("AZUREML_BI_OUTPUT_PATH", str(tmp_path / "out"))
    for name in [m for m in sys.modules if m.startswith("azureml_user")]:
        monkeypatch.delitem(sys.modules, name)
    from azureml_user.parallel_run import EntryScript, _configure  # type: ignore[import-not-found]

    _configure(
        node_id="3", process_name="process007", log_dir=str(tmp_path / "log"), entry_script_dir="/code"
    )
    script = EntryScript()
    assert EntryScript() is script
    assert (script.agent_name, script.node_id, script.dir) == ("process007", "3", "/code")
    assert Path(script.output_dir).is_dir()
    script.logger.info("hello %s", "there")
    for handler in script.logger.handlers:
        handler.flush()
    log = (tmp_path / "log" / "process007.log.txt").read_text()
    assert "|INFO|" in log
    assert "hello there" in log
    assert textwrap.dedent(log).count("\n") == 1
