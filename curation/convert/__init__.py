"""The convert wing: public datasets' files and hub rows -> XTuner's conversation format
(readers, one converter a dataset, load_conversations for configs, `prepare` for JSONL).
It never imports curation.clean."""
