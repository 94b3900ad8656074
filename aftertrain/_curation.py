"""The parts of curation/ that evaluation reuses: its file reader, the GSM8K/MATH converters (so a
test file in the public schema and one written by `prepare` become the same conversations)
and the \\boxed{} parser."""

from curation.convert.converters import get as get_source
from curation.convert.converters._base import Stats
from curation.convert.converters.gsm8k import GSM8KConverter
from curation.convert.converters.hendrycks_math import boxed_answer
from curation.convert.readers import DataFileError, iter_records

__all__ = ["DataFileError", "GSM8KConverter", "Stats", "boxed_answer", "get_source", "iter_records"]
