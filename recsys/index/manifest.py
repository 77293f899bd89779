"""What an index version records about itself (``manifest.json``), and the identity it must share with
the running encoder and template to be served.

One typed model, one load and one save: a version whose manifest is missing, malformed or from
another format is refused with a message that says what to do.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, ValidationError

from recsys.errors import IndexMismatchError, IndexNotFoundError
from recsys.index.ann import METRIC

if TYPE_CHECKING:
    from recsys.model.encoder import Encoder
    from recsys.model.templates import Template

MANIFEST = "manifest.json"
FORMAT = 6  # 4: file sizes and checksums; 5: word and 3-gram BM25; 6: memory-mapped products and columns


class Identity(BaseModel):
    """What an index must share with the running encoder and template."""

    model_config = ConfigDict(frozen=True)

    model: str
    template: str
    dim: int
    metric: str

    @classmethod
    def of(cls, encoder: Encoder, template: Template) -> Identity:
        """The identity the running encoder and template give an index."""
        return cls(model=encoder.identity, template=template.hash, dim=encoder.dim, metric=METRIC)


class SpaceTuning(BaseModel):
    search_k: int  # -1: exact search (see recsys.index.ann.EXACT)
    recall_at_10: float
    probe_queries: int


class FileEntry(BaseModel):
    bytes: int
    sha256: str


class Counts(BaseModel):
    products: int
    rejected: int = 0
    distinct_texts: int = 0
    embedded: int = 0  # texts run through the model for this build (cache misses)
    delta_folded: int = 0  # live-delta operations folded into this build


class Manifest(Identity):
    model_config = ConfigDict(frozen=False, extra="ignore")

    format: int = FORMAT
    version: str = ""  # set when the build is published
    model_name: str = "unknown"
    template_name: str = "unnamed"
    trees: int
    tuning: dict[str, SpaceTuning]
    # dense.npy holds (1 - w)·search + w·similar for this short-vector weight w; None: no dense.npy
    dense_weight: float | None = None
    counts: Counts
    catalogue_hash: str
    built_at: str
    assemble_seconds: float = 0.0
    build_seconds: float = 0.0
    reindex_job: str = ""
    versions: dict[str, str] = {}
    files: dict[str, FileEntry] = {}  # every artifact (path relative to the version): size and checksum

    @property
    def identity(self) -> Identity:
        return Identity(model=self.model, template=self.template, dim=self.dim, metric=self.metric)

    @classmethod
    def load(cls, folder: Path) -> Manifest:
        path = Path(folder) / MANIFEST
        try:
            manifest = cls.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            raise IndexNotFoundError(f"{folder} has no {MANIFEST}") from None
        except ValidationError as exc:
            raise IndexMismatchError(f"{path} is not a valid manifest: {_first(exc)}") from None
        if manifest.format != FORMAT:
            raise IndexMismatchError(
                f"index {Path(folder).name} has format {manifest.format}, this recsys reads format {FORMAT}; "
                "rebuild it with `recsys index build`"
            )
        return manifest

    def record_files(self, folder: Path) -> None:
        """Note the size and checksum of every artifact in ``folder`` (all but the manifest itself)."""
        self.files = {
            str(path.relative_to(folder)): FileEntry(bytes=path.stat().st_size, sha256=_sha256(path))
            for path in sorted(Path(folder).rglob("*"))
            if path.is_file() and path.name != MANIFEST
        }

    def problems(self, folder: Path, deep: bool = False) -> list[str]:
        """What is wrong with the artifacts in ``folder``: missing or truncated files (and, ``deep``,
        changed contents). An empty list means the version is what its manifest says."""
        found = []
        for name, entry in self.files.items():
            path = Path(folder) / name
            if not path.is_file():
                found.append(f"{name} is missing")
            elif path.stat().st_size != entry.bytes:
                found.append(f"{name} has {path.stat().st_size} bytes, the manifest says {entry.bytes}")
            elif deep and _sha256(path) != entry.sha256:
                found.append(f"{name} does not match its checksum")
        if not self.files:
            found.append("the manifest lists no files")
        return found

    def save(self, folder: Path) -> None:
        (Path(folder) / MANIFEST).write_text(self.model_dump_json(indent=2), encoding="utf-8")

    def check_compatible(self, expected: Identity, path: Path) -> None:
        """Refuse an index built with another model, template or geometry than the running encoder."""
        for key, want in expected.model_dump().items():
            have = getattr(self, key)
            if have != want:
                raise IndexMismatchError(
                    f"index {path.name} was built with {key}={have!r} but this process runs "
                    f"{key}={want!r}; rebuild it (`recsys index build`) or run the matching "
                    "model and template (RECSYS_MODEL_DIR, RECSYS_TEMPLATES_PATH)"
                )


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _first(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"]) or "the document"
    return f"{where}: {error['msg']}"
