"""tatsu-lab/alpaca: instruction / input / output -> one turn.

The turn is laid out as XTuner's `alpaca_map_fn` lays it out ("instruction\\ninput"), without its
trailing newline when `input` is empty; rows whose output is "<nooutput>" are skipped, as there.
"""

from __future__ import annotations

from ._base import RowConverter, Skip, Source, text

NO_OUTPUT = "<nooutput>"


class AlpacaConverter(RowConverter):
    def conversation(self, row, fix):
        instruction = text(row, "instruction")
        output = text(row, "output")
        if output == NO_OUTPUT:
            raise Skip("nooutput")
        context = row.get("input") or ""  # optional context: ~40% of rows have one
        if not isinstance(context, str):
            raise Skip("wrong_type:input", type(context).__name__)
        context = context.strip()
        prompt = f"{instruction}\n{context}" if context else instruction
        return [{"input": prompt, "output": output}]


SOURCE = Source(
    name="alpaca",
    converter=AlpacaConverter,
    hub_id="tatsu-lab/alpaca",
    licence="CC BY-NC 4.0 (current card; an earlier revision said CC BY 4.0)",
    rows="train 52,002",
    rules="instruction + newline + input (if any) -> input; output -> output; "
    '"<nooutput>" rows skipped (XTuner\'s convention)',
    notes="outputs written by text-davinci-003",
)
