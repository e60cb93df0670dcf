"""Compile every .po under the project's locale folders to .mo with Babel (no GNU gettext)."""

from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from django.conf import settings
from django.core.management.base import BaseCommand


def compile_translations(base_dir: Path) -> int:
    """Compile stale .mo files below ``base_dir``; return how many were written."""
    written = 0
    for po_path in sorted(base_dir.glob("*/locale/*/LC_MESSAGES/*.po")) + sorted(
        base_dir.glob("locale/*/LC_MESSAGES/*.po")
    ):
        if ".venv" in po_path.parts:
            continue
        mo_path = po_path.with_suffix(".mo")
        if mo_path.exists() and mo_path.stat().st_mtime >= po_path.stat().st_mtime:
            continue
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file)
        with mo_path.open("wb") as mo_file:
            write_mo(mo_file, catalog)
        written += 1
    return written


class Command(BaseCommand):
    help = "Compile the .po translation catalogues to .mo."

    def handle(self, *args: object, **options: object) -> None:
        count = compile_translations(Path(settings.BASE_DIR))
        self.stdout.write(f"{count} catalogue(s) compiled")
