"""Content-addressed engine cache.

An engine directory is ``<cache>/<backend>-<key[:16]>/`` holding the backend's artifact, any side
files, and ``manifest.json`` (an EngineManifest). The key is the sha256 of

    the ONNX bytes (model file + external data files) + backend + backend version + device name
    + precision + threads + shape set + build options + backend.build_key_parts(spec)

so a second build of the same thing is a lookup: read the manifest, re-hash the files it lists,
done (milliseconds). A corrupted or truncated entry (artifact hash differs from the manifest's,
a listed file missing, manifest unreadable) is reported, removed and rebuilt, never used.

Builds happen in a temporary directory next to the entry and are renamed into place when the
manifest is written, so an interrupted build never leaves a half-written entry under the key.
The default cache directory is ``<out>/engines/``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import mmap
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from scaleprof.complexity.memory import MemoryEstimate, check_memory, require_estimate
from scaleprof.core.files import read_limited, make_temp_dir, owner_tag, remove_stale
from scaleprof.core.limits import check_threads
from scaleprof.core.onnx_file import (PRECISIONS, QUANTIZED, image_input, load_model, quantized_precision,
                                      quantized_types)
from scaleprof.core.text import first_line
from scaleprof.engines.base import Backend, BuildSpec, Engine, EngineManifest, ModelSource, ProgressCallback
from scaleprof.engines.devices import check_device
from scaleprof.engines.backends import BUILDS, backend_for, builds, get_backend
from scaleprof.engines.shapes import describe, fits_model_input
from scaleprof.errors import BadInput, EnvironmentProblem

MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 16 << 20   # a manifest lists its files' hashes: kilobytes
FORMAT = 1                      # bump when the entry layout changes: old entries become misses


def default_cache_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / "engines"


def file_sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        if hasattr(hashlib, "file_digest"):            # Python 3.11+: hashes in C, no Python loop
            return hashlib.file_digest(fh, "sha256").hexdigest()
        digest = hashlib.sha256()
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
        return digest.hexdigest()


_external_by_digest: dict[str, tuple[str, ...]] = {}   # content -> its external data locations


def _external_locations(path: Path, digest: str) -> tuple[str, ...]:
    """The external data files the model's initializers point to (usually none). Keyed by the
    file's content hash, so a process that builds many engines from one file parses it once."""
    if digest in _external_by_digest:
        return _external_by_digest[digest]
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else contextlib.nullcontext(b"") as data:
            named = data.find(b"location") >= 0      # cheap: an external-data model names its files
    locations: set[str] = set()
    if named:
        import onnx
        from onnx.external_data_helper import uses_external_data

        # Not core.onnx_file.load_model: its checker looks for the external files relative to the
        # working directory, so it rejects the very models this reads. Only the protobuf is parsed.
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception:                            # unreadable: the ONNX check reports it when it matters
            model = None
        for tensor in model.graph.initializer if model is not None else ():
            if uses_external_data(tensor):
                locations.update(e.value for e in tensor.external_data if e.key == "location")
    _external_by_digest[digest] = tuple(sorted(locations))
    return _external_by_digest[digest]


def onnx_sha256(path: str | Path) -> str:
    """sha256 over the ONNX bytes: the model file, then its external data files (name and bytes)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"no ONNX file at {path}")
    digest = file_sha256(path)
    locations = _external_locations(path, digest)
    if not locations:
        return digest
    combined = hashlib.sha256(digest.encode())
    for location in locations:
        f = path.parent / location
        if not f.is_file():
            raise BadInput(f"{path} refers to external data {location!r}, which is missing")
        combined.update(b"\0" + location.encode() + b"\0" + file_sha256(f).encode())
    return combined.hexdigest()


def cache_key(onnx_digest: str, backend: Backend, spec: BuildSpec) -> str:
    parts = {
        "format": FORMAT,
        "onnx_sha256": onnx_digest,
        "backend": backend.name,
        "backend_version": backend.version(),
        **backend.key_device(spec),
        "precision": spec.precision,
        "threads": spec.threads,
        "shapes": [str(p) for p in sorted(spec.shapes)],
        "ranges": [[str(r.min), str(r.opt), str(r.max)] for r in spec.ranges],
        "options": backend.key_options(spec),
        "backend_parts": backend.build_key_parts(spec),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=repr).encode()).hexdigest()


def draft_manifest(backend: Backend, spec: BuildSpec, onnx_path: Path, artifact: str, **extras) -> EngineManifest:
    """What a backend's build() returns in its Engine; the cache fills in key, hashes and timings."""
    return EngineManifest(
        backend=backend.name, backend_version=backend.version(), device=spec.device,
        device_name=backend.device_name(spec.device), precision=spec.precision, threads=spec.threads,
        key="", onnx_sha256="", onnx_path=str(Path(onnx_path).resolve()), artifact=artifact,
        shapes=tuple(sorted(spec.shapes)), ranges=tuple(spec.ranges), options=dict(spec.options),
        extras=dict(extras))


def rebuild_hint(m: EngineManifest) -> str:
    """The `scaleprof build` command line that makes this engine again (on this host)."""
    name = m.extras.get("input", "input")
    args = [f"--backend {m.backend} --device {m.device} --precision {m.precision}",
            "--shapes " + ",".join(f"{name}:{p}" for p in m.shapes)]
    for r in m.ranges[:1]:
        args.append(f"--minShapes {name}:{r.min} --optShapes {name}:{r.opt} --maxShapes {name}:{r.max}")
    if m.threads:
        args.append(f"--threads {m.threads}")
    args += [f"--option {k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in sorted(m.options.items())]
    return f"rebuild it: scaleprof build {m.onnx_path} " + " ".join(args)


def read_manifest(directory: Path) -> EngineManifest:
    path = Path(directory) / MANIFEST
    if not path.is_file():
        raise BadInput(f"{directory} is not an engine directory (no {MANIFEST})")
    try:
        return EngineManifest.from_json(read_limited(path, MAX_MANIFEST_BYTES, "engine manifest")
                                        .decode(errors="replace"))
    except (ValueError, TypeError, KeyError, RecursionError) as err:
        raise BadInput(f"{path} is corrupt ({type(err).__name__}: {first_line(err, 120)}); "
                       "delete the directory and rebuild") from None
    except OSError as err:
        raise BadInput(f"{path}: cannot read the engine manifest ({err.strerror or err})") from None


def corruption(directory: Path, manifest: EngineManifest) -> str | None:
    """Why the entry cannot be used (a listed file missing or with another hash), or None."""
    listed = {manifest.artifact: manifest.artifact_sha256, **manifest.extras.get("files_sha256", {})}
    if not manifest.artifact_sha256:
        return "its manifest records no artifact hash"
    for name, expected in listed.items():
        path = Path(directory) / name
        if not path.is_file():
            return f"{name} is missing"
        if file_sha256(path) != expected:
            return f"{name} does not match its recorded sha256 (corrupt or truncated)"
    return None


def open_engine(directory: str | Path, *, model_source: ModelSource | None = None) -> Engine:
    """An engine directory made by build_engine, verified against this host: same backend version,
    same device, files intact. Anything else is one line that says how to rebuild. Not loaded.
    ``model_source``: what rebuilds the network, for a backend that runs it (torch)."""
    directory = Path(directory)
    m = read_manifest(directory)
    check_threads(m.threads, f"engine {directory}: its manifest's threads")    # an edited one runs as written
    backend = get_backend(m.backend, model_source=model_source)
    check_device(m.device)
    try:
        backend.check_device(m.device)
    except EnvironmentProblem as err:
        raise EnvironmentProblem(f"engine {directory} was built for {m.device} ({m.device_name}), "
                                 f"which this host cannot use: {err}") from None
    here_version, here_device = backend.version(), backend.device_name(m.device)
    # An ahead-of-time plan is not bound to the host it was built on (the library checks its targets on load)
    if here_version != m.backend_version or (backend.device_bound and here_device != m.device_name):
        raise EnvironmentProblem(
            f"engine {directory} was built with {m.backend} {m.backend_version} for {m.device_name}, "
            f"this host has {m.backend} {here_version} on {here_device}; {rebuild_hint(m)}")
    problem = corruption(directory, m)
    if problem:
        raise BadInput(f"engine {directory} is unusable: {problem}; {rebuild_hint(m)}")
    return backend.load(directory, m)


@dataclass
class BuildResult:
    engine: Engine
    cached: bool                    # True: an intact entry was found, nothing was built
    key: str
    directory: Path
    seconds: float                  # wall time of build_engine, lookup included
    replaced: str | None = None     # why a previous entry under this key was thrown away


def _writable_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=".probe-", dir=path)
        os.rmdir(probe)
    except OSError as err:
        raise EnvironmentProblem(f"cannot write engines under {path}: {err.strerror or err}") from None


def _discard(path: Path) -> None:
    """Move an entry out of the way first (atomic), then delete it."""
    trash = path.with_name(f".trash-{path.name}-{owner_tag()}.{time.monotonic_ns()}")
    try:
        os.rename(path, trash)
    except FileNotFoundError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def lookup(cache_dir: Path, key: str, backend_name: str) -> tuple[Path, EngineManifest | None, str | None]:
    """(entry dir, manifest if the entry is intact, reason it is not if it exists but is broken)."""
    entry = Path(cache_dir) / f"{backend_name}-{key[:16]}"
    if not entry.exists():
        return entry, None, None
    try:
        m = read_manifest(entry)
    except BadInput as err:
        return entry, None, str(err)
    if m.key != key:
        return entry, None, "its manifest carries another key"
    problem = corruption(entry, m)
    return entry, (None if problem else m), problem


def check_request(spec: BuildSpec, backend: Backend | None = None) -> None:
    """BadInput for a BuildSpec no backend (or not ``backend``) can build: no shapes, an unknown
    precision or one the backend does not build, bad threads."""
    if not spec.shapes and not spec.ranges:
        raise BadInput("empty shape set: give at least one shape")
    if spec.precision not in PRECISIONS:
        raise BadInput(f"unknown precision {spec.precision!r}: use {', '.join(PRECISIONS)}")
    if backend is not None and not builds(backend.name, spec.precision):
        hint = " (fp8 QDQ files are for tensorrt-rtx and tensorrt)" if spec.precision == "fp8" else ""
        raise BadInput(f"the {backend.name} backend does not build {spec.precision} engines: it builds "
                       f"{', '.join(BUILDS[backend.name])}{hint}")
    check_threads(spec.threads)


def check_file_precision(model, spec: BuildSpec, onnx_path: Path) -> None:
    """BadInput when the file cannot give the precision asked for: a QDQ file builds in its own
    quantized type only, and an int8/fp8 engine needs a QDQ file of that type."""
    held = quantized_precision(model)
    if held is not None and spec.precision != held:
        raise BadInput(f"{onnx_path} is an {held} QDQ file: it builds {held} engines only (--precision {held}); "
                       f"export the model again for {spec.precision}")
    if held is None and spec.precision in QUANTIZED:
        raise BadInput(f"{onnx_path} is not quantized: an {spec.precision} engine is built from an {spec.precision} "
                       f"QDQ file (scaleprof export --precision {spec.precision})")


def build_engine(onnx_path: str | Path, spec: BuildSpec, cache_dir: str | Path, *, force: bool = False,
                 progress: ProgressCallback | None = None, model_source: ModelSource | None = None,
                 digest: str | None = None) -> BuildResult:
    """The engine for (onnx, spec): from the cache when an intact entry exists, else built.
    ``model_source``: what rebuilds the network, for a backend that runs it (torch); ``digest``:
    onnx_sha256 of the file, when the caller has it already."""
    start = time.perf_counter()
    say = progress or (lambda _msg: None)
    onnx_path, cache_dir = Path(onnx_path), Path(cache_dir)
    backend = backend_for(spec.backend, spec.device, model_source=model_source)
    check_request(spec, backend)
    digest = digest or onnx_sha256(onnx_path)
    key = cache_key(digest, backend, spec)
    entry, manifest, problem = lookup(cache_dir, key, backend.name)
    if manifest is not None and not force:
        # Same bytes, perhaps another path now: point the (in-memory) manifest at the file we were given.
        # The device too: a backend whose key leaves the device out (an ahead-of-time build) runs where asked.
        manifest = dataclasses.replace(manifest, onnx_path=str(onnx_path.resolve()), device=spec.device)
        return BuildResult(backend.load(entry, manifest), True, key, entry, time.perf_counter() - start)
    if problem:
        say(f"cached engine {entry} is unusable ({problem}); rebuilding")
    model = load_model(onnx_path, load_weights=False)
    name, dims = image_input(model, onnx_path)
    fits_model_input(dims, spec.shapes, spec.ranges, name)
    check_file_precision(model, spec, onnx_path)
    backend.check_model(model, onnx_path)
    memory = _check_memory(model, onnx_path, spec)
    _writable_dir(cache_dir)
    say(f"building {backend.name} engine for {onnx_path.name} ({describe(spec.shapes, spec.ranges)})")
    manifest, theirs = _build_entry(backend, onnx_path, spec, cache_dir, entry, key, digest, memory,
                                    _flavour(model, spec))
    if theirs:      # another process finished the same build first: its intact entry is used
        return BuildResult(backend.load(entry, manifest), True, key, entry, time.perf_counter() - start, problem)
    return BuildResult(backend.load(entry, manifest), False, key, entry, time.perf_counter() - start, problem)


def _flavour(model, spec: BuildSpec) -> dict:
    """``int8_activations`` of an int8 QDQ file ("uint8" when its activations are asymmetric uint8),
    for the manifest to say which int8 file an engine runs."""
    if spec.precision != "int8":
        return {}
    return {"int8_activations": "uint8" if "uint8" in quantized_types(model) else "int8"}


def _check_memory(model, onnx_path: Path, spec: BuildSpec) -> MemoryEstimate:
    """The model's memory estimate, once its largest shape is known to fit this machine (a build at a
    shape that could never run is refused before the runtime allocates for it)."""
    shapes = list(spec.shapes) + [r.max for r in spec.ranges]
    batch, resolution = max(p.batch for p in shapes), max(p.resolution for p in shapes)
    estimate = require_estimate(model, resolution)
    check_memory(estimate, batch, resolution, f"{onnx_path.name} at {batch}x{resolution}x{resolution}")
    return estimate


def _build_entry(backend: Backend, onnx_path: Path, spec: BuildSpec, cache_dir: Path, entry: Path, key: str,
                 digest: str, memory: MemoryEstimate, flavour: dict) -> tuple[EngineManifest, bool]:
    """Build in a temporary directory beside ``entry`` and rename it into place. Returns the entry's
    manifest and whether it is another process's (which renamed the same build into place first)."""
    remove_stale(cache_dir, ".trash-", "")          # what killed builds and discards left behind
    tmp = make_temp_dir(cache_dir, ".build-")
    try:
        built_start = time.perf_counter()
        draft = backend.build(onnx_path, spec, tmp).manifest
        files = {p.relative_to(tmp).as_posix(): file_sha256(p) for p in sorted(tmp.rglob("*"))
                 if p.is_file() and p.name != MANIFEST}
        if draft.artifact not in files:
            raise RuntimeError(f"backend {backend.name} wrote no artifact {draft.artifact!r}")
        artifact_sha = files.pop(draft.artifact)
        manifest = dataclasses.replace(      # the rest is draft_manifest's, from the same backend and spec
            draft, key=key, onnx_sha256=digest, artifact_sha256=artifact_sha,
            build_seconds=round(time.perf_counter() - built_start, 4),
            extras={**draft.extras, **flavour, "files_sha256": files, "memory": memory.to_dict()})
        (tmp / MANIFEST).write_text(manifest.to_json())
        if entry.exists():
            _discard(entry)
        try:
            os.rename(tmp, entry)
        except OSError:
            _, theirs, _ = lookup(cache_dir, key, backend.name)
            if theirs is None:
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return theirs, True
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest, False
