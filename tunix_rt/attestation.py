"""The signed statement of a closed milestone: an in-toto Statement v1 (`M44.intoto.json`) whose subjects are every
committed document, the ledger and every tracked evidence file with their sha256, signed with the user's SSH key as
git is configured to sign (`gpg.format ssh`, `user.signingkey`) through `ssh-keygen -Y sign -n milestone`.

Anyone can check it without this tool:

    ssh-keygen -Y verify -f allowed_signers -I <signer> -n milestone -s M44.intoto.json.sig < M44.intoto.json

`close --sign` (or `[close] sign = true`) writes both files and commits them in the one closing commit;
`milestone verify M44` re-hashes the subjects and checks the signature against `gpg.ssh.allowedSignersFile`.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunix_rt import vcs
from tunix_rt.errors import TunixError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://github.com/tunix-rt/tunix-rt#verifying-a-milestone"  # described in the README
NAMESPACE = "milestone"  # ssh-keygen -Y's signature namespace: a signature made for git commits never passes here


@dataclass(frozen=True)
class Signed:
    statement: bytes
    signature: bytes


def statement_path(folder: str, mid: str) -> str:
    return f"{folder}/{mid}.intoto.json"


def signature_path(folder: str, mid: str) -> str:
    return f"{statement_path(folder, mid)}.sig"


def signing_key(repo: Any) -> str:
    """The key git signs with, when git is set up for SSH signing; refuses (exit 2) otherwise."""
    fmt = vcs.config_value(repo, "gpg.format")
    key = vcs.config_value(repo, "user.signingkey")
    if fmt != "ssh" or key is None:
        raise TunixError("--sign signs with git's SSH signing key: set `git config gpg.format ssh` and "
                         "`git config user.signingkey ~/.ssh/id_ed25519.pub` (or turn signing off)")
    return key


def _key_file(key: str, tmp: Path) -> str:
    """A path ssh-keygen accepts: git allows a literal `key::ssh-ed25519 AAAA…` (the private half in an agent)."""
    if key.startswith("key::") or key.startswith("ssh-"):
        path = tmp / "signing_key.pub"
        path.write_text(key.removeprefix("key::") + "\n", encoding="utf-8")
        return str(path)
    return os.path.expanduser(key)


def build(mid: str, title: str, baseline: dict[str, Any], thresholds: list[dict[str, Any]],
          runs: list[dict[str, Any]], ledger_head: str, subjects: dict[str, str]) -> bytes:
    """The statement's exact bytes (sorted keys, two-space indent, newline): the same facts give the same file."""
    document = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in sorted(subjects.items())],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"milestone": mid, "title": title, "baseline": baseline, "thresholds": thresholds,
                      "runs": runs, "ledger_head": ledger_head},
    }
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sign(repo: Any, statement: bytes) -> bytes:
    """`ssh-keygen -Y sign -n milestone` over the statement with git's signing key; the armored signature."""
    key = signing_key(repo)
    with tempfile.TemporaryDirectory(prefix="tunix-rt-sign-") as tmp:
        folder = Path(tmp)
        target = folder / "statement.json"
        target.write_bytes(statement)
        done = subprocess.run(["ssh-keygen", "-Y", "sign", "-f", _key_file(key, folder), "-n", NAMESPACE,
                               str(target)], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        signature = target.with_name("statement.json.sig")
        if done.returncode != 0 or not signature.is_file():
            detail = (done.stderr.strip().splitlines() or ["no signature written"])[-1]
            raise TunixError(f"ssh-keygen could not sign the statement with {key}: {detail}")
        return signature.read_bytes()


def check_signature(repo: Any, statement: bytes, signature: bytes) -> tuple[bool, str]:
    """Whether an allowed signer signed these bytes, and who; without `gpg.ssh.allowedSignersFile` there is
    nothing to check the signer against, which is said (not a failure)."""
    allowed = vcs.config_value(repo, "gpg.ssh.allowedSignersFile")
    if allowed is None:
        return True, "signed; set gpg.ssh.allowedSignersFile to check who signed it"
    allowed = os.path.expanduser(allowed)
    with tempfile.TemporaryDirectory(prefix="tunix-rt-verify-") as tmp:
        sig = Path(tmp) / "statement.sig"
        sig.write_bytes(signature)
        found = subprocess.run(["ssh-keygen", "-Y", "find-principals", "-s", str(sig), "-f", allowed],
                               capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        principals = found.stdout.split()
        if found.returncode != 0 or not principals:
            return False, f"signed by a key that {allowed} does not list"
        signer = principals[0]
        done = subprocess.run(["ssh-keygen", "-Y", "verify", "-f", allowed, "-I", signer, "-n", NAMESPACE, "-s",
                               str(sig)], input=statement, capture_output=True, timeout=60)
        if done.returncode != 0:
            return False, f"the signature of {signer} does not match the statement"
        return True, f"good signature by {signer}"
