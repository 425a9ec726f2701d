"""Addon boundaries, read from source: who may import which addon (DESIGN §3 "Depend, then import").

Rules, checked on every ``.py`` file by its syntax tree (``import``/``from … import`` anywhere: top level, in a
function, under ``TYPE_CHECKING``; and ``importlib.import_module``/``__import__`` of a literal name):

- **The kernel imports no addon.** ``core`` finds addons through their manifests and calls them through
  hooks; an import of an addon module from ``core`` is a violation.
- **An addon's package imports another addon only through that addon's** ``api`` **module** (``from
  crm_contacts.api import get_contact``, ``from crm_contacts import api``, ``import crm_contacts.api``), **and
  only an addon its manifest lists in** ``depends`` — the *direct* dependencies, not their closure: the closure
  is what gets installed, but an addon that uses ``crm_contacts`` says so itself instead of relying on
  ``crm_sales`` to keep depending on it. This covers everything shipped in the package, ``testing/`` included.
- **An addon's test folder** (``addons/<x>/tests``, not shipped) may import any module of an addon in the
  dependency *closure*: the tests set up states no public function offers (a row edited behind the
  application's back, an order confirmed without its event) and drive the dependencies' own services end to
  end. It still may not import an addon that is not installed with it.

:func:`addon_import_violations` checks one addon (any addon, bundled or third party: it needs only the
manifests); :func:`kernel_import_violations` checks the kernel; :func:`requirement_problems` checks that an
addon's distribution requires the kernel and exactly the addon distributions its manifest depends on.
import-linter (``lint-imports``, contracts in ``pyproject.toml``) enforces the same shape for the bundled
addons; this check is the one that reads ``depends`` and works for addons import-linter's configuration does
not name.
"""

from __future__ import annotations

import ast
import importlib.util
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from core.addon import Addon
from core.errors import AddonError
from core.resolver import closure

__all__ = ["Violation", "addon_import_violations", "kernel_import_violations", "package_folder",
           "requirement_problems"]

PUBLIC = "api"  # the one module of an addon other addons may import


@dataclass(frozen=True)
class Violation:
    """One import that crosses a boundary it may not cross."""

    path: Path
    line: int
    imported: str  # the dotted name as written (``crm_contacts.models``, ``crm_contacts.{models}``)
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.imported}: {self.reason}"


def package_folder(name: str) -> Path:
    """The folder of the importable package ``name`` (an addon's package has the addon's name)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"{name!r} is not an importable package")
    return Path(next(iter(spec.submodule_search_locations)))


def _imports(tree: ast.AST, package: str) -> Iterator[tuple[int, str, tuple[str, ...]]]:
    """``(line, module, names)`` per import; ``names`` are those of ``from module import names`` (else ``()``).

    Relative imports resolve against ``package`` (the dotted name of the file's package)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                module = f"{base}.{module}" if module else base
            yield node.lineno, module, tuple(a.name for a in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in ("import_module", "__import__"):
                yield node.lineno, node.args[0].value, ()


def _files(folder: Path) -> Iterator[Path]:
    for path in sorted(folder.rglob("*.py")):
        if "__pycache__" not in path.parts:
            yield path


def _scan(folder: Path, package: str, addons: Iterable[str]) -> Iterator[tuple[Path, int, str, str, tuple[str, ...]]]:
    """Every import of a module of ``addons`` in ``folder``: ``(path, line, addon, module, names)``."""
    known = set(addons)
    for path in _files(folder):
        rel = path.relative_to(folder).with_suffix("")
        here = ".".join((package, *rel.parts[:-1]) if package else rel.parts[:-1])  # the file's package
        tree = ast.parse(path.read_bytes(), filename=str(path))
        for line, module, names in sorted(_imports(tree, here)):
            top = module.partition(".")[0]
            if top in known:
                yield path, line, top, module, names


def _public(addon: str, module: str, names: tuple[str, ...]) -> bool:
    """Whether the import reaches only ``<addon>.api``."""
    if module == addon:
        return bool(names) and all(n == PUBLIC for n in names)
    return module == f"{addon}.{PUBLIC}" or module.startswith(f"{addon}.{PUBLIC}.")


def _written(module: str, names: tuple[str, ...]) -> str:
    return f"{module}.{{{', '.join(names)}}}" if names and len(module.split(".")) == 1 else module


def addon_import_violations(name: str, addons: Mapping[str, Addon], folder: Path | None = None, *,
                            tests: bool = False) -> list[Violation]:
    """Imports of other addons in addon ``name``'s package that break the rules of this module.

    ``addons`` are the manifests known (``discover().addons``): an import of a name that is not among them is
    not an addon import. ``folder`` defaults to the installed package of ``name``. With ``tests=True``
    ``folder`` is the addon's test folder and the looser test rule applies (any module of the closure).
    """
    if folder is None:
        folder = package_folder(name)
    depends = set(addons[name].depends) if name in addons else set()
    try:
        installed = set(closure([name], addons)) - {name} if name in addons else set()
    except AddonError:  # a missing dependency: the resolver reports it at install; check what we can
        installed = depends
    out: list[Violation] = []
    package = "" if tests else name
    for path, line, addon, module, names in _scan(folder, package, set(addons) - {name}):
        written = _written(module, names)
        if tests:
            if addon not in installed:
                out.append(Violation(path, line, written, f"{addon!r} is not among {name}'s dependencies"))
        elif addon not in depends:
            why = "a dependency of a dependency: list it in depends" if addon in installed else "not in depends"
            out.append(Violation(path, line, written, f"{addon!r} is {why} of {name}"))
        elif not _public(addon, module, names):
            out.append(Violation(path, line, written, f"only {addon}.{PUBLIC} may be imported from another addon"))
    return out


def kernel_import_violations(addons: Iterable[str], folder: Path | None = None) -> list[Violation]:
    """Imports of any of ``addons`` (names) in the kernel's package ``core`` (or ``folder``)."""
    folder = folder or Path(__file__).parent
    return [Violation(path, line, _written(module, names), "the kernel imports no addon")
            for path, line, _addon, module, names in _scan(folder, "core", addons)]


def requirement_problems(name: str, addons: Mapping[str, Addon], distributions: Mapping[str, str],
                         requirements: Iterable[str], kernel: str = "crm-kernel") -> list[str]:
    """Where addon ``name``'s distribution requirements and its manifest's ``depends`` disagree.

    The distribution must require the kernel and, for every addon in ``depends``, the distribution that ships
    it (``distributions``: addon → distribution, as ``discover()`` found them); and it must not require the
    distribution of a known addon it does not list in ``depends`` (import it, and the manifest must say so).
    ``requirements`` are PEP 508 strings: ``[project].dependencies`` or ``importlib.metadata.requires(dist)``.
    """
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    def dist(addon: str) -> str:
        return str(canonicalize_name(distributions.get(addon, addon.replace("_", "-"))))

    parsed = [Requirement(r) for r in requirements]
    have = {str(canonicalize_name(r.name)) for r in parsed if "extra" not in str(r.marker or "")}  # not test extras
    depends = addons[name].depends
    out: list[str] = []
    if str(canonicalize_name(kernel)) not in have:
        out.append(f"does not require {kernel}")
    out += [f"depends on {dep} but does not require {dist(dep)}" for dep in depends if dist(dep) not in have]
    out += [f"requires {dist(other)} but does not list {other} in depends" for other in sorted(addons)
            if other != name and other not in depends and dist(other) in have]
    return out
