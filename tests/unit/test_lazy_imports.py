"""Heavy libraries load only when used: `durachat serve` idles under 100 MB
(SPEC.md section 9), and a single node never imports Redis."""

from __future__ import annotations

import subprocess
import sys

LAZY = ("PIL", "pypdf", "redis", "matplotlib", "openai", "anthropic", "google.genai")


def test_building_the_app_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from durachat.app import create_app\n"
        "from durachat.settings import Settings\n"
        "create_app(Settings())\n"
        f"print(','.join(m for m in {LAZY!r} if m in sys.modules))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert run.stdout.strip() == "", f"loaded at start: {run.stdout.strip()}"
