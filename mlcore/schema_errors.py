"""The exception the generated validators (mlcore/*_schema.py, `make schemas`) raise:
fastjsonschema's JsonSchemaValueException without its package, whose import would bring
urllib and its code generators into every cold start of the function. The message names the
field, as "data.canary.share must be integer" (mlcore.documents makes it "$.canary.share")."""

from __future__ import annotations


class JsonSchemaValueException(ValueError):
    def __init__(self, message, value=None, name=None, definition=None, rule=None):
        super().__init__(message)
        self.message = message


JsonSchemaValuesException = JsonSchemaValueException
