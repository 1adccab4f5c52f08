from typing import Dict, MutableMapping, Optional

from allennlp.data import Instance
from allennlp.data.fields import Field


class SourcedInstance(Instance):
    """
    An `Instance` that keeps what it was made from, for predictions to echo: the texts as given
    (text column -> text) and, for a row of a file, that file and line. Nothing of it reaches
    the model (it is no field), so any model reads these instances as plain ones.

    # Parameters

    fields : `MutableMapping[str, Field]`
    texts : `Dict[str, str]`
        Text column -> the text as given (before the template and truncation).
    file : `str`, optional
    line : `int`, optional
        Where the row was read, 1-based.
    """

    __slots__ = ["texts", "file", "line"]

    def __init__(
        self,
        fields: MutableMapping[str, Field],
        texts: Dict[str, str],
        file: Optional[str] = None,
        line: Optional[int] = None,
    ) -> None:
        super().__init__(fields)
        self.texts = texts
        self.file = file
        self.line = line

    def duplicate(self) -> "SourcedInstance":
        new = SourcedInstance(
            {name: field.duplicate() for name, field in self.fields.items()},
            dict(self.texts), self.file, self.line,
        )
        new.indexed = self.indexed
        return new
