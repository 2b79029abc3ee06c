"""mlcore/*_schema.py are generated from mlcore/schemas/ by `make schemas`: a schema changed
without regenerating fails here (runs in the project's environment, which has fastjsonschema)."""

from __future__ import annotations

from local import make_schemas


def test_the_validators_are_what_make_schemas_gives():
    assert make_schemas.main(["--check"]) == 0


def test_the_generated_code_names_missing_keys_and_imports_no_fastjsonschema():
    for document in make_schemas.SCHEMAS:
        code = make_schemas.generate(document)
        assert "import fastjsonschema" not in code and "from fastjsonschema" not in code
        assert ' must contain ")' not in code
