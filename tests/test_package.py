"""`chalice package --stage prod` works without AWS and yields functions only (no API Gateway)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_prod_package_has_no_api_and_the_generated_role(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MCD_", "AWS_ACCESS", "AWS_SECRET", "AWS_SESSION", "AWS_SECURITY"))}
    env["AWS_DEFAULT_REGION"] = "eu-west-1"
    chalice = Path(sys.executable).with_name("chalice")
    proc = subprocess.run([str(chalice), "package", "--stage", "prod", str(tmp_path / "out")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    template = json.loads((tmp_path / "out" / "sam.json").read_text())
    types = {r["Type"] for r in template["Resources"].values()}
    assert not [t for t in types if "Api" in t], f"the prod package must not contain API Gateway: {types}"
    functions = {k: r for k, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    assert len(functions) == 8
    for resource in functions.values():
        variables = resource["Properties"].get("Environment", {}).get("Variables", {})
        assert "MCD_LOCAL_ROUTES" not in variables
        assert resource["Properties"]["Runtime"] == f"python{sys.version_info.major}.{sys.version_info.minor}"
    statements = template["Resources"]["DefaultRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    actions = {a for s in statements for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])}
    assert "cloudtrail:LookupEvents" in actions and "secretsmanager:GetSecretValue" in actions
    assert not {a for a in actions if a.endswith(("*", ":Delete*"))}
    shipped = zipfile.ZipFile(tmp_path / "out" / "deployment.zip").namelist()
    assert "app.py" in shipped and "chalicelib/stages/lookup.py" in shipped
    assert not [name for name in shipped if name.startswith(("mcd_tools/", "tests/", "scripts/"))
                or "devtools" in name], "developer tools are not shipped to Lambda"
