#!/usr/bin/env python3
"""Prints the member names of a zip as a JSON list (Python's zipfile as an independent reader)."""
import json
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1]) as z:
    print(json.dumps(z.namelist()))
