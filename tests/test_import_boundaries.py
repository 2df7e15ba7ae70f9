"""The architecture's import rules, checked on the source (STYLE.md "One composition root").

* The pure domain core imports nothing of the project outside ``edge_agent.domain`` and no I/O
  library (sqlite, sockets, HTTP, devices).
* The supervisor (``edge_agent/runtime/supervisor.py``) imports no part it supervises.
* Only the composition root (``edge_agent/wiring.py``) imports ``hardware`` or HQ's
  ``cloud_sync`` from ``edge_agent``; ``hardware`` and ``cloud_sync`` never import each other.
* The one exception is the wire contract, ``cloud_sync.contract``: pure definitions both ends
  of the wire import. It imports only the standard library, so the box importing it pulls in
  nothing of HQ (which needs numpy), which a fresh interpreter proves.
* The feature packages (cache, redemption, issuing, printing, events) sit below the adapters:
  they never import the POS API, the runtime, the CLI or the wiring, so a new way in (the MQTT
  link, a pushed config) calls the same services the tills do.
* HQ shares only the box's pure domain (code format, promotions), never its storage or services.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IO_MODULES = {
    "sqlite3",
    "sqlite_utils",
    "socket",
    "http",
    "httpx",
    "fastapi",
    "uvicorn",
    "escpos",
    "bleak",
    "nfc",
    "paho",
    "subprocess",
    "threading",
}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def offenders(paths: list[Path], banned: set[str]) -> dict[str, set[str]]:
    found = {}
    for path in paths:
        bad = {n for n in imported(path) if n.split(".")[0] in banned or n in banned}
        if bad:
            found[str(path.relative_to(ROOT))] = bad
    return found


def test_domain_core_does_no_io_and_stands_alone() -> None:
    paths = modules("edge_agent/domain")
    assert not offenders(paths, IO_MODULES | {"hardware", "cloud_sync", "config"})
    for path in paths:
        project = {n for n in imported(path) if n.split(".")[0] == "edge_agent"}
        assert all(n.startswith("edge_agent.domain") for n in project), (path, project)


def test_only_the_composition_root_reaches_hardware_and_hq() -> None:
    paths = [p for p in modules("edge_agent") if p.name != "wiring.py"]
    found = offenders(paths, {"hardware", "cloud_sync"})
    beyond_contract = {
        path: bad
        for path, names in found.items()
        if (bad := {n for n in names if not n.startswith("cloud_sync.contract")})
    }
    assert not beyond_contract


def test_the_wire_contract_is_pure_and_imports_nothing_of_hq() -> None:
    stdlib = set(sys.stdlib_module_names)
    for path in modules("cloud_sync/contract"):
        names = {n.split(".")[0] for n in imported(path)} - {"__future__"}
        project = {n for n in imported(path) if n.split(".")[0] == "cloud_sync"}
        assert all(n.startswith("cloud_sync.contract") for n in project), (path, project)
        assert names - {"cloud_sync"} <= stdlib - IO_MODULES, (path, names)
    # What the box loads when it opens its cache and serves: no HQ module. (numpy is not
    # checked: sqlite_utils imports it whenever it is installed, as it is in this venv.)
    probe = (
        "import sys, edge_agent.cache.code_cache, edge_agent.cache.snapshot_load, "
        "edge_agent.cli.main; "
        "hq = [m for m in sys.modules if m.startswith('cloud_sync') "
        "and not m.startswith('cloud_sync.contract') and m != 'cloud_sync']; print(hq)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_hardware_and_hq_do_not_import_each_other() -> None:
    assert not offenders(modules("hardware"), {"cloud_sync"})
    assert not offenders(modules("cloud_sync"), {"hardware"})


def test_the_supervisor_knows_no_part_it_supervises() -> None:
    # Tasks are handed to it as values; it must not grow a dependency on the server, the
    # printer or the cache, so the sync pump and the scanners can be added the same way.
    for name in ("supervisor.py", "timer.py"):
        path = ROOT / "edge_agent" / "runtime" / name
        assert not offenders([path], IO_MODULES | {"hardware", "cloud_sync", "config"})
        project = {n for n in imported(path) if n.split(".")[0] == "edge_agent"}
        assert project <= {"edge_agent.runtime.timer"}, (path, project)


FEATURES = ("cache", "redemption", "issuing", "printing", "events", "sync", "points")
ADAPTERS = {"api", "runtime", "cli", "wiring", "services"}


def test_feature_packages_never_reach_up_into_the_adapters() -> None:
    for feature in FEATURES:
        for path in modules(f"edge_agent/{feature}"):
            up = {
                n
                for n in imported(path)
                if n.split(".")[0] == "edge_agent"
                and n.split(".")[1:2]
                and n.split(".")[1] in ADAPTERS
            }
            assert not up, (str(path.relative_to(ROOT)), up)


def test_hq_shares_only_the_box_pure_domain() -> None:
    for path in modules("cloud_sync"):
        box = {n for n in imported(path) if n.split(".")[0] == "edge_agent"}
        assert all(n.startswith("edge_agent.domain") for n in box), (path, box)
