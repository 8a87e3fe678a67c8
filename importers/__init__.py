"""Excel readers and writers: templates, parsing, row validation, error reports, exports."""
