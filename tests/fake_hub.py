"""A fake Hugging Face Hub on loopback, for push / download tests without a network.

It implements the HTTP endpoints that ``huggingface_hub`` 2.x and ``transformers`` 5 call to push a
model (``push_to_hub`` → create_repo, validate-yaml, preupload, commit) and to download one
(``from_pretrained`` / ``hf_hub_download`` → HEAD and GET on ``resolve``; ``snapshot_download`` →
repo info and the tree listing). Model repositories only.

Every file is announced as a *regular* (inline, base64) upload in the preupload answer and no
response carries Xet or LFS headers, so clients never take the LFS or Xet paths.

Clients read ``HF_ENDPOINT`` when ``huggingface_hub`` is imported: point them at
``FakeHub.endpoint`` in the environment of a fresh subprocess. Blobs are stored under ``storage``;
repositories, branches and commits are kept in memory. Requests to routes the fake does not know are
answered 404 and recorded in ``unhandled``, so a test can assert that the fake covered the whole flow.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

_REPO = r"(?P<repo>[\w.-]+/[\w.-]+)"


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob (what the Hub serves as the ETag of a regular file)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def card_metadata(readme: str) -> dict:
    """The YAML front matter of a README (``{}`` when there is none); raises ``yaml.YAMLError`` or
    ``ValueError`` when the front matter is not a YAML mapping."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", readme, re.DOTALL)
    if match is None:
        return {}
    data = yaml.safe_load(match.group(1)) or {}
    if not isinstance(data, dict):
        raise ValueError("the metadata block must be a YAML mapping")
    return data


@dataclass
class Commit:
    """One commit: its id, message, parent and the full file listing (path → blob oid)."""

    oid: str
    message: str
    parent: str | None
    files: dict[str, str]
    date: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"))


@dataclass
class Repo:
    """A model repository: its branches (name → commit oid) and commits (oid → ``Commit``)."""

    repo_id: str
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, Commit] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        """The commit of a branch name or a full commit id, ``None`` if unknown."""
        return self.commits.get(self.branches.get(revision, revision))


class HubError(Exception):
    """An error answer, with the ``X-Error-Code`` the client maps to an exception type."""

    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit


class FakeHub:
    """A threaded HTTP server on ``127.0.0.1`` that behaves like the Hub for model repositories.

    Use as a context manager: ``with FakeHub(tmp_path) as hub: env["HF_ENDPOINT"] = hub.endpoint``.
    """

    def __init__(self, storage: str | Path):
        self.storage = Path(storage)
        self.storage.mkdir(parents=True, exist_ok=True)
        self.repos: dict[str, Repo] = {}
        self.requests: list[str] = []
        self.unhandled: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-hub", daemon=True
        )

    @property
    def endpoint(self) -> str:
        """The base URL to use as ``HF_ENDPOINT``."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    # ----------------------------------------------------------------------------------------- state

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of ``repo_id`` at ``revision``, path → content."""
        with self._lock:
            commit = self._commit(repo_id, revision)
            return {path: self._read_blob(oid) for path, oid in commit.files.items()}

    def history(self, repo_id: str, branch: str = "main") -> list[Commit]:
        """The commits of ``branch``, newest first."""
        with self._lock:
            repo = self._repo(repo_id)
            commits, oid = [], repo.branches[branch]
            while oid is not None:
                commits.append(repo.commits[oid])
                oid = repo.commits[oid].parent
            return commits

    def _repo(self, repo_id: str) -> Repo:
        repo = self.repos.get(repo_id)
        if repo is None:
            raise HubError(HTTPStatus.NOT_FOUND, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def _commit(self, repo_id: str, revision: str) -> Commit:
        commit = self._repo(repo_id).resolve(revision)
        if commit is None:
            raise HubError(HTTPStatus.NOT_FOUND, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _write_blob(self, data: bytes) -> str:
        oid = git_blob_oid(data)
        path = self.storage / oid
        if not path.exists():
            path.write_bytes(data)
        return oid

    def _read_blob(self, oid: str) -> bytes:
        return (self.storage / oid).read_bytes()

    def _new_commit(self, repo: Repo, branch: str, message: str, files: dict[str, str]) -> Commit:
        parent = repo.branches.get(branch)
        digest = hashlib.sha1(json.dumps([repo.repo_id, parent, message, len(repo.commits), files]).encode())
        commit = Commit(oid=digest.hexdigest(), message=message, parent=parent, files=files)
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit

    # ------------------------------------------------------------------------------------- endpoints

    def create_repo(self, body: dict) -> tuple[int, dict]:
        """``POST /api/repos/create``: a new repository with an initial commit; 409 (with its url) if it exists."""
        if body.get("type", "model") != "model":
            raise HubError(HTTPStatus.BAD_REQUEST, "The fake Hub only hosts model repositories")
        repo_id = f"{body['organization']}/{body['name']}" if body.get("organization") else body["name"]
        if "/" not in repo_id:
            raise HubError(HTTPStatus.BAD_REQUEST, "Give the repository as 'namespace/name'")
        url = f"{self.endpoint}/{repo_id}"
        if repo_id in self.repos:  # the client reads the url from the 409 answer when exist_ok=True
            return HTTPStatus.CONFLICT, {"error": "You already created this model repo", "url": url}
        repo = Repo(repo_id)
        # like the Hub: a new repository has one commit with a .gitattributes file
        self._new_commit(repo, "main", "initial commit", {".gitattributes": self._write_blob(b"")})
        self.repos[repo_id] = repo
        return HTTPStatus.OK, {"url": url, "name": repo_id}

    def validate_yaml(self, body: dict) -> tuple[int, dict]:
        """``POST /api/validate-yaml``: 400 when the README metadata is not a YAML mapping."""
        try:
            card_metadata(body.get("content", ""))
        except (yaml.YAMLError, ValueError) as error:
            return HTTPStatus.BAD_REQUEST, {"errors": [{"message": f"Invalid YAML in README.md: {error}"}]}
        return HTTPStatus.OK, {"errors": [], "warnings": []}

    def repo_info(self, repo_id: str, revision: str) -> tuple[int, dict]:
        """``GET /api/models/{repo}[/revision/{rev}]``: sha, siblings, tags and the card metadata."""
        commit = self._commit(repo_id, revision)
        files = {path: self._read_blob(oid) for path, oid in commit.files.items()}
        siblings = [
            {"rfilename": path, "size": len(data), "blobId": commit.files[path]} for path, data in files.items()
        ]
        card = card_metadata(files["README.md"].decode()) if "README.md" in files else {}
        info = {
            "_id": repo_id,
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit.oid,
            "lastModified": commit.date,
            "private": False,
            "disabled": False,
            "gated": False,
            "tags": card.get("tags", []),
            "library_name": card.get("library_name"),
            "siblings": siblings,
        }
        if card:
            info["cardData"] = card
        return HTTPStatus.OK, info

    def tree(self, repo_id: str, revision: str, path: str, recursive: bool) -> tuple[int, list]:
        """``GET /api/models/{repo}/tree/{rev}[/{path}]``: one page listing files (and folders)."""
        commit = self._commit(repo_id, revision)
        prefix = f"{path.strip('/')}/" if path.strip("/") else ""
        entries, folders = [], set()
        for file_path, oid in sorted(commit.files.items()):
            if not file_path.startswith(prefix):
                continue
            relative = file_path[len(prefix) :]
            parts = relative.split("/")
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                folders.add(prefix + "/".join(parts[:depth]))
            if recursive or len(parts) == 1:
                size = (self.storage / oid).stat().st_size
                entries.append({"type": "file", "path": file_path, "size": size, "oid": oid})
        if prefix and not entries and not folders:
            raise HubError(HTTPStatus.NOT_FOUND, f"{path} does not exist", "EntryNotFound", commit.oid)
        entries += [{"type": "directory", "path": folder, "oid": git_blob_oid(folder.encode())} for folder in folders]
        return HTTPStatus.OK, entries

    def preupload(self, repo_id: str, revision: str, body: dict) -> tuple[int, dict]:
        """``POST /api/models/{repo}/preupload/{rev}``: every file is a regular upload; ``oid`` lets clients skip
        unchanged files."""
        commit = self._commit(repo_id, revision)
        files = [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": commit.files.get(f["path"])}
            for f in body["files"]
        ]
        return HTTPStatus.OK, {"files": files, "commitOid": commit.oid}

    def commit(self, repo_id: str, branch: str, lines: list[dict], query: dict) -> tuple[int, dict]:
        """``POST /api/models/{repo}/commit/{branch}`` (ndjson): inline files and deletions on a branch."""
        repo = self._repo(repo_id)
        if query.get("create_pr"):
            raise HubError(HTTPStatus.BAD_REQUEST, "The fake Hub does not support pull requests")
        if branch not in repo.branches:
            raise HubError(HTTPStatus.NOT_FOUND, f"Invalid rev id: {branch}", "RevisionNotFound")
        header, operations = lines[0], lines[1:]
        if header.get("key") != "header":
            raise HubError(HTTPStatus.BAD_REQUEST, "The first line of a commit must be its header")
        parent = header["value"].get("parentCommit")
        if parent is not None and parent != repo.branches[branch]:
            raise HubError(HTTPStatus.PRECONDITION_FAILED, "A commit has happened since the parent commit")
        files = dict(repo.commits[repo.branches[branch]].files)
        for operation in operations:
            key, value = operation["key"], operation["value"]
            if key == "file" and value.get("encoding") == "base64":
                files[value["path"]] = self._write_blob(base64.b64decode(value["content"]))
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(HTTPStatus.NOT_FOUND, "A file with this name doesn't exist", "EntryNotFound")
            elif key == "deletedFolder":
                folder = value["path"].rstrip("/") + "/"
                files = {path: oid for path, oid in files.items() if not path.startswith(folder)}
            else:  # lfsFile and copies: never requested, since preupload answers "regular"
                raise HubError(HTTPStatus.BAD_REQUEST, f"The fake Hub does not support {key!r} commit operations")
        commit = self._new_commit(repo, branch, header["value"]["summary"], files)
        return HTTPStatus.OK, {
            "success": True,
            "commitOid": commit.oid,
            "commitUrl": f"{self.endpoint}/{repo_id}/commit/{commit.oid}",
        }

    def resolve(self, repo_id: str, revision: str, path: str) -> tuple[bytes, dict[str, str]]:
        """``HEAD``/``GET /{repo}/resolve/{rev}/{path}``: the file with the ETag and X-Repo-Commit headers
        ``hf_hub_download`` needs (Content-Length is added when sending)."""
        commit = self._commit(repo_id, revision)
        oid = commit.files.get(path)
        if oid is None:
            raise HubError(HTTPStatus.NOT_FOUND, "Entry not found", "EntryNotFound", commit.oid)
        data = self._read_blob(oid)
        return data, {"ETag": f'"{oid}"', "X-Repo-Commit": commit.oid, "Content-Type": "application/octet-stream"}


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    api = rf"^/api/models/{_REPO}"
    json_routes = [
        ("POST", r"^/api/repos/create$", lambda m, q, body: hub.create_repo(body)),
        ("POST", r"^/api/validate-yaml$", lambda m, q, body: hub.validate_yaml(body)),
        ("GET", api + r"$", lambda m, q, body: hub.repo_info(m["repo"], "main")),
        ("GET", api + r"/revision/(?P<rev>[^/]+)$", lambda m, q, body: hub.repo_info(m["repo"], m["rev"])),
        (
            "GET",
            api + r"/tree/(?P<rev>[^/]+)(?P<path>/.*)?$",
            lambda m, q, body: hub.tree(
                m["repo"], m["rev"], m["path"] or "", q.get("recursive", "false").lower() in ("true", "1")
            ),
        ),
        ("POST", api + r"/preupload/(?P<rev>[^/]+)$", lambda m, q, body: hub.preupload(m["repo"], m["rev"], body)),
        ("POST", api + r"/commit/(?P<rev>[^/]+)$", lambda m, q, body: hub.commit(m["repo"], m["rev"], body, q)),
    ]
    resolve_route = re.compile(rf"^/{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
            pass

        def do_GET(self) -> None:
            self._dispatch(send_body=True)

        def do_HEAD(self) -> None:
            self._dispatch(send_body=False)

        def do_POST(self) -> None:
            self._dispatch(send_body=True)

        def _dispatch(self, send_body: bool) -> None:
            url = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            with hub._lock:
                hub.requests.append(f"{self.command} {url.path}")
            try:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with hub._lock:
                    # revisions (refs/pr/1 → refs%2Fpr%2F1) and file paths arrive percent-encoded
                    match = resolve_route.match(url.path)
                    if match and self.command in ("GET", "HEAD"):
                        data, headers = hub.resolve(match["repo"], unquote(match["rev"]), unquote(match["path"]))
                        return self._send(HTTPStatus.OK, data, headers, send_body)
                    for method, pattern, endpoint in json_routes:
                        match = re.match(pattern, url.path)
                        if match and method == self.command:
                            groups = {k: unquote(v) if v else v for k, v in match.groupdict().items()}
                            status, payload = endpoint(groups, query, self._parse(raw))
                            return self._send_json(status, payload, send_body)
                    hub.unhandled.append(f"{self.command} {self.path}")
                raise HubError(HTTPStatus.NOT_FOUND, f"The fake Hub has no route for {self.command} {url.path}")
            except HubError as error:
                headers = {"X-Error-Message": error.message}
                if error.code:
                    headers["X-Error-Code"] = error.code
                if error.commit:
                    headers["X-Repo-Commit"] = error.commit
                body = json.dumps({"error": error.message}).encode()
                self._send(error.status, body, {**headers, "Content-Type": "application/json"}, send_body)

        def _parse(self, raw: bytes) -> Any:
            if self.headers.get("Content-Type", "").startswith("application/x-ndjson"):
                return [json.loads(line) for line in raw.splitlines() if line.strip()]
            return json.loads(raw) if raw else {}

        def _send_json(self, status: int, payload: Any, send_body: bool) -> None:
            self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json"}, send_body)

        def _send(self, status: int, body: bytes, headers: dict[str, str], send_body: bool) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if send_body:
                self.wfile.write(body)

    return Handler


__all__ = ["Commit", "FakeHub", "Repo", "card_metadata", "git_blob_oid"]
