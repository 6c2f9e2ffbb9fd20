#!/bin/sh
# Reads the input file and writes an upper-cased copy with a greeting into the output dir.
echo "$GREETING from $(hostname 2>/dev/null || echo flotilla): processing $INPUT_FILE_PATH"
name=$(basename "$INPUT_FILE_PATH")
{ echo "$GREETING"; tr '[:lower:]' '[:upper:]' < "$INPUT_FILE_PATH"; } > "$TMP_OUTPUT_DIR/$name.out"
