"""Raw responses and streams still referenced when the interpreter exits (a script's globals) are recorded:
their finalizers run only after the ledger's atexit drain has closed the log, where the record was lost."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from soc2ai.testing.gateway import Harness, inference_records
from soc2ai.testing.upstream import FakeUpstream

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import openai
    from soc2ai.instrument import instrument
    from soc2ai.testing.gateway import Harness
    from soc2ai.testing.scanners import KeywordPipeline
    from soc2ai.testing.upstream import FakeUpstream

    up = FakeUpstream(name="up").__enter__()
    backup = FakeUpstream(name="backup").__enter__()
    h = Harness(Path(sys.argv[1]), up, backup)
    log = h.log(h.config())
    client = openai.OpenAI(base_url=up.url + "/v1", api_key="x", max_retries=0)
    instrument(client, log=log, user_id="ex", pipeline=KeywordPipeline(redact=["secret"]))
    MSG = [{"role": "user", "content": "hi"}]
    # Never exited, never read: held by globals until the interpreter exits.
    manager = client.chat.completions.with_streaming_response.create(model="m", messages=MSG)
    response = manager.__enter__()
    stream = client.chat.completions.create(model="m", messages=MSG, stream=True)
    first = next(stream)
""")


def test_left_at_exit_is_recorded(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, timeout=120,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "not queued" not in done.stderr
    with FakeUpstream(name="up") as up, FakeUpstream(name="backup") as backup:
        h = Harness(tmp_path, up, backup)
        log = h.log(h.config())
        try:
            recs = inference_records(log)
        finally:
            log.close()
    assert sorted((r["status"], r["error"]) for r in recs) == [
        (499, "raw response dropped by the caller without parse() or close(), its body unread: output not screened"),
        (499, "stream abandoned by the caller before the end")]
