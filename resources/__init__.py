"""Files that ship with the project: the music library `music=random` draws from, the demo's
script, and an example campaign. A package so an installed copy has them too."""

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
