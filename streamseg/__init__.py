"""streamseg: keep every customer in the right marketing segment, in real time.

The engine (``streamseg.engine``) is plain synchronous Python; the Faust app
(``streamseg.app`` / ``streamseg.agents``) is a thin transport edge around it.
"""

from __future__ import annotations

__version__ = "0.1.0"
