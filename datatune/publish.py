"""Publishing a built folder to the Hub, and mirroring Hub datasets into a local catalog.

Both go through huggingface_hub as they are; offline they fail with a one-line OfflineError.
`push` uploads only what a build writes (an allow-list), never a symlink, never the run state.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from .catalog.hub import is_connection_error, offline_error
from .core.errors import CatalogError, ConfigError, OfflineError

# what `datatune build` / `datatune report` write, relative to the folder: the only files pushed
PUSHED_FILES = ("README.md", "plans.json", "manifest.json", "report.html")
PUSHED_GLOBS = (("data", ".parquet"), ("plots", ".png"))


def _regular(p: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(p).st_mode)  # a symlink is not followed
    except OSError:
        return False


def files_to_push(folder: Path) -> list[str]:
    """The relative paths `push` uploads: data/*.parquet, README.md, plans.json, manifest.json, plots/*.png, report.html."""
    folder = Path(folder)
    out = [name for name in PUSHED_FILES if _regular(folder / name)]
    for sub, suffix in PUSHED_GLOBS:
        d = folder / sub
        if d.is_symlink() or not d.is_dir():
            continue
        out += sorted(f"{sub}/{p.name}" for p in d.iterdir() if p.name.endswith(suffix) and not p.name.startswith(".") and _regular(p))
    return out


def push(folder: Path, repo_id: str, *, api=None, private: bool = False) -> str:
    """Upload what the build wrote (see `files_to_push`); nothing else in the folder, never the run state."""
    folder = Path(folder)
    files = files_to_push(folder)
    if "README.md" not in files or not any(f.startswith("data/") for f in files):
        raise CatalogError(f"{folder} is not a built dataset (no README.md and data/*.parquet); run `datatune build` first")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        from huggingface_hub import CommitOperationAdd

        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.create_commit(repo_id=repo_id, repo_type="dataset",
                                 operations=[CommitOperationAdd(path_in_repo=f, path_or_fileobj=str(folder / f)) for f in files],
                                 commit_message="Upload dataset built with datatune")
    except Exception as e:  # noqa: BLE001
        if is_connection_error(e):
            raise OfflineError(f"the Hugging Face Hub can't be reached ({type(e).__name__}); nothing was pushed: "
                               "retry when online, and check HF_ENDPOINT if you use a mirror") from e
        raise ConfigError(f"upload to {repo_id} failed ({type(e).__name__}: {str(e)[:150]}); check HF_TOKEN and the repo name") from e
    return f"https://huggingface.co/datasets/{repo_id}" if not getattr(info, "repo_url", None) else str(info.repo_url)


def mirror(names: list[str], to: Path, *, api=None, allow_patterns: list[str] | None = None) -> list[Path]:
    """Download Hub dataset repos into `to/datasets/<owner>__<name>/` (the layout of ../shared/hub)."""
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    to = Path(to)
    (to / "datasets").mkdir(parents=True, exist_ok=True)
    done = []
    for name in names:
        target = to / "datasets" / name.replace("/", "__", 1)
        try:
            api.snapshot_download(repo_id=name, repo_type="dataset", local_dir=str(target),
                                  allow_patterns=allow_patterns or ["README.md", "data/**", "*.parquet", "*.jsonl", "*.json", "**/*.parquet"])
        except Exception as e:  # noqa: BLE001
            if is_connection_error(e):
                raise offline_error(e) from e
            raise CatalogError(f"could not mirror {name} ({type(e).__name__}: {str(e)[:150]})") from e
        (target / ".mirror.json").write_text(json.dumps({"repo_id": name}))
        done.append(target)
    return done
