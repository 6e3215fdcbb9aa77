"""Versioned model bundles on disk: save, list, resolve, verify, promote, roll back (SPEC M9).

Layout (see the model-layer design note)::

    <root>/<universe>/<model>/<version>/manifest.json, members/..., calibration.json, ensemble.json
    <root>/<universe>/<model>/current.json   {"version": "v0002", "history": ["v0001", "v0002"]}

A bundle is immutable once written: it is assembled in a hidden temp directory
next to its destination and renamed into place in one step, so a reader never
sees half a bundle, and an existing version is never overwritten.  Every file's
sha256 is recorded in the manifest and checked before anything is loaded: a
model file that changed on disk is refused, never "mostly" trusted.  Only JSON
is read here; nothing is ever unpickled.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hydraquant.errors import HydraError

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CURRENT = "current.json"
FORMAT = 1
_VERSION_RE = re.compile(r"^v(\d{4,})$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
#: metrics shown by ``models list`` (the first ones present, holdout preferred over OOF)
KEY_METRICS = ("log_loss", "roc_auc", "auc_pr", "brier", "ece", "accuracy", "rmse", "mae", "mae_over_std")
_INTEGRITY_ADVICE = "re-train or restore the bundle; do not load it"


class ModelIntegrityError(HydraError):
    """A bundle's files do not match the sha256 recorded in its manifest."""


@dataclass(frozen=True)
class BundleRef:
    universe: str
    model: str
    version: str
    path: Path

    @property
    def label(self) -> str:
        return f"{self.universe}/{self.model}@{self.version}"


@dataclass(frozen=True)
class BundleInfo:
    universe: str
    model: str
    version: str
    created_at: str
    is_current: bool
    path: Path
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.universe}/{self.model}@{self.version}"


def version_name(number: int) -> str:
    return f"v{number:04d}"


def version_number(name: str) -> int | None:
    m = _VERSION_RE.match(name)
    return int(m.group(1)) if m else None


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def bundle_files(directory: Path) -> builtins.list[str]:
    """Every regular file under a bundle except the manifest, as sorted POSIX relative paths."""
    out = []
    for p in directory.rglob("*"):
        if p.is_file() or p.is_symlink():
            rel = p.relative_to(directory).as_posix()
            if rel != MANIFEST:
                out.append(rel)
    return sorted(out)


def check_files(directory: Path, manifest: dict[str, Any]) -> dict[str, str]:
    """Status of every listed or present file: ``ok``, ``missing``, ``tampered`` or ``unlisted``."""
    listed: dict[str, str] = manifest.get("files") or {}
    status: dict[str, str] = {}
    for rel, expected in listed.items():
        path = directory / rel
        if not _inside(directory, path) or not path.is_file() or path.is_symlink():
            status[rel] = "missing"
        else:
            status[rel] = "ok" if sha256_file(path) == expected else "tampered"
    for rel in bundle_files(directory):
        if rel not in listed:
            status[rel] = "unlisted"
    return status


def read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HydraError(f"{what} not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise HydraError(f"{what} {path} is not valid JSON: {exc}", hint="restore it from a backup") from None
    if not isinstance(data, dict):
        raise HydraError(f"{what} {path} is not a JSON object", hint="restore it from a backup")
    return data


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON via a temp file + os.replace so readers see the old or the new file, never half."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def _check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise HydraError(
            f"invalid {what} name {value!r}",
            hint="use letters, digits, '_', '-' or '.', starting with a letter or digit (no '/' or '@')",
        )
    return value


def _validate_manifest(manifest: dict[str, Any], staged: Path) -> None:
    """Refuse a bundle that a predictor could not load, before it gets a version number."""
    features = manifest.get("features")
    if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
        raise HydraError("manifest 'features' must be a non-empty ordered list of feature names")
    if len(set(features)) != len(features):
        raise HydraError("manifest 'features' contains duplicates")
    task = manifest.get("task")
    if task not in ("classification", "regression"):
        raise HydraError(f"manifest 'task' must be classification or regression, got {task!r}")
    if task == "classification" and not manifest.get("classes"):
        raise HydraError("manifest 'classes' is required for a classification bundle")
    members = manifest.get("members")
    if not isinstance(members, list) or not members:
        raise HydraError("manifest 'members' must list at least one member with its folds")
    for member in members:
        name = member.get("name")
        folds = member.get("folds") or []
        if not folds:
            raise HydraError(f"manifest member {name!r} has no folds")
        for fold in folds:
            d = staged / str(fold.get("dir", ""))
            if not fold.get("dir") or not _inside(staged, d) or not d.is_dir():
                raise HydraError(
                    f"member {name!r} fold {fold.get('fold')!r}: directory {fold.get('dir')!r} is not in {staged}",
                    hint="write each fold with Learner.save into the staged bundle before saving it",
                )


def parse_ref(ref: str) -> tuple[str | None, str, str | None]:
    """``model``, ``universe/model``, either with ``@v0002`` -> (universe, model, version)."""
    text = ref.strip()
    version = None
    if "@" in text:
        text, version = text.rsplit("@", 1)
        if version_number(version) is None:
            if version.isdigit():
                version = version_name(int(version))
            else:
                raise HydraError(f"invalid version {version!r} in {ref!r}", hint="write it like model@v0002")
    parts = [p for p in text.split("/") if p]
    if len(parts) == 1:
        return None, parts[0], version
    if len(parts) == 2:
        return parts[0], parts[1], version
    raise HydraError(f"invalid model reference {ref!r}", hint="use MODEL, UNIVERSE/MODEL or UNIVERSE/MODEL@v0002")


class ModelRegistry:
    """Bundles under ``root``; every method reads the disk afresh (no cached state)."""

    def __init__(self, root: str | os.PathLike[str] = "models") -> None:
        self.root = Path(root)

    # -- writing -------------------------------------------------------------------------------

    def save_bundle(
        self, universe: str, model: str, staged_dir: str | os.PathLike[str], manifest: dict[str, Any],
        *, move: bool = False,
    ) -> BundleRef:
        """Store the staged files as the next version, with a manifest holding every file's sha256."""
        _check_name(universe, "universe")
        _check_name(model, "model")
        staged = Path(staged_dir)
        if not staged.is_dir():
            raise HydraError(f"staged bundle directory {staged} does not exist")
        _validate_manifest(manifest, staged)
        model_dir = self.root / universe / model
        model_dir.mkdir(parents=True, exist_ok=True)
        tmp = model_dir / f".staging-{uuid.uuid4().hex}"
        try:
            if move:
                shutil.move(str(staged), str(tmp))
            else:
                shutil.copytree(staged, tmp, symlinks=False)
            (tmp / MANIFEST).unlink(missing_ok=True)  # ours replaces any staged one
            bad = [p for p in tmp.rglob("*") if p.is_symlink()]
            if bad:
                raise HydraError(f"staged bundle contains a symlink: {bad[0]}", hint="stage real files only")
            files = {rel: sha256_file(tmp / rel) for rel in bundle_files(tmp)}
            body = {k: v for k, v in manifest.items() if k not in ("files", "version")}
            body.setdefault("format", FORMAT)
            body["universe"], body["model"] = universe, model
            body.setdefault("created_at", datetime.now(UTC).isoformat(timespec="seconds"))
            version = self._publish(model_dir, tmp, body, files)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        ref = BundleRef(universe, model, version, model_dir / version)
        if not (model_dir / CURRENT).exists():
            write_json_atomic(model_dir / CURRENT, {"version": version, "history": [version]})
            log.info("%s is the first bundle of %s/%s: it is now current", version, universe, model)
        log.info("saved bundle %s (%d files)", ref.label, len(files))
        return ref

    def _publish(self, model_dir: Path, tmp: Path, body: dict[str, Any], files: dict[str, str]) -> str:
        """Rename ``tmp`` to the next free version; a concurrent winner just pushes us one further."""
        number = max((n for n in map(version_number, self._version_dirs(model_dir)) if n), default=0) + 1
        for _ in range(1000):
            version = version_name(number)
            dest = model_dir / version
            manifest = {**body, "version": version, "files": files}
            (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n", encoding="utf-8")
            if not dest.exists():
                try:
                    os.rename(tmp, dest)  # atomic; fails if another writer created dest meanwhile
                    return version
                except OSError:
                    if not dest.exists():
                        raise
            number += 1
        raise HydraError(f"could not allocate a version under {model_dir}")

    # -- reading -------------------------------------------------------------------------------

    @staticmethod
    def _version_dirs(model_dir: Path) -> builtins.list[str]:
        if not model_dir.is_dir():
            return []
        names = [p.name for p in model_dir.iterdir() if p.is_dir() and version_number(p.name) is not None]
        return sorted(names, key=lambda n: version_number(n) or 0)

    def versions(self, universe: str, model: str) -> builtins.list[str]:
        return self._version_dirs(self.root / universe / model)

    def models(self) -> builtins.list[tuple[str, str]]:
        """Every (universe, model) holding at least one version."""
        if not self.root.is_dir():
            return []
        out = []
        for u in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for m in sorted(p for p in u.iterdir() if p.is_dir() and not p.name.startswith(".")):
                if self._version_dirs(m):
                    out.append((u.name, m.name))
        return out

    def current(self, universe: str, model: str) -> dict[str, Any] | None:
        path = self.root / universe / model / CURRENT
        return read_json(path, "current pointer") if path.exists() else None

    def current_version(self, universe: str, model: str) -> str | None:
        cur = self.current(universe, model)
        return str(cur["version"]) if cur and cur.get("version") else None

    def list(self, universe: str | None = None, model: str | None = None) -> builtins.list[BundleInfo]:
        out = []
        for u, m in self.models():
            if (universe is not None and u != universe) or (model is not None and m != model):
                continue
            current = self.current_version(u, m)
            for v in self.versions(u, m):
                path = self.root / u / m / v
                try:
                    manifest = read_json(path / MANIFEST, "manifest")
                except HydraError as exc:
                    log.warning("skipping %s: %s", path, exc.message)
                    continue
                out.append(BundleInfo(u, m, v, str(manifest.get("created_at", "")), v == current, path,
                                      key_metrics(manifest)))
        return out

    def resolve_ref(self, ref: str) -> BundleRef:
        """Find a bundle by ``model``, ``universe/model`` and optional ``@version`` (default: current)."""
        universe, model, version = parse_ref(ref)
        known = self.models()
        if universe is None:
            matches = [(u, m) for u, m in known if m == model]
        else:
            matches = [(u, m) for u, m in known if (u, m) == (universe, model)]
        if not matches:
            candidates = ", ".join(f"{u}/{m}" for u, m in known) or "none"
            raise HydraError(f"no model {ref!r} in the registry at {self.root} (available: {candidates})",
                             hint="see `hydraquant models list`, or pass --registry DIR")
        if len(matches) > 1:
            candidates = ", ".join(f"{u}/{m}" for u, m in matches)
            raise HydraError(f"model name {model!r} is ambiguous: {candidates}",
                             hint="name it as UNIVERSE/MODEL")
        u, m = matches[0]
        versions = self.versions(u, m)
        if version is None:
            version = self.current_version(u, m)
            if version is None:
                version = versions[-1]
                log.warning("%s/%s has no current pointer; using the latest version %s", u, m, version)
        if version not in versions:
            raise HydraError(f"{u}/{m} has no version {version} (available: {', '.join(versions)})",
                             hint="see `hydraquant models list`")
        return BundleRef(u, m, version, self.root / u / m / version)

    def resolve(self, ref: str) -> Path:
        return self.resolve_ref(ref).path

    def show(self, ref: str) -> dict[str, Any]:
        return read_json(self.resolve(ref) / MANIFEST, "manifest")

    def verify(self, path: str | os.PathLike[str]) -> dict[str, Any]:
        """Check every file's sha256 against the manifest; return the manifest when all match."""
        directory = Path(path)
        manifest_path = directory / MANIFEST
        if not manifest_path.is_file():
            raise ModelIntegrityError(f"bundle {directory} has no {MANIFEST}: {_INTEGRITY_ADVICE}")
        try:
            manifest = read_json(manifest_path, "manifest")
        except HydraError as exc:
            raise ModelIntegrityError(f"{exc.message}: {_INTEGRITY_ADVICE}") from None
        if not isinstance(manifest.get("files"), dict) or not manifest["files"]:
            raise ModelIntegrityError(f"manifest {manifest_path} lists no file hashes: {_INTEGRITY_ADVICE}")
        bad = {rel: s for rel, s in check_files(directory, manifest).items() if s != "ok"}
        if bad:
            what = "; ".join(f"{rel} is {s}" for rel, s in sorted(bad.items()))
            raise ModelIntegrityError(
                f"bundle {directory} failed its integrity check ({what}): {_INTEGRITY_ADVICE}",
                hint=f"restore {directory} from a backup, or if it is the current version return to the "
                f"previous one with `hydraquant models rollback {directory.parent.parent.name}/{directory.parent.name}`",
            )
        return manifest

    # -- current pointer -----------------------------------------------------------------------

    def promote(self, ref: str) -> BundleRef:
        """Make a version current (``ref`` without ``@version``: the latest) and record it in history."""
        version = parse_ref(ref)[2]
        target = self.resolve_ref(ref)
        if version is None:  # "promote the model" means its newest version
            latest = self.versions(target.universe, target.model)[-1]
            target = BundleRef(target.universe, target.model, latest, target.path.parent / latest)
        self.verify(target.path)
        model_dir = target.path.parent
        cur = self.current(target.universe, target.model) or {"version": None, "history": []}
        history = [str(v) for v in cur.get("history") or []]
        if cur.get("version") == target.version:
            log.info("%s is already current", target.label)
            return target
        history.append(target.version)
        write_json_atomic(model_dir / CURRENT, {"version": target.version, "history": history})
        log.info("promoted %s", target.label)
        return target

    def rollback(self, universe: str, model: str) -> BundleRef:
        """Return to the version that was current before the present one."""
        ref = self.resolve_ref(f"{universe}/{model}")
        cur = self.current(ref.universe, ref.model) or {}
        history = [str(v) for v in cur.get("history") or []]
        if history and history[-1] != cur.get("version"):
            history.append(str(cur.get("version")))
        if len(history) < 2:
            raise HydraError(f"{ref.universe}/{ref.model} has no earlier current version to roll back to",
                             hint="promote a specific version instead: `hydraquant models promote MODEL@v0001`")
        history.pop()
        previous = history[-1]
        target = BundleRef(ref.universe, ref.model, previous, ref.path.parent / previous)
        if not target.path.is_dir():
            raise HydraError(f"cannot roll back {ref.universe}/{ref.model}: version {previous} no longer exists",
                             hint="promote an existing version instead")
        write_json_atomic(ref.path.parent / CURRENT, {"version": previous, "history": history})
        log.info("rolled back %s/%s to %s", ref.universe, ref.model, previous)
        return target


def key_metrics(manifest: dict[str, Any]) -> dict[str, float]:
    """A few headline scalars: holdout when present, else out-of-fold."""
    metrics = manifest.get("metrics") or {}
    for scope in ("holdout", "oof"):
        block = metrics.get(scope)
        if isinstance(block, dict) and block:
            found = {k: float(block[k]) for k in KEY_METRICS
                     if isinstance(block.get(k), (int, float)) and not isinstance(block.get(k), bool)}
            if found:
                return {f"{scope}.{k}": v for k, v in found.items()}
    return {}
