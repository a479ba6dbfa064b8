"""ActionRegistry: the decorator, params validation, "module:function" references,
entry-point plugins (real ``*.dist-info`` directories on sys.path), and the default
registry, built anew each call from the built-ins, ``@asyncbatch.action``
declarations and the plugins.

``@asyncbatch.action`` declares for the whole process, so tests that use it
declare unique names; what must start from nothing runs in a fresh interpreter."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

import asyncbatch
from asyncbatch.actions import builtin_specs, builtins, default_registry
from asyncbatch.actions._params import ChecksumParams, NoParams
from asyncbatch.kernel import Kernel, Tuning
from asyncbatch.registry import ENTRY_POINT_GROUP, ActionRegistry, ActionSpec, declared_actions


class LoudParams(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    volume: int = 1


async def noop(path: Path, params: Any) -> dict[str, Any]:
    """Do nothing.

    Second paragraph."""
    return {}


@pytest.fixture
def unique() -> Iterator[str]:
    """A fresh module-name prefix (sys.modules caches imports); its modules are
    forgotten afterwards."""
    prefix = f"abreg_{uuid.uuid4().hex}"
    yield prefix
    for name in [name for name in sys.modules if name.startswith(prefix)]:
        del sys.modules[name]


def fresh_python(code: str) -> Any:
    """Run ``code`` in a new interpreter and return what it prints, as JSON."""
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


# --- the decorator and the spec --------------------------------------------


def test_the_action_decorator_returns_the_function_unchanged_and_records_a_spec() -> None:
    reg = ActionRegistry()
    decorated = reg.action("loud", params=LoudParams)(noop)
    assert decorated is noop
    assert reg.get("loud") == ActionSpec("loud", noop, LoudParams, origin=__name__)
    assert "loud" in reg
    assert "quiet" not in reg


def test_a_sync_function_is_rejected_with_type_error() -> None:
    reg = ActionRegistry()

    def sync(path: Path, params: Any) -> dict[str, Any]:
        return {}

    with pytest.raises(TypeError, match="'sync_action' must be an async function"):
        reg.action("sync_action")(sync)  # type: ignore[type-var]
    with pytest.raises(TypeError):
        reg.register(ActionSpec("sync_action", sync, None))  # type: ignore[arg-type]
    assert "sync_action" not in reg


def test_a_later_registration_replaces_an_earlier_one() -> None:
    reg = ActionRegistry()
    reg.action("x")(noop)

    async def other(path: Path, params: Any) -> dict[str, Any]:
        return {}

    reg.action("x", params=LoudParams)(other)
    spec = reg.get("x")
    assert spec is not None
    assert (spec.func, spec.params) == (other, LoudParams)


def test_a_registry_iterates_its_specs_sorted_by_name() -> None:
    reg = ActionRegistry()
    for name in ["b", "c", "a"]:
        reg.action(name)(noop)
    assert [spec.name for spec in reg] == ["a", "b", "c"]


def test_get_returns_none_for_an_unknown_name() -> None:
    assert ActionRegistry().get("nothing") is None


def test_a_spec_describes_itself_with_its_docstring_first_line() -> None:
    assert ActionSpec("n", noop).description == "Do nothing."

    async def undocumented(path: Path, params: Any) -> dict[str, Any]:
        return {}

    assert ActionSpec("n", undocumented).description == ""


def test_validate_params_gives_a_model_instance_when_the_action_has_a_model() -> None:
    spec = ActionSpec("loud", noop, LoudParams)
    assert spec.validate_params({"volume": 3}) == LoudParams(volume=3)
    assert spec.validate_params({}) == LoudParams(volume=1)


def test_validate_params_raises_validation_error_for_bad_params() -> None:
    spec = ActionSpec("loud", noop, LoudParams)
    with pytest.raises(ValidationError):
        spec.validate_params({"volume": "3"})
    with pytest.raises(ValidationError):
        spec.validate_params({"pitch": 1})


def test_validate_params_gives_a_plain_dict_copy_without_a_model() -> None:
    raw: dict[str, Any] = {"anything": [1, 2], "goes": None}
    params = ActionSpec("free", noop).validate_params(raw)
    assert type(params) is dict
    assert params == raw
    assert params is not raw


BUILTIN_NAMES = ["checksum", "command", "count_lines", "count_words", "file_size", "search_pattern"]


class ByteCount:
    """A scanner: the bytes it was fed."""

    def __init__(self, path: str, size: int, params: Mapping[str, Any], tuning: Tuning) -> None:
        self.count = 0

    def update(self, data: bytes | bytearray) -> None:
        self.count += len(data)

    def result(self) -> dict[str, Any]:
        return {"bytes": self.count}


def test_a_spec_carries_a_kernel_and_a_registry_hands_it_back() -> None:
    kernel = Kernel(ByteCount, releases_gil=True)
    spec = ActionSpec("bytes", noop, None, origin="tests", kernel=kernel)
    assert ActionRegistry([spec]).get("bytes") is spec
    assert (kernel.reads, kernel.releases_gil, kernel.isolated) == (True, True, False)
    scanner = kernel.start("in.txt", 5, {}, Tuning())
    scanner.update(b"abc")
    scanner.update(bytearray(b"de"))
    assert scanner.result() == {"bytes": 5}
    assert ActionSpec("plain", noop).kernel is None


# --- the default registry ---------------------------------------------------


def test_the_default_registry_holds_the_builtins_with_their_models_and_kernels() -> None:
    assert {spec.name for spec in builtin_specs()} == set(BUILTIN_NAMES)
    reg = default_registry()
    for builtin in builtin_specs():
        assert reg.get(builtin.name) == builtin
        assert builtin.origin == "builtin"
        assert (builtin.kernel is None) == (builtin.name == "command")
        assert builtin.params is not None
    assert reg.get("count_lines") == ActionSpec(
        "count_lines",
        builtins.count_lines,
        NoParams,
        kernel=builtins.LINES,
        may_chdir=False,
        shares_params=True,
    )


def test_default_registry_builds_a_new_registry_each_call() -> None:
    first, second = default_registry(), default_registry()
    assert first is not second
    first.action("only_in_first")(noop)
    assert first.get("only_in_first") is not None
    assert second.get("only_in_first") is None
    assert default_registry().get("only_in_first") is None


def test_the_public_action_decorator_declares_for_every_default_registry_made_afterwards() -> None:
    name = f"public_{uuid.uuid4().hex}"
    before = default_registry()
    assert asyncbatch.action(name, params=LoudParams)(noop) is noop
    for reg in (default_registry(), default_registry()):
        spec = reg.get(name)
        assert spec is not None
        assert (spec.func, spec.params, spec.origin, spec.kernel) == (
            noop,
            LoudParams,
            __name__,
            None,
        )
    assert name in [spec.name for spec in declared_actions()]
    assert before.get(name) is None, "a registry made before the declaration is left alone"
    assert ActionRegistry().get(name) is None, "a registry of one's own starts empty"


IMPORT_ONLY = """
import json, sys
import asyncbatch, asyncbatch.actions, asyncbatch.registry
loaded = sorted(name for name in sys.modules if name.startswith(("asyncbatch", "pydantic")))
declared = [spec.name for spec in asyncbatch.registry.declared_actions()]
names = [spec.name for spec in asyncbatch.actions.default_registry()]
print(json.dumps({"loaded": loaded, "declared": declared, "names": names}))
"""


def test_importing_asyncbatch_and_its_actions_registers_nothing_and_loads_no_builtin() -> None:
    """In a fresh interpreter: the imports load neither the built-ins nor pydantic,
    and the first default registry holds the built-ins alone."""
    seen = fresh_python(IMPORT_ONLY)
    assert "asyncbatch.actions" in seen["loaded"], "the probe ran"
    assert "asyncbatch.actions.builtins" not in seen["loaded"]
    assert [name for name in seen["loaded"] if name.split(".")[0] == "pydantic"] == []
    assert seen["declared"] == []
    assert seen["names"] == BUILTIN_NAMES


DECLARE_A_BUILTIN = """
import json
import asyncbatch
from asyncbatch.actions import default_registry

before = default_registry()

@asyncbatch.action("count_lines")
async def mine(path, params):
    return {}

after, kept = default_registry().get("count_lines"), before.get("count_lines")
print(json.dumps({
    "after": [after.func.__name__, after.origin, after.params is None, after.kernel is None],
    "kept": [kept.func.__name__, kept.origin],
}))
"""


def test_an_action_declared_under_a_builtins_name_replaces_it_in_later_default_registries() -> None:
    """In a fresh interpreter, so that no other test sees the replaced built-in."""
    seen = fresh_python(DECLARE_A_BUILTIN)
    assert seen == {"after": ["mine", "__main__", True, True], "kept": ["count_lines", "builtin"]}


# --- "module:function" -----------------------------------------------------


def test_resolve_finds_a_registered_name(tmp_path: Path) -> None:
    reg = ActionRegistry()
    reg.action("x")(noop)
    assert reg.resolve("x", tmp_path) == reg.get("x")
    assert reg.resolve("y", tmp_path) is None


def test_resolve_imports_module_function_from_base_dir_and_restores_sys_path(
    tmp_path: Path, unique: str
) -> None:
    (tmp_path / f"{unique}.py").write_text("async def go(path, params):\n    return {}\n")
    path_before = list(sys.path)
    spec = ActionRegistry().resolve(f"{unique}:go", tmp_path)
    assert sys.path == path_before
    assert spec is not None
    assert spec.name == f"{unique}:go"
    assert spec.func is sys.modules[unique].go
    assert spec.params is None
    assert spec.origin == f"module {unique}"


def test_resolve_imports_module_function_from_sys_path_without_base_dir(
    tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / f"{unique}.py").write_text("async def go(path, params):\n    return {}\n")
    monkeypatch.syspath_prepend(tmp_path)
    spec = ActionRegistry().resolve(f"{unique}:go")
    assert spec is not None
    assert spec.func is sys.modules[unique].go


def test_a_module_function_decorated_with_action_reuses_its_params_model(
    tmp_path: Path, unique: str
) -> None:
    (tmp_path / f"{unique}.py").write_text(
        "from pydantic import BaseModel\n"
        "from asyncbatch.registry import action\n"
        "class Params(BaseModel):\n"
        "    pattern: str\n"
        f"@action('{unique}_named', params=Params)\n"
        "async def go(path, params):\n"
        "    return {}\n"
    )
    spec = default_registry().resolve(f"{unique}:go", tmp_path)
    assert spec is not None
    assert spec.params is sys.modules[unique].Params
    assert spec.origin == f"module {unique}"
    declared = default_registry().get(f"{unique}_named")
    assert declared is not None
    assert (declared.func, declared.params) == (spec.func, spec.params)
    own = ActionRegistry().resolve(f"{unique}:go", tmp_path)
    assert own is not None
    assert own.params is None, "a registry of one's own knows no declaration"


def test_a_module_function_registered_in_the_resolving_registry_reuses_its_model(
    tmp_path: Path, unique: str
) -> None:
    reg = ActionRegistry()
    (tmp_path / f"{unique}.py").write_text("async def go(path, params):\n    return {}\n")
    spec = reg.resolve(f"{unique}:go", tmp_path)
    assert spec is not None
    reg.action("go", params=LoudParams)(spec.func)
    again = reg.resolve(f"{unique}:go", tmp_path)
    assert again is not None
    assert again.params is LoudParams


@pytest.mark.parametrize("name", [spec.name for spec in builtin_specs()])
def test_a_module_function_naming_a_builtins_function_keeps_its_kernel_and_model(
    name: str,
) -> None:
    reg = default_registry()
    builtin = reg.get(name)
    assert builtin is not None
    module = builtin.func.__module__
    spec = reg.resolve(f"{module}:{name}")
    assert spec is not None
    assert spec.name == f"{module}:{name}"
    assert spec.origin == f"module {module}"
    assert (spec.func, spec.params, spec.kernel) == (builtin.func, builtin.params, builtin.kernel)
    assert spec.outputs is builtin.outputs, "its capabilities too"


def test_a_builtin_referenced_as_module_function_validates_params_with_its_model() -> None:
    spec = default_registry().resolve("asyncbatch.actions.builtins:checksum")
    assert spec is not None
    assert spec.validate_params({}) == ChecksumParams()
    with pytest.raises(ValidationError):
        spec.validate_params({"algorithm": "crc-nope"})


@pytest.mark.parametrize(
    ("module_text", "reference", "error", "message"),
    [
        (None, "{mod}:go", ImportError, "No module named"),
        (None, "{mod}:", ImportError, "not of the form 'module:function'"),
        (None, ":go", ImportError, "not of the form 'module:function'"),
        ("x = 1\n", "{mod}:go", ImportError, "has no attribute 'go'"),
        ("raise KeyError('boom')\n", "{mod}:go", ImportError, "KeyError: 'boom'"),
        ("def go(path, params):\n    return {}\n", "{mod}:go", TypeError, "not an async"),
        ("go = print\n", "{mod}:go", TypeError, "not an async function"),
    ],
)
def test_resolve_raises_a_readable_error_for_a_reference_that_does_not_import(
    tmp_path: Path,
    unique: str,
    module_text: str | None,
    reference: str,
    error: type[Exception],
    message: str,
) -> None:
    if module_text is not None:
        (tmp_path / f"{unique}.py").write_text(module_text)
    with pytest.raises(error, match=message):
        ActionRegistry().resolve(reference.format(mod=unique), tmp_path)
    assert str(tmp_path) not in sys.path


# --- entry-point plugins ---------------------------------------------------

MakePlugin = Callable[[dict[str, str], dict[str, str]], None]


@pytest.fixture
def make_plugin(tmp_path: Path, unique: str, monkeypatch: pytest.MonkeyPatch) -> MakePlugin:
    """Install a distribution the way pip leaves one on disk: ``entries`` maps
    action names to ``module:attr`` (``{mod}`` is a unique prefix), ``modules``
    maps module names to their source."""

    def make(entries: dict[str, str], modules: dict[str, str]) -> None:
        site = tmp_path / "site"
        dist_info = site / f"{unique}_plugin-1.0.dist-info"
        dist_info.mkdir(parents=True)
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {unique}-plugin\nVersion: 1.0\n"
        )
        lines = [f"{name} = {value.format(mod=unique)}" for name, value in entries.items()]
        (dist_info / "entry_points.txt").write_text(
            f"[{ENTRY_POINT_GROUP}]\n" + "\n".join(lines) + "\n[other.group]\nx = nowhere:x\n"
        )
        for module, source in modules.items():
            (site / f"{module.format(mod=unique)}.py").write_text(source)
        monkeypatch.syspath_prepend(site)

    return make


PLUGIN_SOURCE = "async def shout(path, params):\n    return {'shout': True}\n"


def test_a_plugin_registry_finds_an_entry_point_action_on_a_miss(
    make_plugin: MakePlugin, unique: str
) -> None:
    make_plugin({"shout": "{mod}_acts:shout"}, {"{mod}_acts": PLUGIN_SOURCE})
    reg = ActionRegistry(plugins=True)
    spec = reg.get("shout")
    assert spec is not None
    assert spec.func is sys.modules[f"{unique}_acts"].shout
    assert spec.params is None
    assert spec.origin == f"plugin {unique}_acts:shout"
    assert reg.plugin_warnings == []
    assert reg.resolve("shout") == spec
    assert default_registry().get("shout") == spec, "the default registry looks plugins up"


def test_a_registry_without_plugins_ignores_entry_points(make_plugin: MakePlugin) -> None:
    make_plugin({"shout": "{mod}_acts:shout"}, {"{mod}_acts": PLUGIN_SOURCE})
    reg = ActionRegistry()
    assert reg.get("shout") is None
    reg.load_plugins()  # explicitly asked for, they load all the same
    assert reg.get("shout") is not None


def test_plugins_are_loaded_lazily_and_only_once(make_plugin: MakePlugin) -> None:
    make_plugin({"broken": "{mod}_missing:f"}, {})
    reg = ActionRegistry(plugins=True)
    reg.action("known")(noop)
    assert reg.get("known") is not None
    assert reg.plugin_warnings == []  # a hit needs no plugin
    assert reg.get("unknown") is None
    assert reg.get("unknown-again") is None
    reg.load_plugins()
    assert len(reg.plugin_warnings) == 1


def test_a_broken_plugin_is_a_warning_and_the_others_still_load(
    make_plugin: MakePlugin, unique: str
) -> None:
    make_plugin(
        {
            "raises": "{mod}_broken:shout",
            "missing_attr": "{mod}_acts:nope",
            "missing_module": "{mod}_nowhere:shout",
            "sync": "{mod}_acts:sync",
            "shout": "{mod}_acts:shout",
        },
        {
            "{mod}_broken": "raise RuntimeError('plugin exploded')\n",
            "{mod}_acts": PLUGIN_SOURCE + "def sync(path, params):\n    return {}\n",
        },
    )
    reg = ActionRegistry(plugins=True)
    assert reg.get("shout") is not None
    assert [spec.name for spec in reg] == ["shout"]
    warnings = sorted(reg.plugin_warnings)
    assert len(warnings) == 4
    assert warnings[0].startswith(f"plugin action 'missing_attr' ({unique}_acts:nope) failed")
    assert "AttributeError" in warnings[0]
    assert warnings[1].startswith("plugin action 'missing_module'")
    assert "ModuleNotFoundError" in warnings[1]
    assert warnings[2].startswith("plugin action 'raises'")
    assert warnings[2].endswith("failed to load: RuntimeError: plugin exploded")
    assert warnings[3].startswith("plugin action 'sync'")
    assert "TypeError" in warnings[3]


def test_a_plugin_named_like_a_builtin_is_ignored_with_a_warning(
    make_plugin: MakePlugin, unique: str
) -> None:
    make_plugin({"count_lines": "{mod}_acts:shout"}, {"{mod}_acts": PLUGIN_SOURCE})
    reg = default_registry()
    reg.load_plugins()
    spec = reg.get("count_lines")
    assert spec is not None
    assert (spec.func, spec.kernel, spec.origin) == (
        builtins.count_lines,
        builtins.LINES,
        "builtin",
    )
    assert reg.plugin_warnings == [
        f"plugin action 'count_lines' ({unique}_acts:shout) ignored: "
        "a built-in already has that name"
    ]


def test_a_plugin_never_replaces_an_action_registered_in_code(
    make_plugin: MakePlugin, unique: str
) -> None:
    make_plugin({"mine": "{mod}_acts:shout"}, {"{mod}_acts": PLUGIN_SOURCE})
    reg = ActionRegistry(plugins=True)
    reg.register(ActionSpec("mine", noop, None, origin="my_code"))
    reg.load_plugins()
    spec = reg.get("mine")
    assert spec is not None
    assert spec.func is noop
    assert reg.plugin_warnings == [
        f"plugin action 'mine' ({unique}_acts:shout) ignored: my_code already has that name"
    ]


def test_a_plugin_decorated_with_action_keeps_its_params_model(
    make_plugin: MakePlugin, unique: str
) -> None:
    source = (
        "from pydantic import BaseModel\n"
        "import asyncbatch\n"
        "class Params(BaseModel):\n"
        "    volume: int = 1\n"
        f"@asyncbatch.action('{unique}_shout', params=Params)\n"
        "async def shout(path, params):\n"
        "    return {}\n"
    )
    make_plugin({"shout": "{mod}_acts:shout"}, {"{mod}_acts": source})
    reg = ActionRegistry(plugins=True, declared=declared_actions())
    spec = reg.get("shout")
    assert spec is not None
    assert spec.params is sys.modules[f"{unique}_acts"].Params


def decorated_module(*names: str) -> str:
    """A plugin module whose functions ``act_NAME`` are each declared with
    ``@asyncbatch.action(NAME, params=Params)``, as the example plugin does."""
    source = (
        "from pydantic import BaseModel\nimport asyncbatch\n"
        "class Params(BaseModel):\n    n: int = 1\n"
    )
    for name in names:
        source += (
            f"@asyncbatch.action({name!r}, params=Params)\n"
            f"async def act_{name}(path, params):\n    return {{}}\n"
        )
    return source


def test_a_plugin_imported_by_user_code_first_does_not_clash_with_itself(
    make_plugin: MakePlugin, unique: str
) -> None:
    """Its ``@action`` declared the name on import; the entry point is the same
    function, so it is the plugin, not a rival: no warning, and a plugin origin."""
    name = f"{unique}_top"
    make_plugin({name: f"{{mod}}_acts:act_{name}"}, {"{mod}_acts": decorated_module(name)})
    module = importlib.import_module(f"{unique}_acts")
    reg = default_registry()
    assert reg.get(name) is not None, "declared on import"
    reg.load_plugins()
    assert reg.plugin_warnings == []
    spec = reg.get(name)
    assert spec is not None
    assert (spec.func, spec.params) == (getattr(module, f"act_{name}"), module.Params)
    assert spec.origin == f"plugin {unique}_acts:act_{name}"


def test_a_plugin_module_with_two_entry_points_loads_both_without_warnings(
    make_plugin: MakePlugin, unique: str
) -> None:
    """Loading the first entry point imports the module, which registers both."""
    first, second = f"{unique}_first", f"{unique}_second"
    make_plugin(
        {first: f"{{mod}}_acts:act_{first}", second: f"{{mod}}_acts:act_{second}"},
        {"{mod}_acts": decorated_module(first, second)},
    )
    reg = default_registry()
    reg.load_plugins()
    assert reg.plugin_warnings == []
    for name in (first, second):
        spec = reg.get(name)
        assert spec is not None
        assert spec.params is sys.modules[f"{unique}_acts"].Params
        assert spec.origin == f"plugin {unique}_acts:act_{name}"


def test_a_plugin_entry_point_to_another_function_under_a_taken_name_is_still_ignored(
    make_plugin: MakePlugin, unique: str
) -> None:
    """A function of the same module but not the one registered is a rival."""
    name = f"{unique}_top"
    make_plugin(
        {name: "{mod}_acts:other"},
        {"{mod}_acts": decorated_module(name) + PLUGIN_SOURCE.replace("shout", "other")},
    )
    module = importlib.import_module(f"{unique}_acts")
    reg = default_registry()
    reg.load_plugins()
    spec = reg.get(name)
    assert spec is not None
    assert spec.func is getattr(module, f"act_{name}")
    assert reg.plugin_warnings == [
        f"plugin action {name!r} ({unique}_acts:other) ignored: {unique}_acts already has that name"
    ]
