"""The clean wing: dedup and decontaminate JSONL rows in any of the pack's formats
(normalize, tokens, matchers, test index, report). It never imports curation.convert."""
