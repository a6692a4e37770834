#!/usr/bin/env python3
"""Validates label bundles against docs/bundle.schema.json with the independent `jsonschema` package.
Usage: python3 tests/reference/check_bundle_schema.py BUNDLE.json [...]"""
import json
import pathlib
import sys

import jsonschema

schema = json.loads((pathlib.Path(__file__).parents[2] / "docs" / "bundle.schema.json").read_text())
validator = jsonschema.Draft202012Validator(schema)
failed = 0
for path in sys.argv[1:]:
    errors = list(validator.iter_errors(json.loads(pathlib.Path(path).read_text())))
    for e in errors[:10]:
        print(f"{path}: {'/'.join(map(str, e.absolute_path))}: {e.message}")
    failed += bool(errors)
    print(f"{path}: {'INVALID' if errors else 'valid'} against docs/bundle.schema.json")
sys.exit(1 if failed else 0)
