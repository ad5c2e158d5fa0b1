"""An operator, its system account and two application accounts, as nsc would make them, for the operator scenario.

    operator_keys.py DIR   # writes DIR/keys.json and DIR/{sys,app,app2}.creds unless DIR/keys.json exists

keys.json: {"operator_jwt": JWT, "accounts": {NAME: {"public": KEY, "jwt": JWT}}}. The JWTs and creds come
from the test suite's issuer (tests/support/jwt_issuer.py), which signs them as nsc does.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[2])) / "tests"))

from support.jwt_issuer import Operator


def main(directory: str) -> int:
    target = Path(directory)
    if (target / "keys.json").exists():
        return 0
    target.mkdir(parents=True, exist_ok=True)
    operator = Operator()
    operator.account("APP")
    operator.account("APP2")
    for name in ["SYS", "APP", "APP2"]:
        creds = target / f"{name.lower()}.creds"
        creds.write_text(operator.creds(name))
        creds.chmod(0o600)
    accounts = {name: {"public": key.public, "jwt": token} for name, (key, token) in operator.accounts.items()}
    (target / "keys.json").write_text(json.dumps({"operator_jwt": operator.jwt, "accounts": accounts}))
    print("created")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
