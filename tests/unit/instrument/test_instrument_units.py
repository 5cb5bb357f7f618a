"""Unit tests: stream accumulators on real SDK types, and early-closed streams."""

from __future__ import annotations

from pathlib import Path

from anthropic.types import (
    Message,
    MessageDeltaUsage,
    RawContentBlockDeltaEvent,
    RawMessageDeltaEvent,
    RawMessageStartEvent,
    TextDelta,
    Usage,
)
from anthropic.types.raw_message_delta_event import Delta
from openai.types.chat import ChatCompletionChunk

from soc2ai.config import parse_config
from soc2ai.instrument._anthropic import AnthropicAccumulator
from soc2ai.instrument._openai import OpenAIAccumulator
from soc2ai.instrument.core import Recorder
from soc2ai.instrument.streams import StreamProxy
from soc2ai.ledger import AuditLog
from soc2ai.ledger.keys import generate_keys


def _chunk(content: str | None, finish: str | None = None) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate({
        "id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "gpt-x",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]})


def test_openai_accumulator() -> None:
    """Content deltas are joined; id, model and finish reason are kept."""
    acc = OpenAIAccumulator()
    for c in (_chunk("a"), _chunk(" b"), _chunk(None, "stop")):
        acc.add(c)
    assert acc.text() == "a b"
    assert acc.fields() == {"response_id": "c1", "model_served": "gpt-x", "finish_reason": "stop"}


def test_openai_accumulator_assembles_every_choice() -> None:
    """n > 1: each choice is assembled by its index (chunks interleave), with its tool calls' arguments;
    the text is the choices' texts one a line, the finish reason the first choice's."""
    acc = OpenAIAccumulator()
    call = {"index": 0, "id": "t", "type": "function", "function": {"name": "f", "arguments": '{"a"'}}
    for index, delta, finish in ((1, {"content": "b1"}, None), (0, {"content": "a1"}, None),
                                 (1, {"tool_calls": [call]}, None),
                                 (1, {"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}, "tool_calls"),
                                 (0, {"content": " a2"}, "stop")):
        acc.add(ChatCompletionChunk.model_validate({
            "id": "c2", "object": "chat.completion.chunk", "created": 0, "model": "gpt-x",
            "choices": [{"index": index, "delta": delta, "finish_reason": finish}]}))
    assert acc.outputs() == [("a1 a2", []), ("b1", ['{"a": 1}'])]
    assert acc.text() == "a1 a2\nb1" and acc.tool_arguments() == ['{"a": 1}']
    assert acc.fields()["finish_reason"] == "stop"


def test_anthropic_accumulator() -> None:
    """message_start, text deltas and message_delta give text, ids, usage and stop reason."""
    acc = AnthropicAccumulator()
    msg = Message(id="m1", type="message", role="assistant", model="claude-x", content=[], stop_reason=None,
                  stop_sequence=None, usage=Usage(input_tokens=5, output_tokens=0))
    acc.add(RawMessageStartEvent(type="message_start", message=msg))
    acc.add(RawContentBlockDeltaEvent(type="content_block_delta", index=0, delta=TextDelta(type="text_delta",
                                                                                        text="hi")))
    acc.add(RawMessageDeltaEvent(type="message_delta", delta=Delta(stop_reason="end_turn", stop_sequence=None),
                                 usage=MessageDeltaUsage(output_tokens=2)))
    assert acc.text() == "hi"
    assert acc.fields() == {"response_id": "m1", "model_served": "claude-x", "input_tokens": 5,
                            "finish_reason": "end_turn", "output_tokens": 2}


class _Stream:
    def __init__(self) -> None:
        self.items = iter([_chunk("x"), _chunk("y")])
        self.closed = False

    def __iter__(self) -> _Stream:
        return self

    def __next__(self) -> ChatCompletionChunk:
        return next(self.items)

    def close(self) -> None:
        self.closed = True


def test_stream_closed_early_is_recorded_once(tmp_path: Path) -> None:
    """A stream the caller closes after one chunk is recorded once, as 499, with the partial output."""
    generate_keys(tmp_path / "keys", "t")
    cfg = parse_config(f'[ledger]\nstore = "sqlite:///{tmp_path}/a.db"\nkeys_dir = "{tmp_path}/keys"\n'
                       f'spool_dir = "{tmp_path}/spool"\n', root=tmp_path)
    with AuditLog.open(cfg) as log:
        rec = Recorder(log=log, user_id="u", pipeline=None, prompts=None, classification=None, provider="openai")
        state = rec.begin("chat.completions", {"model": "m", "messages": [{"role": "user", "content": "q"}]})
        raw = _Stream()
        proxy = StreamProxy(raw, state, rec, OpenAIAccumulator())
        assert next(proxy).choices[0].delta.content == "x"
        proxy.close()
        proxy.close()
        assert raw.closed
        log.flush()
        recs = [e.body for e in log.entries(kind="inference")]
    assert len(recs) == 1 and recs[0] is not None
    assert recs[0]["status"] == 499 and recs[0]["output_tokens"] == 1
