"""Public test doubles: a fake OpenAI-compatible upstream and a tiny screening pipeline.

Import the submodules directly (``soc2ai.testing.upstream``, ``soc2ai.testing.scanners``); this package
imports nothing at import time.
"""
