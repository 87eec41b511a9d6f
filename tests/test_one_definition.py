"""One definition of a request: a field added to the video spec appears, with no other edit,
in `mpt make`, the REST body, the MCP tools, the web UI's form and the Prefect UI's run form
(tests/spec_probe.py adds it in a process of its own and reports what each program made)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = Path(__file__).with_name("spec_probe.py")


def test_a_field_added_to_the_spec_appears_in_all_five_programs():
    env = os.environ | {"PYTHONPATH": str(PROBE.parent.parent)}
    env.pop("PREFECT_API_URL", None)
    proc = subprocess.run(
        [sys.executable, str(PROBE)], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("PROBE "))
    seen = json.loads(line.removeprefix("PROBE "))

    cli = seen["cli"]  # a flag named as the field, in its group's panel, bounds enforced
    assert cli["listed"] and cli["help"] and cli["panel"] == "Footage and cutting", cli
    assert cli["parsed"] == 3 and cli["made_exit"] == 0 and cli["refused_exit"] == 2, cli
    rest = seen["rest"]  # the POST /videos body, and the service's validation
    assert rest["title"] == "New option" and rest["maximum"] == 9 and rest["refused"], rest
    assert seen["mcp"] == {"maximum": 9, "default": 7}  # create_video's parameter
    ui = seen["webui"]  # the Create page's form, from the schema /config serves
    assert ui["label"] == "New option" and ui["value"] == 7 and ui["max"] == 9, ui
    assert ui["group"] == "Footage and cutting" and not ui["errors"], ui
    flow = seen["prefect"]  # the run form: the flow's parameter schema, ordered
    assert flow["title"] == "New option" and flow["positions_unique"], flow
    assert flow["column"] and flow["batch_flow"], flow  # and a campaign column
