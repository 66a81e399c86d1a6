"""Publishing a built folder to the Hub, and mirroring Hub datasets into a local catalog.

Both go through huggingface_hub as they are; offline they fail with a one-line OfflineError.
"""

from __future__ import annotations

import json
from pathlib import Path

from .catalog.hub import _offline, is_connection_error
from .errors import CatalogError, ConfigError


def push(folder: Path, repo_id: str, *, api=None, private: bool = False) -> str:
    """Upload the folder unchanged (data/, README.md, plans.json, manifest.json; never the run state)."""
    folder = Path(folder)
    if not (folder / "README.md").is_file() or not (folder / "data").is_dir():
        raise CatalogError(f"{folder} is not a built dataset (no README.md and data/); run `datatune build` first")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="dataset",
                                 ignore_patterns=[".datatune/*", ".datatune/**", "*.tmp"],
                                 commit_message="Upload dataset built with datatune")
    except Exception as e:  # noqa: BLE001
        if is_connection_error(e):
            raise _offline(e) from e
        raise ConfigError(f"upload to {repo_id} failed ({type(e).__name__}: {str(e)[:150]}); check HF_TOKEN and the repo name") from e
    return str(getattr(info, "repo_url", None) or f"https://huggingface.co/datasets/{repo_id}")


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
                raise _offline(e) from e
            raise CatalogError(f"could not mirror {name} ({type(e).__name__}: {str(e)[:150]})") from e
        (target / ".mirror.json").write_text(json.dumps({"repo_id": name}))
        done.append(target)
    return done
