"""Run a play with ansible-playbook -vvv --diff and keep everything it left: for the searches of test_secrets.py.

Unlike kubehelpers.run_tasks, stderr (where warnings go) and the Ansible log (ANSIBLE_LOG_PATH)
are kept too, and extra vars come from a file, as AWX hands them over.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass
class Run:
    """What one ansible-playbook run left behind, by where it was found."""

    returncode: int
    outputs: dict[str, str]

    def search(self, needles: dict[str, str]) -> dict[str, list[str]]:
        """For each needle, the places it occurs (``stdout:12`` - the line, or a file path)."""
        found: dict[str, list[str]] = {}
        for label, needle in needles.items():
            for where, text in self.outputs.items():
                for number, line in enumerate(text.splitlines(), 1):
                    if needle in line:
                        found.setdefault(label, []).append(f"{where}:{number}")
        return found


def run_play(tmp_path: Path, plays: list[dict[str, Any]] | Path, *, extra_vars: dict[str, Any], env: dict[str, str], bundles: list[Path]) -> Run:
    """``ansible-playbook -vvv --diff`` with the secrets in an extra-vars file (as AWX hands them over), and all it left."""
    run_dir = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    run_dir.mkdir()
    results = run_dir / "results.json"
    vars_file = run_dir / "extra-vars.json"
    vars_file.write_text(json.dumps({**extra_vars, "kd_results_file": str(results)}))
    if isinstance(plays, Path):
        playbook = plays
    else:
        playbook = run_dir / "play.yml"
        playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    log = run_dir / "ansible.log"
    full_env = {
        **os.environ,
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOG_PATH": str(log),
        # Task arguments in the task banners too.
        "ANSIBLE_DISPLAY_ARGS_TO_STDOUT": "1",
        **env,
    }
    full_env.pop("ANSIBLE_DEBUG", None)
    cmd = ["ansible-playbook", "-vvv", "--diff", "-i", "localhost,", "-c", "local", str(playbook), "-e", f"@{vars_file}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, timeout=900, check=False)
    outputs = {"stdout": proc.stdout, "stderr": proc.stderr, "ansible.log": log.read_text() if log.exists() else ""}
    if results.exists():
        outputs["results.json"] = results.read_text()
    for bundle in bundles:
        for path in sorted(p for p in bundle.rglob("*") if p.is_file()):
            outputs[str(path)] = path.read_bytes().decode("utf-8", errors="replace")
    return Run(proc.returncode, outputs)


def save_results(names: list[str]) -> dict[str, Any]:
    """The play's last task: every registered result, as JSON, where run_play looks for it."""
    content = "{{ {" + ", ".join(f"'{n}': {n} | default(None)" for n in names) + "} | to_nice_json }}"
    return {
        "name": "Save every registered result",
        "ansible.builtin.copy": {"content": content, "dest": "{{ kd_results_file }}", "mode": "0600"},
        "check_mode": False,
        "diff": False,
    }
