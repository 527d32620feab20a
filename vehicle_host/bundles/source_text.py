"""A source file's text with offset -> line/column, for compile errors that name file and line."""

from __future__ import annotations

import bisect
import re

from vehicle_host.errors import TemplateError


class SourceText:
    def __init__(self, text: str, filename: str) -> None:
        self.text = text
        self.filename = filename
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def where(self, offset: int) -> tuple[int, int]:
        index = bisect.bisect_right(self.line_starts, offset) - 1
        return index + 1, offset - self.line_starts[index] + 1

    def error(self, message: str, offset: int) -> TemplateError:
        line, column = self.where(offset)
        return TemplateError(message, filename=self.filename, line=line, column=column)
